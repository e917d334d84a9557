"""/api/v1/panels and /api/v1/panel-types: panels, their configuration and their members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.actor import Actor
from app.deps import Caller, require
from app.etags import etag
from app.models.panel import (
    MembersUpdate,
    Panel,
    PanelCreate,
    PanelMembers,
    PanelPublic,
    PanelTypePublic,
    PanelUpdate,
)
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
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import idempotency, panels

router = IndexedRouter(prefix="/api/v1", tags=["panels"])

Reader = Annotated[Caller, Depends(require(Permission.PANEL_READ))]
Writer = Annotated[Caller, Depends(require(Permission.PANEL_WRITE))]
MembersReader = Annotated[Caller, Depends(require(Permission.PANEL_MEMBERS_READ))]


def _public(panel: Panel) -> PanelPublic:
    return PanelPublic(
        id=panel.id,
        panel_type=panel.panel_type,
        name=panel.name,
        area=panel.area,
        config=panels.config_of(panel),
        is_active=panel.is_active,
        version=panel.version,
        created_at=panel.created_at,
        updated_at=panel.updated_at,
    )


@router.get("/panel-types", response_model=list[PanelTypePublic], responses=problems(*AUTHED))
async def list_panel_types(caller: Reader) -> list[PanelTypePublic]:
    """The installed panel types, their defaults and the JSON Schema of their referral forms."""
    return await caller(panels.list_types)


@router.get("/panels", response_model=Page[PanelPublic], responses=problems(*AUTHED))
async def list_panels(
    caller: Reader,
    panel_type: Annotated[str | None, Query(max_length=32)] = None,
    is_active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PanelPublic]:
    items, next_cursor = await caller(panels.list_panels, panel_type, is_active, cursor, limit)
    return Page(items=[_public(p) for p in items], next_cursor=next_cursor)


@router.post(
    "/panels",
    response_model=PanelPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE),
    openapi_extra=IDEMPOTENT,
)
async def create_panel(caller: Writer, body: PanelCreate, request: Request) -> JSONResponse:
    payload, replayed = await caller(_create_panel_once, body, idempotency_key(request))
    return created(payload, f"/api/v1/panels/{payload['id']}", replayed)


def _create_panel_once(
    session: Session, actor: Actor, body: PanelCreate, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        "panel.create",
        key,
        body,
        lambda: _public(panels.create_panel(session, actor, body)),
    )


@router.get("/panels/{panel_id}", response_model=PanelPublic, responses=problems(*READ_ONE))
async def get_panel(caller: Reader, panel_id: uuid.UUID, response: Response) -> PanelPublic:
    panel = await caller(panels.get_panel, panel_id)
    response.headers["ETag"] = etag(panel.version)
    return _public(panel)


@router.patch("/panels/{panel_id}", response_model=PanelPublic, responses=problems(*UPDATE))
async def update_panel(
    caller: Writer,
    panel_id: uuid.UUID,
    body: PanelUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> PanelPublic:
    panel = await caller(panels.update_panel, panel_id, body, if_match)
    response.headers["ETag"] = etag(panel.version)
    return _public(panel)


@router.get(
    "/panels/{panel_id}/members", response_model=PanelMembers, responses=problems(*READ_ONE)
)
async def get_panel_members(caller: MembersReader, panel_id: uuid.UUID) -> PanelMembers:
    """Member agencies and users' panel roles (for the panel's members, admins, auditors)."""
    return await caller(panels.get_members, panel_id)


@router.patch(
    "/panels/{panel_id}/members", response_model=PanelMembers, responses=problems(*UPDATE)
)
async def update_panel_members(
    caller: Writer, panel_id: uuid.UUID, body: MembersUpdate
) -> PanelMembers:
    """Add or change member agencies and user roles; remove them with remove_* lists."""
    return await caller(panels.update_members, panel_id, body)
