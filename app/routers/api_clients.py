"""/api/v1/api-clients: partner systems' credentials; the secret is shown once."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Response, status

from app.deps import Caller, require
from app.etags import etag
from app.models.api_client import (
    ApiClientCreate,
    ApiClientPublic,
    ApiClientUpdate,
    ApiClientWithSecret,
)
from app.openapi import AUTHED, READ_ONE, UPDATE, WRITE, IfMatch, problems
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import api_clients

router = IndexedRouter(prefix="/api/v1/api-clients", tags=["api clients"])

Reader = Annotated[Caller, Depends(require(Permission.API_CLIENT_READ))]
Writer = Annotated[Caller, Depends(require(Permission.API_CLIENT_WRITE))]
NO_STORE = {"Cache-Control": "no-store"}


@router.get("", response_model=Page[ApiClientPublic], responses=problems(*AUTHED))
async def list_api_clients(
    caller: Reader,
    agency_id: uuid.UUID | None = None,
    is_active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ApiClientPublic]:
    items, next_cursor = await caller(api_clients.list_clients, agency_id, is_active, cursor, limit)
    return Page(items=[ApiClientPublic.model_validate(c) for c in items], next_cursor=next_cursor)


@router.post(
    "",
    response_model=ApiClientWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE),
)
async def create_api_client(
    caller: Writer, body: ApiClientCreate, response: Response
) -> ApiClientWithSecret:
    client = await caller(api_clients.create_client, caller.security, body)
    response.headers.update(NO_STORE)
    response.headers["ETag"] = etag(client.version)
    response.headers["Location"] = f"/api/v1/api-clients/{client.id}"
    return client


@router.get("/{client_id}", response_model=ApiClientPublic, responses=problems(*READ_ONE))
async def get_api_client(
    caller: Reader, client_id: uuid.UUID, response: Response
) -> ApiClientPublic:
    client = await caller(api_clients.get_client, client_id)
    response.headers["ETag"] = etag(client.version)
    return ApiClientPublic.model_validate(client)


@router.patch("/{client_id}", response_model=ApiClientPublic, responses=problems(*UPDATE))
async def update_api_client(
    caller: Writer,
    client_id: uuid.UUID,
    body: ApiClientUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> ApiClientPublic:
    client = await caller(api_clients.update_client, client_id, body, if_match)
    response.headers["ETag"] = etag(client.version)
    return ApiClientPublic.model_validate(client)


@router.post(
    "/{client_id}/rotate-secret",
    response_model=ApiClientWithSecret,
    responses=problems(*UPDATE),
)
async def rotate_api_client_secret(
    caller: Writer, client_id: uuid.UUID, response: Response, if_match: IfMatch = None
) -> ApiClientWithSecret:
    client = await caller(api_clients.rotate_secret, caller.security, client_id, if_match)
    response.headers.update(NO_STORE)
    response.headers["ETag"] = etag(client.version)
    return client
