"""A conference's agenda: the cases listed on it, in order, with their outstanding actions
for review; suggestions of what to list next; publishing it to the member agencies."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.clock import today
from app.errors import Conflict, Invalid
from app.models.action import Action, ActionStatus, ActionSummary
from app.models.agenda import AgendaPublic, ListingPublic, Suggestion, SuggestionReason
from app.models.base import utcnow
from app.models.case import Case, CaseStatus
from app.models.conference import (
    UPCOMING,
    AgendaOrder,
    Conference,
    ConferenceStatus,
    Listing,
    ListingIn,
)
from app.models.minutes import MinutesEntry
from app.models.panel import MANAGING_ROLES
from app.models.person import Person
from app.policies import not_excluded, visible_cases
from app.rawsql import Raw
from app.services import action_lists, actions
from app.services.conferences import (
    audit_conference,
    bump,
    managed,
    require_status,
    visible,
    visible_listing,
)
from app.services.panels import panel_role_of

SUGGESTIONS_SHOWN = 50
# The agenda can change until the meeting ends.
EDITABLE = {ConferenceStatus.SCHEDULED.value, ConferenceStatus.IN_PROGRESS.value}


def _listings(
    session: Session, actor: Actor, conference: Conference, manages: bool
) -> list[ListingPublic]:
    """The listings the caller may see (a case excluding their agency stays hidden), with
    each case's outstanding actions: columns, not ORM objects, in two queries."""
    listed = select(col(Listing.case_id)).where(col(Listing.conference_id) == conference.id)
    # The panel's managers see every case of it but those excluding their agency.
    shown = not_excluded(col(Case.id), actor) if manages else visible_cases(actor)
    rows = session.execute(
        select(
            col(Listing.id),
            col(Listing.position),
            col(Listing.created_at),
            col(Case.id),
            col(Case.reference),
            col(Case.status),
            col(Case.risk_level),
            col(Case.is_repeat),
            col(Case.subject_person_id),
            col(Person.given_name),
            col(Person.family_name),
        )
        .join(Case, col(Case.id) == col(Listing.case_id))
        .join(Person, col(Person.id) == col(Case.subject_person_id))
        .where(
            col(Listing.conference_id) == conference.id,
            col(Case.id).in_(select(col(Case.id)).where(col(Case.id).in_(listed), shown)),
        )
        .order_by(col(Listing.position), col(Listing.id))
    ).all()
    outstanding: dict[uuid.UUID, list[ActionSummary]] = defaultdict(list)
    if rows:
        raw, now = Raw(session), today()
        for action in session.execute(
            select(*action_lists.SUMMARY_COLUMNS)
            .join(Case, col(Case.id) == col(Action.case_id))
            .where(
                col(Action.case_id).in_(listed),  # those of hidden cases are left unused
                col(Action.status) == ActionStatus.OPEN.value,
            )
            .order_by(col(Action.due_date), col(Action.id))
        ):
            outstanding[action[1]].append(action_lists.summary(raw, action, now))
    return [
        ListingPublic(
            id=listing_id,
            conference_id=conference.id,
            position=position,
            case_id=case_id,
            case_reference=reference,
            case_status=status,
            risk_level=risk_level,
            is_repeat=is_repeat,
            subject_person_id=subject_id,
            subject_name=f"{given} {family}",
            outstanding_actions=outstanding[case_id],
            created_at=created_at,
        )
        for (
            listing_id,
            position,
            created_at,
            case_id,
            reference,
            status,
            risk_level,
            is_repeat,
            subject_id,
            given,
            family,
        ) in rows
    ]


def _upcoming_listed(panel_id: uuid.UUID) -> Any:
    return (
        select(col(Listing.case_id))
        .join(Conference, col(Conference.id) == col(Listing.conference_id))
        .where(col(Conference.panel_id) == panel_id, col(Conference.status).in_(UPCOMING))
    )


# What a suggestion shows of a case: columns, not ORM objects (a hundred rows per read).
_SUGGESTED = (
    col(Case.id),
    col(Case.reference),
    col(Case.risk_level),
    col(Case.is_repeat),
    col(Case.opened_at),
    col(Case.created_at),
    col(Case.last_heard_at),
    col(Case.subject_person_id),
)


# Built once: an alias builds its column collection on first use (ms for a wide table).
_HEARD = Case.__table__.alias("heard")  # type: ignore[attr-defined]


def _overdue_count() -> Any:
    """How many of the case's actions are overdue (a column of the suggestion rows)."""
    return (
        select(func.count())
        .where(col(Action.case_id) == col(Case.id), actions.overdue_clause(today()))
        .scalar_subquery()
        .label("overdue")
    )


def _suggestions(
    session: Session, actor: Actor, conference: Conference
) -> tuple[list[Suggestion], audit.Subjects]:
    """For the panel's managers: its open cases not listed on an upcoming conference that
    await their first hearing or have overdue actions, oldest first; and the (case, subject)
    pairs they show, for the audit event.

    Two bounded queries, each row with its case's count of overdue actions."""
    candidates = and_(
        col(Case.panel_id) == conference.panel_id,
        col(Case.status) == CaseStatus.OPEN.value,
        not_excluded(col(Case.id), actor),
        col(Case.id).not_in(_upcoming_listed(conference.panel_id)),
    )
    order = (col(Case.created_at), col(Case.id))
    awaiting = session.execute(
        select(*_SUGGESTED, _overdue_count())
        .where(candidates, col(Case.last_heard_at).is_(None))
        .order_by(*order)
        .limit(SUGGESTIONS_SHOWN)
    ).all()
    # Open cases heard before are few next to those awaiting a first hearing: found on the
    # (panel_id, last_heard_at) index, each checked for an overdue action.
    late = select(_HEARD.c.id).where(
        _HEARD.c.panel_id == conference.panel_id,
        _HEARD.c.last_heard_at.is_not(None),
        _HEARD.c.status == CaseStatus.OPEN.value,
        exists().where(col(Action.case_id) == _HEARD.c.id, actions.overdue_clause(today())),
    )
    heard_late = session.execute(
        select(*_SUGGESTED, _overdue_count())
        .where(candidates, col(Case.id).in_(late))
        .order_by(*order)
        .limit(SUGGESTIONS_SHOWN)
    ).all()
    shown = sorted([*awaiting, *heard_late], key=lambda c: (c.created_at, c.id))
    shown = shown[:SUGGESTIONS_SHOWN]
    out = []
    for case in shown:
        reasons = []
        if case.last_heard_at is None:
            reasons.append(SuggestionReason.AWAITING_LISTING)
        if case.overdue:
            reasons.append(SuggestionReason.OVERDUE_ACTIONS)
        out.append(
            Suggestion(
                case_id=case.id,
                case_reference=case.reference,
                reasons=reasons,
                risk_level=case.risk_level,
                is_repeat=case.is_repeat,
                opened_at=case.opened_at,
                overdue_actions=case.overdue,
            )
        )
    return out, [(case.id, case.subject_person_id) for case in shown]


def _agenda(session: Session, actor: Actor, conference: Conference) -> AgendaPublic:
    """The agenda as the caller may see it, audited with every case it shows."""
    manages = panel_role_of(session, actor, conference.panel_id) in MANAGING_ROLES
    items = (
        _listings(session, actor, conference, manages)
        if manages or conference.agenda_published_at is not None
        else []
    )
    suggestions, suggested = (
        _suggestions(session, actor, conference)
        if manages and conference.status in UPCOMING
        else (None, [])
    )
    audit_conference(
        session,
        actor,
        conference,
        AuditAction.AGENDA_READ,
        subjects=[*((item.case_id, item.subject_person_id) for item in items), *suggested],
    )
    return AgendaPublic(
        conference_id=conference.id,
        status=conference.status,
        agenda_published_at=conference.agenda_published_at,
        items=items,
        suggestions=suggestions,
        version=conference.version,
    )


def read_agenda(session: Session, actor: Actor, conference_id: uuid.UUID) -> AgendaPublic:
    """The agenda: to the panel's managers always, with suggestions; to other members once
    it is published."""
    conference = visible(session, actor, conference_id)
    return _agenda(session, actor, conference)


def add_listing(
    session: Session, actor: Actor, conference_id: uuid.UUID, data: ListingIn
) -> AgendaPublic:
    """List a case (of this panel, open, not on another upcoming conference)."""
    conference = managed(session, actor, conference_id)
    require_status(conference, EDITABLE, "change the agenda")
    case = session.scalars(
        select(Case).where(col(Case.id) == data.case_id, visible_cases(actor)).with_for_update()
    ).first()
    if case is None or case.panel_id != conference.panel_id:
        raise Invalid("case_id names no case of this conference's panel", field="case_id")
    if case.status != CaseStatus.OPEN.value:
        raise Conflict("The case is closed", resource_type="case", resource_id=case.id)
    elsewhere = session.scalar(
        select(col(Listing.conference_id))
        .join(Conference, col(Conference.id) == col(Listing.conference_id))
        .where(col(Listing.case_id) == case.id, col(Conference.status).in_(UPCOMING))
    )
    if elsewhere is not None:
        raise Conflict(
            "The case is already listed on an upcoming conference",
            resource_type="case",
            resource_id=case.id,
            extra={"conference_id": str(elsewhere)},
        )
    listings = list(
        session.scalars(
            select(Listing)
            .where(col(Listing.conference_id) == conference.id)
            .order_by(col(Listing.position), col(Listing.id))
        )
    )
    position = min(data.position or len(listings) + 1, len(listings) + 1)
    for listing in listings[position - 1 :]:
        listing.position += 1
    session.add(
        Listing(
            conference_id=conference.id,
            case_id=case.id,
            position=position,
            added_by_id=actor.required_id,
        )
    )
    bump(conference)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.LISTING_ADD,
        resource_type="conference",
        resource_id=conference.id,
        case_id=case.id,
        person_id=case.subject_person_id,
        changes={"position": position},
    )
    return _agenda(session, actor, conference)


def remove_listing(
    session: Session, actor: Actor, conference_id: uuid.UUID, listing_id: uuid.UUID
) -> None:
    conference = managed(session, actor, conference_id)
    listing = visible_listing(session, actor, conference, listing_id)
    require_status(conference, EDITABLE, "change the agenda")
    minuted = session.scalar(
        select(func.count())
        .select_from(Action)
        .where(col(Action.conference_id) == conference.id, col(Action.case_id) == listing.case_id)
    )
    if minuted:
        raise Conflict(
            "Actions were set for this case at this conference; it stays on the agenda",
            resource_type="conference",
            resource_id=conference.id,
        )
    case_id, person_id = session.execute(
        select(col(Case.id), col(Case.subject_person_id)).where(col(Case.id) == listing.case_id)
    ).one()
    entry = session.scalars(
        select(MinutesEntry).where(col(MinutesEntry.listing_id) == listing.id)
    ).first()
    if entry is not None:
        raise Conflict(
            "The case has minutes at this conference; it stays on the agenda",
            resource_type="conference",
            resource_id=conference.id,
        )
    session.delete(listing)
    session.flush()
    for index, other in enumerate(
        session.scalars(
            select(Listing)
            .where(col(Listing.conference_id) == conference.id)
            .order_by(col(Listing.position), col(Listing.id))
        ),
        start=1,
    ):
        other.position = index
    bump(conference)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.LISTING_REMOVE,
        resource_type="conference",
        resource_id=conference.id,
        case_id=case_id,
        person_id=person_id,
    )


def reorder(
    session: Session,
    actor: Actor,
    conference_id: uuid.UUID,
    data: AgendaOrder,
    if_match: str | None,
) -> AgendaPublic:
    """Put the agenda in a new order: every listing, each once."""
    conference = managed(session, actor, conference_id, if_match)
    require_status(conference, EDITABLE, "change the agenda")
    # Listings of cases hidden from the caller (their agency is excluded) keep their places;
    # the caller orders the ones they can see into the remaining places.
    every = list(
        session.scalars(
            select(Listing)
            .where(col(Listing.conference_id) == conference.id)
            .order_by(col(Listing.position), col(Listing.id))
        )
    )
    seen = set(
        session.scalars(
            select(col(Listing.id))
            .join(Case, col(Case.id) == col(Listing.case_id))
            .where(col(Listing.conference_id) == conference.id, visible_cases(actor))
        )
    )
    if len(data.listing_ids) != len(set(data.listing_ids)) or set(data.listing_ids) != seen:
        raise Invalid(
            "listing_ids must name every listing of the agenda exactly once", field="listing_ids"
        )
    by_id = {listing.id: listing for listing in every}
    wanted = iter(data.listing_ids)
    for position, listing in enumerate(every, start=1):
        target = by_id[next(wanted)] if listing.id in seen else listing
        target.position = position
    bump(conference)
    session.flush()
    audit_conference(
        session,
        actor,
        conference,
        AuditAction.AGENDA_REORDER,
        changes={"order": [str(i) for i in data.listing_ids]},
    )
    return _agenda(session, actor, conference)


def publish(
    session: Session, actor: Actor, conference_id: uuid.UUID, if_match: str | None
) -> AgendaPublic:
    """Publish the agenda: its cases become readable, for research, to member agencies."""
    conference = managed(session, actor, conference_id, if_match)
    require_status(conference, EDITABLE, "publish the agenda")
    if conference.agenda_published_at is not None:
        raise Conflict(
            "The agenda is already published; cases listed since are shared as they are added",
            resource_type="conference",
            resource_id=conference.id,
        )
    conference.agenda_published_at = utcnow()
    bump(conference)
    session.flush()
    audit_conference(session, actor, conference, AuditAction.AGENDA_PUBLISH)
    return _agenda(session, actor, conference)
