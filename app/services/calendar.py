"""iCalendar (RFC 5545) for conferences: one conference, or a panel's feed to subscribe to.

Only the meeting itself goes in: panel, time, place or link, status. Never a case, a person
or an agenda: a calendar is synced to phones and shared mailboxes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from icalendar import Calendar, Event
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor, ActorKind
from app.audit import AuditAction
from app.errors import Forbidden
from app.models.base import utcnow
from app.models.conference import CalendarFeed, Conference, ConferenceStatus, ScheduleChange
from app.models.panel import Panel
from app.models.user import User
from app.policies import visible_conferences
from app.security import FEED_TTL_SECONDS, Security
from app.services.conferences import visible
from app.services.panels import member_panel

FEED_PAST = timedelta(days=366)
FEED_MAX = 500
_STATUS = {
    ConferenceStatus.CANCELLED.value: "CANCELLED",
    ConferenceStatus.SCHEDULED.value: "CONFIRMED",
}


def _render(
    panel: Panel, conferences: Sequence[Conference], sequences: dict[uuid.UUID, int]
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Safeguarding Panels//Conferences//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{panel.name}: conferences")
    stamp = utcnow()
    for conference in conferences:
        event = Event()
        event.add("uid", f"{conference.id}@safeguarding-panels")
        event.add("dtstamp", stamp)
        event.add("dtstart", conference.starts_at)
        event.add("dtend", conference.starts_at + timedelta(minutes=conference.duration_minutes))
        event.add("summary", f"{panel.name}: case conference")
        event.add("sequence", sequences.get(conference.id, 0))
        event.add("status", _STATUS.get(conference.status, "CONFIRMED"))
        event.add("last-modified", conference.updated_at or conference.created_at)
        if conference.location:
            event.add("location", conference.location)
        if conference.online_link:
            event.add("url", conference.online_link)
            if not conference.location:
                event.add("location", "Online")
        event.add(
            "description",
            "Confidential multi-agency case conference. The agenda is in Safeguarding Panels.",
        )
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def _sequences(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """RFC 5545 SEQUENCE: how many times each was rescheduled, so clients take the update."""
    if not ids:
        return {}
    return dict(
        session.execute(
            select(col(ScheduleChange.conference_id), func.count())
            .where(col(ScheduleChange.conference_id).in_(ids))
            .group_by(col(ScheduleChange.conference_id))
        ).all()
    )


def conference_ics(session: Session, actor: Actor, conference_id: uuid.UUID) -> bytes:
    conference = visible(session, actor, conference_id)
    panel = session.get(Panel, conference.panel_id)
    assert panel is not None
    audit.record(
        session,
        actor,
        AuditAction.CALENDAR_READ,
        resource_type="conference",
        resource_id=conference.id,
    )
    return _render(panel, [conference], _sequences(session, [conference.id]))


def panel_ics(session: Session, actor: Actor, panel_id: uuid.UUID) -> bytes:
    """The panel's conferences from a year ago on, for a calendar subscription."""
    panel = member_panel(session, actor, panel_id)
    conferences = session.scalars(
        select(Conference)
        .where(
            col(Conference.panel_id) == panel.id,
            visible_conferences(actor),
            col(Conference.starts_at) >= utcnow() - FEED_PAST,
        )
        .order_by(col(Conference.starts_at), col(Conference.id))
        .limit(FEED_MAX)
    ).all()
    audit.record(
        session,
        actor,
        AuditAction.CALENDAR_READ,
        resource_type="panel",
        resource_id=panel.id,
        detail={"conferences": len(conferences)},
    )
    return _render(panel, conferences, _sequences(session, [c.id for c in conferences]))


def feed_link(
    session: Session, actor: Actor, panel_id: uuid.UUID, security: Security
) -> CalendarFeed:
    """A personal link to the panel's calendar for a calendar client. It carries a token that
    reads this feed only, for a year, and stops working when the user's password or second
    factor changes, the user is deactivated or leaves the panel."""
    if actor.kind is not ActorKind.USER:
        raise Forbidden("Calendar feed links are for people; systems send their bearer token")
    panel = member_panel(session, actor, panel_id)
    epoch = session.scalar(select(col(User.auth_epoch)).where(col(User.id) == actor.id))
    assert epoch is not None
    token = security.create_feed_token(actor.required_id, panel.id, epoch)
    audit.record(
        session,
        actor,
        AuditAction.CALENDAR_FEED_ISSUE,
        resource_type="panel",
        resource_id=panel.id,
    )
    return CalendarFeed(
        path=f"/api/v1/panels/{panel.id}/calendar.ics?feed_token={token}",
        expires_at=utcnow() + timedelta(seconds=FEED_TTL_SECONDS),
    )
