"""A conference's agenda: the cases listed on it, in order, with their outstanding actions
for review; suggestions of what to list next; publishing it to the member agencies."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Conflict, Invalid
from app.models.action import Action
from app.models.agenda import AgendaPublic
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
from app.policies import visible_cases
from app.services import agenda_reads
from app.services.conferences import (
    audit_conference,
    bump,
    managed,
    require_status,
    visible_listing,
)

# The agenda can change until the meeting ends.
EDITABLE = {ConferenceStatus.SCHEDULED.value, ConferenceStatus.IN_PROGRESS.value}


def read_agenda(session: Session, actor: Actor, conference_id: uuid.UUID) -> tuple[bytes, int]:
    """The agenda: to the panel's managers always, with suggestions; to other members once
    it is published. As ``AgendaPublic`` writes it, in JSON, and the conference's version."""
    return agenda_reads.agenda_json(session, actor, conference_id)


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
    return agenda_reads.agenda(session, actor, conference.id)


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
    return agenda_reads.agenda(session, actor, conference.id)


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
    return agenda_reads.agenda(session, actor, conference.id)
