"""Conferences: scheduled by a panel's coordinator, run through their statuses, finalised by
their chair. Only members of the panel see them; agencies' systems never see Channel's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.clock import EARLIEST_YEAR, LATEST_YEAR, plausible
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.base import utcnow
from app.models.case import Case
from app.models.conference import (
    TRANSITIONS,
    Attendance,
    AttendanceStatus,
    Conference,
    ConferenceCreate,
    ConferencePublic,
    ConferenceStatus,
    ConferenceUpdate,
    Listing,
    ScheduleChange,
    ScheduleChangePublic,
)
from app.models.minutes import MinutesEntry
from app.models.panel import MANAGING_ROLES, Panel
from app.pagination import paginate
from app.policies import visible_cases, visible_conferences
from app.services.panels import member_panel, panel_role_of, user_role_on


def audit_conference(
    session: Session, actor: Actor, conference: Conference, action: AuditAction, **extra: Any
) -> None:
    audit.record(
        session, actor, action, resource_type="conference", resource_id=conference.id, **extra
    )


def visible(
    session: Session, actor: Actor, conference_id: uuid.UUID, *, for_update: bool = False
) -> Conference:
    stmt = select(Conference).where(col(Conference.id) == conference_id, visible_conferences(actor))
    conference = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if conference is None:
        raise NotFound("conference", conference_id)
    return conference


def require_manager(session: Session, actor: Actor, conference: Conference) -> str:
    """The caller's role, when they coordinate or chair the conference's panel."""
    role = panel_role_of(session, actor, conference.panel_id)
    if role not in MANAGING_ROLES:
        raise Forbidden(
            "Only the panel's coordinator or chair may do this",
            resource_type="conference",
            resource_id=conference.id,
        )
    assert role is not None
    return role


def managed(
    session: Session, actor: Actor, conference_id: uuid.UUID, if_match: str | None = None
) -> Conference:
    """The conference, locked for a change by its panel's coordinator or chair, at the
    version the caller last read (when they say)."""
    conference = visible(session, actor, conference_id, for_update=True)
    require_manager(session, actor, conference)
    check_if_match(if_match, conference.version, "conference", conference.id)
    return conference


def visible_listing(
    session: Session, actor: Actor, conference: Conference, listing_id: uuid.UUID
) -> Listing:
    """A listing of this conference whose case the caller may see."""
    listing = session.scalars(
        select(Listing)
        .join(Case, col(Case.id) == col(Listing.case_id))
        .where(
            col(Listing.id) == listing_id,
            col(Listing.conference_id) == conference.id,
            visible_cases(actor),
        )
    ).first()
    if listing is None:
        raise NotFound("listing", listing_id)
    return listing


def require_status(conference: Conference, allowed: set[str], doing: str) -> None:
    if conference.status not in allowed:
        raise Conflict(
            f"Cannot {doing} while the conference is {conference.status}",
            resource_type="conference",
            resource_id=conference.id,
        )


def bump(conference: Conference) -> None:
    conference.version += 1
    conference.updated_at = utcnow()


def _check_when(starts_at: datetime) -> None:
    if not plausible(starts_at):
        raise Invalid(
            f"starts_at must fall between {EARLIEST_YEAR} and {LATEST_YEAR}", field="starts_at"
        )


def _check_chair(session: Session, panel_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """A conference's chair holds the chair or coordinator role on its panel."""
    if user_role_on(session, panel_id, user_id) not in MANAGING_ROLES:
        raise Invalid(
            "chair_user_id must be an active user holding the chair or coordinator role on "
            "the panel",
            field="chair_user_id",
        )


def public(session: Session, actor: Actor, conference: Conference) -> ConferencePublic:
    panel_type = session.scalar(
        select(col(Panel.panel_type)).where(col(Panel.id) == conference.panel_id)
    )
    # Only the listings the caller may see: a count says something too.
    listed = session.scalar(
        select(func.count())
        .select_from(Listing)
        .join(Case, col(Case.id) == col(Listing.case_id))
        .where(col(Listing.conference_id) == conference.id, visible_cases(actor))
    )
    history = session.scalars(
        select(ScheduleChange)
        .where(col(ScheduleChange.conference_id) == conference.id)
        .order_by(col(ScheduleChange.changed_at), col(ScheduleChange.id))
    ).all()
    return ConferencePublic.model_validate(
        {
            **conference.model_dump(),
            "panel_type": panel_type,
            "listed_cases": listed or 0,
            "schedule_history": [ScheduleChangePublic.model_validate(h) for h in history],
        }
    )


def schedule(session: Session, actor: Actor, data: ConferenceCreate) -> ConferencePublic:
    """Schedule a conference of a panel the caller coordinates or chairs."""
    panel = member_panel(session, actor, data.panel_id)
    if panel_role_of(session, actor, panel.id) not in MANAGING_ROLES:
        raise Forbidden(
            "Only the panel's coordinator or chair may schedule its conferences",
            resource_type="panel",
            resource_id=panel.id,
        )
    if not panel.is_active:
        raise Conflict("The panel is inactive", resource_type="panel", resource_id=panel.id)
    _check_when(data.starts_at)
    if data.location is None and data.online_link is None:
        raise Invalid("Give a location, an online_link, or both", field="location")
    _check_chair(session, panel.id, data.chair_user_id)
    conference = Conference(
        panel_id=panel.id,
        starts_at=data.starts_at,
        duration_minutes=data.duration_minutes,
        location=data.location,
        online_link=str(data.online_link) if data.online_link else None,
        chair_user_id=data.chair_user_id,
        created_by_id=actor.required_id,
    )
    session.add(conference)
    session.flush()
    audit_conference(
        session,
        actor,
        conference,
        AuditAction.CONFERENCE_CREATE,
        changes={"panel_id": str(panel.id), "starts_at": conference.starts_at.isoformat()},
    )
    return public(session, actor, conference)


def list_conferences(
    session: Session,
    actor: Actor,
    panel_id: uuid.UUID | None,
    status: ConferenceStatus | None,
    starts_from: datetime | None,
    starts_before: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Conference], str | None]:
    """Conferences of the caller's panels, soonest first."""
    stmt = select(Conference).where(visible_conferences(actor))
    if panel_id is not None:
        stmt = stmt.where(col(Conference.panel_id) == panel_id)
    if status is not None:
        stmt = stmt.where(col(Conference.status) == status.value)
    if starts_from is not None:
        stmt = stmt.where(col(Conference.starts_at) >= starts_from)
    if starts_before is not None:
        stmt = stmt.where(col(Conference.starts_at) < starts_before)
    keys = [(col(Conference.starts_at), datetime), (col(Conference.id), uuid.UUID)]
    rows, next_cursor = paginate(session, stmt, keys, cursor, limit)
    audit.record(
        session,
        actor,
        AuditAction.CONFERENCE_LIST,
        resource_type="conference",
        detail={"returned": len(rows)},
    )
    return rows, next_cursor


def get_conference(session: Session, actor: Actor, conference_id: uuid.UUID) -> ConferencePublic:
    conference = visible(session, actor, conference_id)
    audit_conference(session, actor, conference, AuditAction.CONFERENCE_READ)
    return public(session, actor, conference)


_SCHEDULE_FIELDS = ("starts_at", "duration_minutes", "location", "online_link")


def _reschedule(
    session: Session, actor: Actor, conference: Conference, data: ConferenceUpdate
) -> dict[str, Any]:
    wanted: dict[str, Any] = {
        f: (str(v) if f == "online_link" and v is not None else v)
        for f in _SCHEDULE_FIELDS
        if f in data.model_fields_set
        for v in [getattr(data, f)]
    }
    for field in ("starts_at", "duration_minutes"):
        if field in wanted and wanted[field] is None:
            raise Invalid(f"{field} may be changed but not removed", field=field)
    changed = {f: v for f, v in wanted.items() if getattr(conference, f) != v}
    if not changed:
        if data.reschedule_reason is not None:
            raise Invalid("reschedule_reason goes with a change of time or place")
        return {}
    require_status(conference, {ConferenceStatus.SCHEDULED.value}, "reschedule or move it")
    if "starts_at" in changed:
        _check_when(changed["starts_at"])
    after = {f: changed.get(f, getattr(conference, f)) for f in _SCHEDULE_FIELDS}
    if after["location"] is None and after["online_link"] is None:
        raise Invalid("A conference needs a location, an online_link, or both", field="location")
    session.add(
        ScheduleChange(
            conference_id=conference.id,
            previous_starts_at=conference.starts_at,
            previous_duration_minutes=conference.duration_minutes,
            previous_location=conference.location,
            previous_online_link=conference.online_link,
            reason=data.reschedule_reason,
            changed_by_id=actor.required_id,
            **after,
        )
    )
    before = {f: getattr(conference, f) for f in changed}
    for field, value in changed.items():
        setattr(conference, field, value)
    return audit.diff(before, changed)


def _hear_listed_cases(session: Session, conference: Conference) -> None:
    """Concluding a conference means its listed cases were heard on its date (a change to
    each case, so its ETag moves on)."""
    session.execute(
        update(Case)
        .where(
            col(Case.id).in_(
                select(col(Listing.case_id)).where(col(Listing.conference_id) == conference.id)
            )
        )
        .values(last_heard_at=conference.starts_at, version=col(Case.version) + 1)
        .execution_options(synchronize_session=False)
    )


def _move(conference: Conference, data: ConferenceUpdate, session: Session) -> dict[str, Any]:
    target = data.status
    if target is None or target.value == conference.status:
        if data.cancel_reason is not None:
            raise Invalid("cancel_reason goes with status 'cancelled'", field="cancel_reason")
        return {}
    if target is ConferenceStatus.MINUTES_FINALISED:
        raise Invalid(
            "Minutes are finalised by the chair with POST /api/v1/conferences/{id}/finalise",
            field="status",
        )
    if target.value not in TRANSITIONS[conference.status]:
        raise Conflict(
            f"A conference that is {conference.status} cannot become {target.value}",
            resource_type="conference",
            resource_id=conference.id,
        )
    now = utcnow()
    if target is ConferenceStatus.CANCELLED:
        if not data.cancel_reason:
            raise Invalid("Cancelling needs a cancel_reason", field="cancel_reason")
        conference.cancelled_at, conference.cancel_reason = now, data.cancel_reason
    elif data.cancel_reason is not None:
        raise Invalid("cancel_reason goes with status 'cancelled'", field="cancel_reason")
    if target is ConferenceStatus.IN_PROGRESS:
        conference.started_at = now
    if target is ConferenceStatus.CONCLUDED:
        conference.concluded_at = now
        _hear_listed_cases(session, conference)
    before = conference.status
    conference.status = target.value
    return {"status": [before, target.value]}


def update_conference(
    session: Session,
    actor: Actor,
    conference_id: uuid.UUID,
    data: ConferenceUpdate,
    if_match: str | None,
) -> ConferencePublic:
    """Reschedule (history kept), move, change the chair, start, conclude or cancel."""
    conference = managed(session, actor, conference_id, if_match)
    if not data.model_fields_set:
        raise Invalid("Nothing to change")
    changes = _reschedule(session, actor, conference, data)
    if "chair_user_id" in data.model_fields_set and data.chair_user_id != conference.chair_user_id:
        if data.chair_user_id is None:
            raise Invalid("A conference always has a chair", field="chair_user_id")
        require_status(
            conference,
            {
                ConferenceStatus.SCHEDULED.value,
                ConferenceStatus.IN_PROGRESS.value,
                ConferenceStatus.CONCLUDED.value,
            },
            "change its chair",
        )
        _check_chair(session, conference.panel_id, data.chair_user_id)
        changes["chair_user_id"] = [str(conference.chair_user_id), str(data.chair_user_id)]
        conference.chair_user_id = data.chair_user_id
    changes |= _move(conference, data, session)
    if changes:
        bump(conference)
        session.flush()
    audit_conference(session, actor, conference, AuditAction.CONFERENCE_UPDATE, changes=changes)
    return public(session, actor, conference)


def finalise(
    session: Session, actor: Actor, conference_id: uuid.UUID, if_match: str | None
) -> ConferencePublic:
    """Lock the minutes: the conference's chair, once it has concluded and every listed case
    has its minutes. Later corrections are amendments."""
    conference = visible(session, actor, conference_id, for_update=True)
    if conference.chair_user_id != actor.id:
        raise Forbidden(
            "Only the conference's chair may finalise its minutes",
            resource_type="conference",
            resource_id=conference.id,
        )
    require_manager(session, actor, conference)
    check_if_match(if_match, conference.version, "conference", conference.id)
    require_status(conference, {ConferenceStatus.CONCLUDED.value}, "finalise the minutes")
    unminuted = session.scalars(
        select(col(Listing.id))
        .outerjoin(MinutesEntry, col(MinutesEntry.listing_id) == col(Listing.id))
        .where(col(Listing.conference_id) == conference.id, col(MinutesEntry.id).is_(None))
    ).all()
    if unminuted:
        raise Conflict(
            f"{len(unminuted)} listed case(s) have no minutes yet",
            resource_type="conference",
            resource_id=conference.id,
            extra={"listing_ids": [str(i) for i in unminuted]},
        )
    require_acknowledged(session, conference)
    conference.status = ConferenceStatus.MINUTES_FINALISED.value
    conference.finalised_at = utcnow()
    conference.finalised_by_id = actor.required_id
    bump(conference)
    session.flush()
    audit_conference(
        session,
        actor,
        conference,
        AuditAction.CONFERENCE_FINALISE,
        changes={"status": [ConferenceStatus.CONCLUDED.value, conference.status]},
    )
    return public(session, actor, conference)


def require_acknowledged(session: Session, conference: Conference) -> None:
    """Minutes need a present attendee, and every present attendee's acknowledgement of the
    confidentiality statement."""
    rows = session.execute(
        select(col(Attendance.id), col(Attendance.confidentiality_acknowledged_at)).where(
            col(Attendance.conference_id) == conference.id,
            col(Attendance.status) == AttendanceStatus.PRESENT.value,
        )
    ).all()
    if not rows:
        raise Conflict(
            "Record who is present before the minutes",
            resource_type="conference",
            resource_id=conference.id,
        )
    missing = [str(attendance_id) for attendance_id, at in rows if at is None]
    if missing:
        raise Conflict(
            f"{len(missing)} attendee(s) present have not acknowledged the confidentiality "
            "statement",
            resource_type="conference",
            resource_id=conference.id,
            extra={"attendance_ids": missing},
        )


def version_of(session: Session, conference_id: uuid.UUID) -> int:
    return int(
        session.scalar(select(col(Conference.version)).where(col(Conference.id) == conference_id))
        or 0
    )
