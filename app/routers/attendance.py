"""/api/v1/conferences/{id}/attendance: who attended, and their confidentiality
acknowledgements."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.actor import Actor
from app.deps import Caller, require
from app.etags import etag
from app.models.conference import AttendanceIn, AttendancePublic, AttendanceUpdate
from app.openapi import IDEMPOTENT, READ_ONE, UPDATE, IfMatch, created, idempotency_key, problems
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import attendance, idempotency

router = IndexedRouter(
    prefix="/api/v1/conferences/{conference_id}/attendance", tags=["conferences"]
)

Reader = Annotated[Caller, Depends(require(Permission.CONFERENCE_READ))]
Writer = Annotated[Caller, Depends(require(Permission.CONFERENCE_WRITE))]


@router.get("", response_model=list[AttendancePublic], responses=problems(*READ_ONE))
async def list_attendance(caller: Reader, conference_id: uuid.UUID) -> list[AttendancePublic]:
    rows = await caller(attendance.list_attendance, conference_id)
    return [AttendancePublic.model_validate(a) for a in rows]


def _record_once(
    session: Session, actor: Actor, conference_id: uuid.UUID, body: AttendanceIn, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        f"attendance.record:{conference_id}",
        key,
        body,
        lambda: AttendancePublic.model_validate(
            attendance.record_attendance(session, actor, conference_id, body)
        ),
    )


@router.post(
    "",
    response_model=AttendancePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*UPDATE),
    openapi_extra=IDEMPOTENT,
)
async def record_attendance(
    caller: Writer,
    conference_id: uuid.UUID,
    body: AttendanceIn,
    request: Request,
) -> JSONResponse:
    """Record an attendee: agency, user or name, role, present / apologies / absent."""
    payload, replayed = await caller(_record_once, conference_id, body, idempotency_key(request))
    return created(
        payload, f"/api/v1/conferences/{conference_id}/attendance/{payload['id']}", replayed
    )


@router.patch("/{attendance_id}", response_model=AttendancePublic, responses=problems(*UPDATE))
async def update_attendance(
    caller: Writer,
    conference_id: uuid.UUID,
    attendance_id: uuid.UUID,
    body: AttendanceUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> AttendancePublic:
    """`confidentiality_acknowledged: true` records the time of acknowledgement (by the
    attendee, or the coordinator on their behalf); other fields: the coordinator or chair."""
    row = AttendancePublic.model_validate(
        await caller(attendance.update_attendance, conference_id, attendance_id, body, if_match)
    )
    response.headers["ETag"] = etag(row.version)
    return row
