"""/api/v1/users: people who log in (admins; agency admins for their own agency)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.deps import Caller, require
from app.etags import etag
from app.models.user import UserCreate, UserPublic, UserUpdate
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
from app.services import users

router = IndexedRouter(prefix="/api/v1/users", tags=["users"])

Reader = Annotated[Caller, Depends(require(Permission.USER_READ))]
Writer = Annotated[Caller, Depends(require(Permission.USER_WRITE))]


@router.get("", response_model=Page[UserPublic], responses=problems(*AUTHED))
async def list_users(
    caller: Reader,
    agency_id: uuid.UUID | None = None,
    is_active: bool | None = None,
    email: Annotated[str | None, Query(max_length=254, pattern=NO_NUL)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[UserPublic]:
    items, next_cursor = await caller(users.list_users, agency_id, is_active, email, cursor, limit)
    return Page(items=[UserPublic.model_validate(u) for u in items], next_cursor=next_cursor)


@router.post(
    "",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE),
    openapi_extra=IDEMPOTENT,
)
async def create_user(caller: Writer, body: UserCreate, request: Request) -> JSONResponse:
    payload, replayed = await caller(
        users.create_user_once, caller.security, caller.settings, body, idempotency_key(request)
    )
    return created(payload, f"/api/v1/users/{payload['id']}", replayed)


@router.get("/{user_id}", response_model=UserPublic, responses=problems(*READ_ONE))
async def get_user(caller: Reader, user_id: uuid.UUID, response: Response) -> UserPublic:
    user = await caller(users.get_user, user_id)
    response.headers["ETag"] = etag(user.version)
    return UserPublic.model_validate(user)


@router.patch("/{user_id}", response_model=UserPublic, responses=problems(*UPDATE))
async def update_user(
    caller: Writer,
    user_id: uuid.UUID,
    body: UserUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> UserPublic:
    user = await caller(
        users.update_user, caller.security, caller.settings, user_id, body, if_match
    )
    response.headers["ETag"] = etag(user.version)
    return UserPublic.model_validate(user)
