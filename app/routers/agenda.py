"""/api/v1/conferences/{id}/listings: the agenda, suggestions, order, publication."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.actor import Actor
from app.deps import Caller, require
from app.etags import etag
from app.models.agenda import AgendaPublic
from app.models.conference import AgendaOrder, ListingIn
from app.openapi import IDEMPOTENT, READ_ONE, UPDATE, IfMatch, created, idempotency_key, problems
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import agenda, idempotency

router = IndexedRouter(prefix="/api/v1/conferences/{conference_id}", tags=["conferences"])

Reader = Annotated[Caller, Depends(require(Permission.CONFERENCE_READ))]
Writer = Annotated[Caller, Depends(require(Permission.CONFERENCE_WRITE))]


def _with_etag(response: Response, result: AgendaPublic) -> AgendaPublic:
    response.headers["ETag"] = etag(result.version)
    return result


@router.get("/listings", response_model=AgendaPublic, responses=problems(*READ_ONE))
async def read_agenda(caller: Reader, conference_id: uuid.UUID) -> Response:
    """The listed cases in order, each with its outstanding actions for review. The panel's
    coordinator and chair also get `suggestions`: open cases awaiting their first hearing or
    with overdue actions, not listed on an upcoming conference. Other members see the
    agenda once it is published."""
    body, version = await caller(agenda.read_agenda, conference_id)
    return Response(body, media_type="application/json", headers={"ETag": etag(version)})


def _list_once(
    session: Session, actor: Actor, conference_id: uuid.UUID, body: ListingIn, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        f"listing.add:{conference_id}",
        key,
        body,
        lambda: agenda.add_listing(session, actor, conference_id, body),
    )


@router.post(
    "/listings",
    response_model=AgendaPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*UPDATE),
    openapi_extra=IDEMPOTENT,
)
async def add_listing(
    caller: Writer,
    conference_id: uuid.UUID,
    body: ListingIn,
    request: Request,
) -> JSONResponse:
    """List a case: open, of this panel, and not on another upcoming conference."""
    payload, replayed = await caller(_list_once, conference_id, body, idempotency_key(request))
    return created(payload, f"/api/v1/conferences/{conference_id}/listings", replayed)


@router.put("/listings/order", response_model=AgendaPublic, responses=problems(*UPDATE))
async def reorder_agenda(
    caller: Writer,
    conference_id: uuid.UUID,
    body: AgendaOrder,
    response: Response,
    if_match: IfMatch = None,
) -> AgendaPublic:
    """Every listing id, in the new order (If-Match: the conference's ETag)."""
    return _with_etag(response, await caller(agenda.reorder, conference_id, body, if_match))


@router.delete(
    "/listings/{listing_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*UPDATE),
)
async def remove_listing(
    caller: Writer, conference_id: uuid.UUID, listing_id: uuid.UUID
) -> Response:
    """Take a case off the agenda (not once actions or minutes were recorded for it)."""
    await caller(agenda.remove_listing, conference_id, listing_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/publish", response_model=AgendaPublic, responses=problems(*UPDATE))
async def publish_agenda(
    caller: Writer, conference_id: uuid.UUID, response: Response, if_match: IfMatch = None
) -> AgendaPublic:
    """Publish the agenda: member agencies may then read the listed cases, for research."""
    return _with_etag(response, await caller(agenda.publish, conference_id, if_match))
