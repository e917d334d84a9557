"""/api/v1/actions (and a case's actions under /api/v1/cases/{id}/actions)."""

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
from app.models.action import (
    ActionCreate,
    ActionListQuery,
    ActionPatch,
    ActionPublic,
    ActionStatus,
    ActionSummary,
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
from app.services import action_lists, actions, idempotency

router = IndexedRouter(prefix="/api/v1/actions", tags=["actions"])
on_cases = IndexedRouter(prefix="/api/v1/cases/{case_id}/actions", tags=["actions"])

Reader = Annotated[Caller, Depends(require(Permission.ACTION_READ))]
Writer = Annotated[Caller, Depends(require(Permission.ACTION_WRITE))]


@router.get(
    "",
    response_model=Page[ActionSummary],
    responses=problems(*AUTHED),
    openapi_extra=documented(ActionListQuery),
)
async def list_actions(caller: Reader, request: Request) -> Response:
    """Your agency's actions; every action of the panels you coordinate or chair. Soonest
    due first; `overdue=true`: open and past their due date (UK local date)."""
    q = query(ActionListQuery, request)
    items, next_cursor = await caller(
        action_lists.list_actions, q.agency_id, q.panel_id, q.status, q.overdue, q.cursor, q.limit
    )
    return json_body.page(items, next_cursor)


@router.get("/{action_id}", response_model=ActionPublic, responses=problems(*READ_ONE))
async def get_action(caller: Reader, action_id: uuid.UUID, response: Response) -> ActionPublic:
    action = await caller(actions.get_action, action_id)
    response.headers["ETag"] = etag(action.version)
    return action


@router.patch("/{action_id}", response_model=ActionPublic, responses=problems(*UPDATE))
async def update_action(
    caller: Writer,
    action_id: uuid.UUID,
    body: ActionPatch,
    response: Response,
    if_match: IfMatch = None,
) -> ActionPublic:
    """The owning agency: a progress `note`, `status` done, or not_done with
    `not_done_reason` (and `not_done_detail` for `other`). The panel's coordinator or chair
    may also change its terms or reopen it. Every update is kept in `history`."""
    action = await caller(actions.update_action, action_id, body, if_match)
    response.headers["ETag"] = etag(action.version)
    return action


def _create_once(
    session: Session, actor: Actor, case_id: uuid.UUID, body: ActionCreate, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        f"action.create:{case_id}",
        key,
        body,
        lambda: actions.create_action(session, actor, case_id, body),
    )


@on_cases.post(
    "",
    response_model=ActionPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*UPDATE),
    openapi_extra=IDEMPOTENT,
)
async def create_action(
    caller: Writer,
    case_id: uuid.UUID,
    body: ActionCreate,
    request: Request,
) -> JSONResponse:
    """Set an action (the panel's coordinator or chair): in a conference the case is listed
    on (`conference_id`), or between meetings."""
    payload, replayed = await caller(_create_once, case_id, body, idempotency_key(request))
    return created(payload, f"/api/v1/actions/{payload['id']}", replayed)


@on_cases.get("", response_model=list[ActionSummary], responses=problems(*READ_ONE))
async def list_case_actions(
    caller: Reader, case_id: uuid.UUID, status: ActionStatus | None = None
) -> list[ActionSummary]:
    """The case's action plan: every action, whoever owns it."""
    return await caller(actions.case_actions, case_id, status)
