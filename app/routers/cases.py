"""/api/v1/cases: read what you may see; the panel's managers change it; consents, exclusions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app import json_body
from app.actor import Actor
from app.deps import Caller, require
from app.etags import etag
from app.models.case import (
    CaseListQuery,
    CasePublic,
    CaseSummary,
    CaseUpdate,
    ConsentIn,
    ConsentPublic,
    ExclusionIn,
    ExclusionPublic,
)
from app.openapi import (
    AUTHED,
    IDEMPOTENT,
    READ_ONE,
    UPDATE,
    IfMatch,
    created,
    idempotency_key,
    problems,
)
from app.pagination import Page
from app.permissions import Permission
from app.query_params import documented, query
from app.routing import IndexedRouter
from app.services import cases, idempotency

router = IndexedRouter(prefix="/api/v1/cases", tags=["cases"])

Reader = Annotated[Caller, Depends(require(Permission.CASE_READ))]
Writer = Annotated[Caller, Depends(require(Permission.CASE_WRITE))]


@router.get(
    "",
    response_model=Page[CaseSummary],
    responses=problems(*AUTHED),
    openapi_extra=documented(CaseListQuery),
)
async def list_cases(caller: Reader, request: Request) -> Response:
    """Cases of the panels you sit on, except those your agency is excluded from."""
    q = query(CaseListQuery, request)
    items, next_cursor = await caller(
        cases.list_cases,
        q.panel_id,
        q.status,
        q.risk_level.value if q.risk_level else None,
        q.cursor,
        q.limit,
    )
    return json_body.page(items, next_cursor)


@router.get("/{case_id}", response_model=CasePublic, responses=problems(*READ_ONE))
async def get_case(caller: Reader, case_id: uuid.UUID) -> Response:
    case = await caller(cases.get_case, case_id)
    return json_body.JSONBody(case, headers={"ETag": etag(case["version"])})


@router.patch("/{case_id}", response_model=CasePublic, responses=problems(*UPDATE))
async def update_case(
    caller: Writer,
    case_id: uuid.UUID,
    body: CaseUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> CasePublic:
    """Status, stage, risk level, lead agency, keyworker (coordinator or chair)."""
    case = await caller(cases.update_case, case_id, body, if_match)
    response.headers["ETag"] = etag(case.version)
    return case


@router.get(
    "/{case_id}/consents", response_model=list[ConsentPublic], responses=problems(*READ_ONE)
)
async def list_consents(caller: Reader, case_id: uuid.UUID) -> list[ConsentPublic]:
    return [ConsentPublic.model_validate(c) for c in await caller(cases.list_consents, case_id)]


@router.post(
    "/{case_id}/consents",
    response_model=ConsentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*UPDATE),
    openapi_extra=IDEMPOTENT,
)
async def record_consent(
    caller: Writer,
    case_id: uuid.UUID,
    body: ConsentIn,
    request: Request,
) -> JSONResponse:
    """Consent per person and purpose, or the lawful basis and reason for sharing without."""
    payload, replayed = await caller(_record_consent_once, case_id, body, idempotency_key(request))
    return created(payload, f"/api/v1/cases/{case_id}/consents", replayed)


def _record_consent_once(
    session: Session, actor: Actor, case_id: uuid.UUID, body: ConsentIn, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        f"consent.record:{case_id}",
        key,
        body,
        lambda: ConsentPublic.model_validate(cases.record_consent(session, actor, case_id, body)),
    )


@router.get(
    "/{case_id}/exclusions", response_model=list[ExclusionPublic], responses=problems(*READ_ONE)
)
async def list_exclusions(caller: Writer, case_id: uuid.UUID) -> list[ExclusionPublic]:
    return [ExclusionPublic.model_validate(e) for e in await caller(cases.list_exclusions, case_id)]


@router.post(
    "/{case_id}/exclusions",
    response_model=ExclusionPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*UPDATE),
    openapi_extra=IDEMPOTENT,
)
async def add_exclusion(
    caller: Writer,
    case_id: uuid.UUID,
    body: ExclusionIn,
    request: Request,
) -> JSONResponse:
    """Keep an agency (say, the perpetrator's employer) out of this case entirely."""
    payload, replayed = await caller(_add_exclusion_once, case_id, body, idempotency_key(request))
    return created(payload, f"/api/v1/cases/{case_id}/exclusions", replayed)


def _add_exclusion_once(
    session: Session, actor: Actor, case_id: uuid.UUID, body: ExclusionIn, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        f"exclusion.add:{case_id}",
        key,
        body,
        lambda: ExclusionPublic.model_validate(cases.add_exclusion(session, actor, case_id, body)),
    )


@router.delete(
    "/{case_id}/exclusions/{agency_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*UPDATE),
)
async def remove_exclusion(caller: Writer, case_id: uuid.UUID, agency_id: uuid.UUID) -> Response:
    await caller(cases.remove_exclusion, case_id, agency_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
