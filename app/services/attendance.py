"""Who attended a conference for which agency, and when each acknowledged the
confidentiality statement (no minutes are recorded until every attendee present has)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app.actor import Actor
from app.audit import AuditAction
from app.errors import Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.base import utcnow
from app.models.conference import (
    Attendance,
    AttendanceIn,
    AttendanceUpdate,
    Conference,
    ConferenceStatus,
)
from app.models.panel import MANAGING_ROLES, PanelMember
from app.models.user import User
from app.services.conferences import audit_conference, require_status, visible
from app.services.panels import panel_role_of

# Attendance is recorded until the minutes are finalised.
OPEN_FOR_ATTENDANCE = {
    ConferenceStatus.SCHEDULED.value,
    ConferenceStatus.IN_PROGRESS.value,
    ConferenceStatus.CONCLUDED.value,
}


def _manages(session: Session, actor: Actor, conference: Conference) -> bool:
    return panel_role_of(session, actor, conference.panel_id) in MANAGING_ROLES


def list_attendance(session: Session, actor: Actor, conference_id: uuid.UUID) -> list[Attendance]:
    conference = visible(session, actor, conference_id)
    rows = list(
        session.scalars(
            select(Attendance)
            .where(col(Attendance.conference_id) == conference.id)
            .order_by(col(Attendance.created_at), col(Attendance.id))
        )
    )
    audit_conference(session, actor, conference, AuditAction.ATTENDANCE_LIST)
    return rows


def record_attendance(
    session: Session, actor: Actor, conference_id: uuid.UUID, data: AttendanceIn
) -> Attendance:
    """Record an attendee (the panel's coordinator or chair)."""
    conference = visible(session, actor, conference_id, for_update=True)
    if not _manages(session, actor, conference):
        raise Forbidden(
            "Only the panel's coordinator or chair records attendance",
            resource_type="conference",
            resource_id=conference.id,
        )
    require_status(conference, OPEN_FOR_ATTENDANCE, "record attendance")
    if session.get(PanelMember, (conference.panel_id, data.agency_id)) is None:
        raise Invalid("agency_id must be a member agency of the panel", field="agency_id")
    name = data.attendee_name
    if data.user_id is not None:
        user = session.get(User, data.user_id)
        if user is None or user.agency_id != data.agency_id:
            raise Invalid("user_id must be a user of that agency", field="user_id")
        name = name or user.full_name
    if name is None:
        raise Invalid("Give the attendee's user_id or attendee_name", field="attendee_name")
    attendance = Attendance(
        conference_id=conference.id,
        agency_id=data.agency_id,
        user_id=data.user_id,
        attendee_name=name,
        role=data.role,
        status=data.status.value,
        information_sent_in_advance=data.information_sent_in_advance,
    )
    session.add(attendance)
    session.flush()
    audit_conference(
        session,
        actor,
        conference,
        AuditAction.ATTENDANCE_RECORD,
        changes={"attendance_id": str(attendance.id), "agency_id": str(data.agency_id)},
    )
    return attendance


def update_attendance(
    session: Session,
    actor: Actor,
    conference_id: uuid.UUID,
    attendance_id: uuid.UUID,
    data: AttendanceUpdate,
    if_match: str | None,
) -> Attendance:
    """The coordinator or chair updates any field; an attendee who is a user may record their
    own acknowledgement of the confidentiality statement."""
    conference = visible(session, actor, conference_id, for_update=True)
    attendance = session.scalars(
        select(Attendance)
        .where(col(Attendance.id) == attendance_id, col(Attendance.conference_id) == conference.id)
        .with_for_update()
    ).first()
    if attendance is None:
        raise NotFound("attendance", attendance_id)
    manages = _manages(session, actor, conference)
    own_acknowledgement = (
        attendance.user_id is not None
        and attendance.user_id == actor.id
        and data.model_fields_set <= {"confidentiality_acknowledged"}
    )
    if not (manages or own_acknowledgement):
        raise Forbidden(
            "Only the panel's coordinator or chair updates attendance; attendees may "
            "acknowledge the confidentiality statement for themselves",
            resource_type="conference",
            resource_id=conference.id,
        )
    check_if_match(if_match, attendance.version, "attendance", attendance.id)
    require_status(conference, OPEN_FOR_ATTENDANCE, "change attendance")
    if not data.model_fields_set:
        raise Invalid("Nothing to change")
    if data.confidentiality_acknowledged is False:
        raise Invalid(
            "An acknowledgement is a record of what happened and cannot be withdrawn",
            field="confidentiality_acknowledged",
        )
    changes: dict[str, object] = {}
    if data.confidentiality_acknowledged and attendance.confidentiality_acknowledged_at is None:
        attendance.confidentiality_acknowledged_at = utcnow()
        changes["confidentiality_acknowledged_at"] = (
            attendance.confidentiality_acknowledged_at.isoformat()
        )
    for field in ("role", "information_sent_in_advance"):
        value = getattr(data, field)
        if value is not None and getattr(attendance, field) != value:
            changes[field] = [getattr(attendance, field), value]
            setattr(attendance, field, value)
    if data.status is not None and data.status.value != attendance.status:
        changes["status"] = [attendance.status, data.status.value]
        attendance.status = data.status.value
    if changes:
        attendance.version += 1
        attendance.updated_at = utcnow()
        session.flush()
    audit_conference(
        session,
        actor,
        conference,
        AuditAction.ATTENDANCE_UPDATE,
        changes={"attendance_id": str(attendance.id), **changes},
    )
    return attendance
