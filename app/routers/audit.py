"""/api/v1/audit: the access log, for auditors and data protection officers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Response

from app.audit import AuditAction, Outcome
from app.deps import Caller, require
from app.models.audit import AuditEventPublic, AuditVerification
from app.openapi import AUTHED, problems
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import audit_log
from app.services.audit_log import AuditFilter

router = IndexedRouter(prefix="/api/v1/audit", tags=["audit"])

Reader = Annotated[Caller, Depends(require(Permission.AUDIT_READ))]
Verifier = Annotated[Caller, Depends(require(Permission.AUDIT_VERIFY))]


async def audit_filter(
    actor_id: uuid.UUID | None = None,
    agency_id: Annotated[uuid.UUID | None, Query(description="The actor's agency")] = None,
    person_id: uuid.UUID | None = None,
    case_id: uuid.UUID | None = None,
    resource_type: Annotated[str | None, Query(max_length=32)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    action: AuditAction | None = None,
    outcome: Outcome | None = None,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with offset")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with offset")] = None,
) -> AuditFilter:
    return AuditFilter(
        actor_id=actor_id,
        agency_id=agency_id,
        person_id=person_id,
        case_id=case_id,
        resource_type=resource_type,
        resource_id=resource_id,
        action=action,
        outcome=outcome.value if outcome else None,
        since=since,
        until=until,
    )


Filters = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("/events", response_model=Page[AuditEventPublic], responses=problems(*AUTHED))
async def list_audit_events(
    caller: Reader, filters: Filters, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[AuditEventPublic]:
    """Who did what, when, from where and why; newest first."""
    items, next_cursor = await caller(audit_log.query_events, filters, cursor, limit)
    return Page(items=[AuditEventPublic.model_validate(e) for e in items], next_cursor=next_cursor)


@router.get(
    "/events/export",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "Matching events as CSV, oldest first",
        },
        **problems(*AUTHED),
    },
)
async def export_audit_events(caller: Reader, filters: Filters) -> Response:
    """The same filters as the list, every matching event, as a CSV download."""
    body = await caller(audit_log.export_events, filters)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit-events.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/verify", response_model=AuditVerification, responses=problems(*AUTHED))
async def verify_audit_chain(caller: Verifier) -> AuditVerification:
    """Recompute the hash chain over every sealed event and report the first break."""
    return await caller(audit_log.verify, caller.settings)
