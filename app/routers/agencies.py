"""/api/v1/agencies: the partner organisations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.deps import Caller, require
from app.etags import etag
from app.models.agency import AgencyCreate, AgencyKind, AgencyPublic, AgencyUpdate
from app.openapi import (
    AUTHED,
    IDEMPOTENT,
    READ_ONE,
    UPDATE,
    WRITE,
    IfMatch,
    created,
    idempotency_key,
    problems,
)
from app.pagination import DEFAULT_LIMIT, NO_NUL, Cursor, Limit, Page
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import agencies

router = IndexedRouter(prefix="/api/v1/agencies", tags=["agencies"])

Reader = Annotated[Caller, Depends(require(Permission.AGENCY_READ))]
Writer = Annotated[Caller, Depends(require(Permission.AGENCY_WRITE))]


@router.get("", response_model=Page[AgencyPublic], responses=problems(*AUTHED))
async def list_agencies(
    caller: Reader,
    kind: AgencyKind | None = None,
    is_active: bool | None = None,
    name: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AgencyPublic]:
    items, next_cursor = await caller(agencies.list_agencies, kind, is_active, name, cursor, limit)
    return Page(items=[AgencyPublic.model_validate(a) for a in items], next_cursor=next_cursor)


@router.post(
    "",
    response_model=AgencyPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE),
    openapi_extra=IDEMPOTENT,
)
async def create_agency(caller: Writer, body: AgencyCreate, request: Request) -> JSONResponse:
    payload, replayed = await caller(agencies.create_agency_once, body, idempotency_key(request))
    return created(payload, f"/api/v1/agencies/{payload['id']}", replayed)


@router.get("/{agency_id}", response_model=AgencyPublic, responses=problems(*READ_ONE))
async def get_agency(caller: Reader, agency_id: uuid.UUID) -> Response:
    agency = await caller(agencies.get_agency, agency_id)
    # Written once, by the model's own serializer: FastAPI would validate it again first.
    return Response(
        agency.model_dump_json(),
        media_type="application/json",
        headers={"ETag": etag(agency.version)},
    )


@router.patch("/{agency_id}", response_model=AgencyPublic, responses=problems(*UPDATE))
async def update_agency(
    caller: Writer,
    agency_id: uuid.UUID,
    body: AgencyUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> AgencyPublic:
    agency = await caller(agencies.update_agency, agency_id, body, if_match)
    response.headers["ETag"] = etag(agency.version)
    return AgencyPublic.model_validate(agency)
