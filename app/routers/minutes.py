"""/api/v1/conferences/{id}/minutes: drafted per listed case, amended once finalised."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.actor import Actor
from app.deps import Caller, require
from app.etags import etag
from app.models.minutes import AmendmentIn, MinutesEntryIn, MinutesEntryPublic, MinutesPublic
from app.openapi import IDEMPOTENT, READ_ONE, UPDATE, IfMatch, created, idempotency_key, problems
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import idempotency, minutes

router = IndexedRouter(prefix="/api/v1/conferences/{conference_id}/minutes", tags=["conferences"])

Reader = Annotated[Caller, Depends(require(Permission.CONFERENCE_READ))]
Writer = Annotated[Caller, Depends(require(Permission.CONFERENCE_WRITE))]


@router.get("", response_model=MinutesPublic, responses=problems(*READ_ONE))
async def read_minutes(caller: Reader, conference_id: uuid.UUID) -> MinutesPublic:
    """Drafts to the coordinator and chair; finalised minutes to every member, each case's
    original text with its amendments."""
    return await caller(minutes.read_minutes, conference_id)


@router.put("/{listing_id}", response_model=MinutesEntryPublic, responses=problems(*UPDATE))
async def write_minutes(
    caller: Writer,
    conference_id: uuid.UUID,
    listing_id: uuid.UUID,
    body: MinutesEntryIn,
    response: Response,
    if_match: IfMatch = None,
) -> MinutesEntryPublic:
    """One listed case's discussion summary, risks, decisions and actions reviewed (refused
    until every attendee present has acknowledged the confidentiality statement; 409 once
    finalised)."""
    entry = await caller(minutes.write_entry, conference_id, listing_id, body, if_match)
    if entry.version is not None:
        response.headers["ETag"] = etag(entry.version)
    return entry


def _amend_once(
    session: Session,
    actor: Actor,
    conference_id: uuid.UUID,
    listing_id: uuid.UUID,
    body: AmendmentIn,
    key: str | None,
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        f"minutes.amend:{listing_id}",
        key,
        body,
        lambda: minutes.amend(session, actor, conference_id, listing_id, body),
    )


@router.post(
    "/{listing_id}/amendments",
    response_model=MinutesEntryPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*UPDATE),
    openapi_extra=IDEMPOTENT,
)
async def amend_minutes(
    caller: Writer,
    conference_id: uuid.UUID,
    listing_id: uuid.UUID,
    body: AmendmentIn,
    request: Request,
) -> JSONResponse:
    """Correct finalised minutes: an audited amendment, the original text kept."""
    payload, replayed = await caller(
        _amend_once, conference_id, listing_id, body, idempotency_key(request)
    )
    return created(payload, f"/api/v1/conferences/{conference_id}/minutes", replayed)
