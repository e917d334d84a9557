"""/api/v1/conferences: schedule, read, reschedule and move along; the chair finalises;
iCalendar for one conference and for a panel's feed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from app.actor import Actor
from app.deps import Caller, require, require_or_feed
from app.etags import etag
from app.models.conference import (
    CalendarFeed,
    ConferenceCreate,
    ConferencePublic,
    ConferenceStatus,
    ConferenceSummary,
    ConferenceUpdate,
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
from app.services import calendar, conferences, idempotency

router = IndexedRouter(prefix="/api/v1/conferences", tags=["conferences"])
feeds = IndexedRouter(prefix="/api/v1/panels", tags=["conferences"])

Reader = Annotated[Caller, Depends(require(Permission.CONFERENCE_READ))]
Writer = Annotated[Caller, Depends(require(Permission.CONFERENCE_WRITE))]
FeedReader = Annotated[Caller, Depends(require_or_feed(Permission.CONFERENCE_READ))]

ICS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/calendar": {"schema": {"type": "string"}}},
        "description": "iCalendar (RFC 5545); the meeting only, no case or personal data",
    },
    **problems(*READ_ONE),
}


def _ics(body: bytes, name: str) -> Response:
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{name}.ics"',
            "Cache-Control": "private, no-cache",
        },
    )


def _schedule_once(
    session: Session, actor: Actor, body: ConferenceCreate, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        "conference.schedule",
        key,
        body,
        lambda: conferences.schedule(session, actor, body),
    )


@router.post(
    "",
    response_model=ConferencePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE, 404),
    openapi_extra=IDEMPOTENT,
)
async def schedule_conference(
    caller: Writer, body: ConferenceCreate, request: Request
) -> JSONResponse:
    """Schedule a conference of a panel you coordinate or chair."""
    payload, replayed = await caller(_schedule_once, body, idempotency_key(request))
    return created(payload, f"/api/v1/conferences/{payload['id']}", replayed)


@router.get("", response_model=Page[ConferenceSummary], responses=problems(*AUTHED))
async def list_conferences(
    caller: Reader,
    panel_id: uuid.UUID | None = None,
    status: ConferenceStatus | None = None,
    starts_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    starts_before: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ConferenceSummary]:
    """Conferences of the panels you sit on, soonest first; `from`/`to` bound the start."""
    items, next_cursor = await caller(
        conferences.list_conferences, panel_id, status, starts_from, starts_before, cursor, limit
    )
    return Page(items=[ConferenceSummary.model_validate(c) for c in items], next_cursor=next_cursor)


@router.get("/{conference_id}", response_model=ConferencePublic, responses=problems(*READ_ONE))
async def get_conference(
    caller: Reader, conference_id: uuid.UUID, response: Response
) -> ConferencePublic:
    conference = await caller(conferences.get_conference, conference_id)
    response.headers["ETag"] = etag(conference.version)
    return conference


@router.patch("/{conference_id}", response_model=ConferencePublic, responses=problems(*UPDATE))
async def update_conference(
    caller: Writer,
    conference_id: uuid.UUID,
    body: ConferenceUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> ConferencePublic:
    """Reschedule or move it (history kept), change the chair, or set `status`:
    scheduled → in_progress → concluded, or scheduled → cancelled (with `cancel_reason`)."""
    conference = await caller(conferences.update_conference, conference_id, body, if_match)
    response.headers["ETag"] = etag(conference.version)
    return conference


@router.post(
    "/{conference_id}/finalise", response_model=ConferencePublic, responses=problems(*UPDATE)
)
async def finalise_conference(
    caller: Writer, conference_id: uuid.UUID, response: Response, if_match: IfMatch = None
) -> ConferencePublic:
    """The chair locks the minutes of a concluded conference; corrections become amendments."""
    conference = await caller(conferences.finalise, conference_id, if_match)
    response.headers["ETag"] = etag(conference.version)
    return conference


@router.get("/{conference_id}/calendar.ics", response_class=Response, responses=ICS)
async def conference_calendar(caller: Reader, conference_id: uuid.UUID) -> Response:
    return _ics(await caller(calendar.conference_ics, conference_id), f"conference-{conference_id}")


@feeds.get("/{panel_id}/calendar.ics", response_class=Response, responses=ICS)
async def panel_calendar(caller: FeedReader, panel_id: uuid.UUID) -> Response:
    """The panel's conferences from a year ago on. A calendar client subscribes with the
    link from `POST /api/v1/panels/{panel_id}/calendar-feed` (`?feed_token=`)."""
    return _ics(await caller(calendar.panel_ics, panel_id), f"panel-{panel_id}")


@feeds.post(
    "/{panel_id}/calendar-feed",
    response_model=CalendarFeed,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*READ_ONE),
)
async def issue_calendar_feed(caller: Reader, panel_id: uuid.UUID) -> CalendarFeed:
    """Your personal subscription link to the panel's calendar (valid a year; it stops
    working when your password or second factor changes or you leave the panel). The feed
    holds no case or personal data, but treat the link as a secret."""
    return await caller(calendar.feed_link, panel_id, caller.security)
