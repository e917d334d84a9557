"""The demo DV MARAC's meetings: a past conference with finalised minutes and actions (some
done, some overdue), and an upcoming one with a published agenda. Built through the same
services the API calls, so every step is validated and audited as it would be."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app.actor import Actor
from app.clock import PARTNERSHIP_TIME_ZONE, today
from app.models.action import Action, ActionCreate, ActionPatch
from app.models.agency import Agency
from app.models.case import Case
from app.models.conference import (
    AttendanceIn,
    AttendanceUpdate,
    ConferenceCreate,
    ConferenceUpdate,
    ListingIn,
)
from app.models.minutes import MinutesEntryIn
from app.models.panel import Panel
from app.models.user import User
from app.services import actions, agenda, agenda_reads, attendance, conferences, minutes


def _at(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=PARTNERSHIP_TIME_ZONE)


def _conference(
    session: Session, coordinator: Actor, panel: Panel, chair: User, day: date
) -> uuid.UUID:
    created = conferences.schedule(
        session,
        coordinator,
        ConferenceCreate.model_validate(
            {
                "panel_id": panel.id,
                "starts_at": _at(day),
                "duration_minutes": 180,
                "location": "Civic Offices, 2 Watling Street, Bexleyheath, Room 3",
                "online_link": "https://meet.example.org/bexley-marac",
                "chair_user_id": chair.id,
            }
        ),
    )
    return created.id


def _move(session: Session, actor: Actor, conference_id: uuid.UUID, status: str) -> None:
    conferences.update_conference(
        session, actor, conference_id, ConferenceUpdate.model_validate({"status": status}), None
    )


def seed_conferences(
    session: Session,
    panel: Panel,
    agencies: dict[str, Agency],
    users: dict[str, User],
    actor_of: dict[str, Actor],
) -> list[str]:
    coordinator, chair = actor_of["coordinator"], actor_of["chair"]
    case_ids = list(
        session.scalars(
            select(col(Case.id))
            .where(col(Case.panel_id) == panel.id)
            .order_by(col(Case.opened_at), col(Case.id))
        )
    )
    heard, waiting = case_ids[0], case_ids[1:]

    # Two weeks ago: heard, minuted, finalised, actions set.
    past = _conference(session, coordinator, panel, users["chair"], today() - timedelta(days=14))
    agenda.add_listing(session, coordinator, past, ListingIn(case_id=heard))
    agenda.publish(session, coordinator, past, None)
    _move(session, coordinator, past, "in_progress")
    for local, short, role in (
        ("chair", "MPS", "chair"),
        ("coordinator", "LBB", "coordinator"),
        ("police.rep", "MPS", "representative"),
        ("idva", "BWA", "idva"),
        ("probation.rep", "NPS", "representative"),
    ):
        row = attendance.record_attendance(
            session,
            coordinator,
            past,
            AttendanceIn.model_validate(
                {
                    "agency_id": agencies[short].id,
                    "user_id": users[local].id,
                    "role": role,
                    "status": "present",
                    "information_sent_in_advance": local != "probation.rep",
                }
            ),
        )
        attendance.update_attendance(
            session,
            actor_of[local],
            past,
            row.id,
            AttendanceUpdate(confidentiality_acknowledged=True),
            None,
        )
    attendance.record_attendance(
        session,
        coordinator,
        past,
        AttendanceIn.model_validate(
            {
                "agency_id": agencies["NHS Bexley"].id,
                "attendee_name": "Hana Health",
                "role": "representative",
                "status": "apologies",
                "information_sent_in_advance": True,
            }
        ),
    )
    (listing,) = agenda_reads.agenda(session, coordinator, past).items
    minutes.write_entry(
        session,
        coordinator,
        past,
        listing.id,
        MinutesEntryIn(
            discussion_summary="Police: two call-outs since referral, the last a breach of bail. "
            "IDVA in weekly contact; victim engaging. Probation: perpetrator on licence.",
            risks_identified="Escalating threats; perpetrator knows the address; two children.",
            decisions="Safety plan refreshed; address flagged; sanctuary scheme referral.",
        ),
        None,
    )
    plan = [
        ("MPS", "police.rep", "Flag the address for a priority police response", 7, "done"),
        ("BWA", "idva", "Refer to the sanctuary scheme and confirm fitting date", 10, "open"),
        ("NPS", None, "Review licence conditions with the offender manager", 5, "not_done"),
        ("BHP", None, "Consider a management transfer to a safe property", 60, "open"),
    ]
    set_actions: list[uuid.UUID] = []
    for short, owner, text, days, _ in plan:
        created = actions.create_action(
            session,
            coordinator,
            heard,
            ActionCreate.model_validate(
                {
                    "conference_id": past,
                    "description": text,
                    "owner_agency_id": agencies[short].id,
                    "owner_user_id": users[owner].id if owner else None,
                    "due_date": today() + timedelta(days=90),
                    "priority": "high" if days < 30 else "medium",
                }
            ),
        )
        set_actions.append(created.id)
    # Due dates as they were set two weeks ago: some have passed since.
    for action_id, (_, _, _, days, _) in zip(set_actions, plan, strict=True):
        stored = session.get(Action, action_id)
        assert stored is not None
        stored.due_date = today() - timedelta(days=14) + timedelta(days=days)
    session.flush()
    _move(session, coordinator, past, "concluded")
    conferences.finalise(session, chair, past, None)
    actions.update_action(
        session,
        actor_of["police.rep"],
        set_actions[0],
        ActionPatch.model_validate({"status": "done", "note": "Marker on the address since day 2"}),
        None,
    )
    actions.update_action(
        session,
        coordinator,
        set_actions[2],
        ActionPatch.model_validate(
            {
                "status": "not_done",
                "not_done_reason": "overtaken_by_events",
                "note": "Perpetrator recalled to prison",
            }
        ),
        None,
    )

    # In two weeks: the new cases and the heard one (for its overdue action), published.
    upcoming = _conference(
        session, coordinator, panel, users["chair"], today() + timedelta(days=14)
    )
    for case_id in [*waiting, heard]:
        agenda.add_listing(session, coordinator, upcoming, ListingIn(case_id=case_id))
    agenda.publish(session, coordinator, upcoming, None)
    return [
        f"  DV MARAC conferences: {past} (two weeks ago, minutes finalised, actions: one done,"
        " one overdue, one not done, one open),",
        f"    and {upcoming} (in two weeks, agenda published with {len(waiting) + 1} cases)",
    ]
