"""Minutes: drafted per listed case during and after the meeting, locked by the chair's
finalising; corrections after that are amendments that keep the original text."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Conflict, Forbidden
from app.etags import check_if_match
from app.models.action import Action, ActionSummary
from app.models.base import utcnow
from app.models.case import Case
from app.models.conference import Conference, ConferenceStatus, Listing
from app.models.minutes import (
    AmendmentIn,
    AmendmentPublic,
    MinutesAmendment,
    MinutesEntry,
    MinutesEntryIn,
    MinutesEntryPublic,
    MinutesField,
    MinutesPublic,
)
from app.models.panel import MANAGING_ROLES
from app.policies import visible_cases
from app.services import actions
from app.services.conferences import managed, require_acknowledged, visible, visible_listing
from app.services.panels import panel_role_of

DRAFTING = {ConferenceStatus.IN_PROGRESS.value, ConferenceStatus.CONCLUDED.value}
FINALISED = ConferenceStatus.MINUTES_FINALISED.value


def _entries(
    session: Session, actor: Actor, conference: Conference, listing_id: uuid.UUID | None = None
) -> list[MinutesEntryPublic]:
    """Minutes of the listed cases the caller may see, in agenda order."""
    stmt = (
        select(Listing, col(Case.reference), MinutesEntry)
        .join(Case, col(Case.id) == col(Listing.case_id))
        .outerjoin(MinutesEntry, col(MinutesEntry.listing_id) == col(Listing.id))
        .where(col(Listing.conference_id) == conference.id, visible_cases(actor))
        .order_by(col(Listing.position), col(Listing.id))
    )
    if listing_id is not None:
        stmt = stmt.where(col(Listing.id) == listing_id)
    rows = session.execute(stmt).all()
    amendments: dict[uuid.UUID, list[MinutesAmendment]] = defaultdict(list)
    entry_ids = [entry.id for _, _, entry in rows if entry is not None]
    if entry_ids:
        for amendment in session.scalars(
            select(MinutesAmendment)
            .where(col(MinutesAmendment.entry_id).in_(entry_ids))
            .order_by(col(MinutesAmendment.created_at), col(MinutesAmendment.id))
        ):
            amendments[amendment.entry_id].append(amendment)
    set_here: dict[uuid.UUID, list[ActionSummary]] = defaultdict(list)
    case_ids = [listing.case_id for listing, _, _ in rows]
    if case_ids:
        agreed = session.scalars(
            select(Action)
            .where(col(Action.conference_id) == conference.id, col(Action.case_id).in_(case_ids))
            .order_by(col(Action.created_at), col(Action.id))
        ).all()
        for summary in actions.summaries(session, agreed):
            set_here[summary.case_id].append(summary)
    out = []
    for listing, reference, entry in rows:
        texts = {f.value: getattr(entry, f.value) if entry else None for f in MinutesField}
        out.append(
            MinutesEntryPublic(
                listing_id=listing.id,
                case_id=listing.case_id,
                case_reference=reference,
                position=listing.position,
                recorded_by_id=entry.recorded_by_id if entry else None,
                version=entry.version if entry else None,
                updated_at=(entry.updated_at or entry.created_at) if entry else None,
                amendments=[AmendmentPublic.model_validate(a) for a in amendments.get(entry.id, [])]
                if entry
                else [],
                actions_set=set_here[listing.case_id],
                **texts,
            )
        )
    return out


def _audit_cases(
    session: Session,
    actor: Actor,
    conference: Conference,
    what: AuditAction,
    case_ids: list[uuid.UUID],
) -> None:
    subjects = session.execute(
        select(col(Case.id), col(Case.subject_person_id)).where(col(Case.id).in_(case_ids))
    ).all()
    audit.record(
        session,
        actor,
        what,
        resource_type="conference",
        resource_id=conference.id,
        subjects=[(case_id, person_id) for case_id, person_id in subjects],
    )


def read_minutes(session: Session, actor: Actor, conference_id: uuid.UUID) -> MinutesPublic:
    """Draft minutes to the panel's managers; finalised ones to every member."""
    conference = visible(session, actor, conference_id)
    manages = panel_role_of(session, actor, conference.panel_id) in MANAGING_ROLES
    if not manages and conference.status != FINALISED:
        raise Forbidden(
            "Draft minutes are for the panel's coordinator and chair; they are circulated "
            "once the chair finalises them",
            resource_type="conference",
            resource_id=conference.id,
        )
    entries = _entries(session, actor, conference)
    _audit_cases(session, actor, conference, AuditAction.MINUTES_READ, [e.case_id for e in entries])
    return MinutesPublic(
        conference_id=conference.id,
        status=conference.status,
        finalised=conference.status == FINALISED,
        finalised_at=conference.finalised_at,
        entries=entries,
    )


def write_entry(
    session: Session,
    actor: Actor,
    conference_id: uuid.UUID,
    listing_id: uuid.UUID,
    data: MinutesEntryIn,
    if_match: str | None,
) -> MinutesEntryPublic:
    """Record or revise one case's minutes while they are drafts."""
    conference = managed(session, actor, conference_id)
    listing = visible_listing(session, actor, conference, listing_id)
    if conference.status == FINALISED:
        raise Conflict(
            "The minutes are finalised: corrections are amendments "
            f"(POST /api/v1/conferences/{conference.id}/minutes/{listing.id}/amendments)",
            resource_type="conference",
            resource_id=conference.id,
        )
    if conference.status not in DRAFTING:
        raise Conflict(
            f"Minutes are recorded once the conference is in progress (it is {conference.status})",
            resource_type="conference",
            resource_id=conference.id,
        )
    require_acknowledged(session, conference)
    entry = session.scalars(
        select(MinutesEntry).where(col(MinutesEntry.listing_id) == listing.id).with_for_update()
    ).first()
    if entry is None:
        if if_match is not None and if_match.strip() != "*":
            check_if_match(if_match, 0, "minutes", listing.id)
        entry = MinutesEntry(
            listing_id=listing.id,
            conference_id=conference.id,
            case_id=listing.case_id,
            recorded_by_id=actor.required_id,
        )
        session.add(entry)
        before: dict[str, object] = {}
    else:
        check_if_match(if_match, entry.version, "minutes", entry.id)
        before = {f.value: getattr(entry, f.value) for f in MinutesField}
        entry.version += 1
        entry.updated_at = utcnow()
        entry.recorded_by_id = actor.required_id
    for field in data.model_fields_set:
        setattr(entry, field, getattr(data, field))
    session.flush()
    after = {f.value: getattr(entry, f.value) for f in MinutesField}
    _audit_entry(
        session,
        actor,
        conference,
        listing,
        AuditAction.MINUTES_WRITE,
        fields=sorted(k for k in after if after[k] != before.get(k)),
    )
    (public,) = _entries(session, actor, conference, listing.id)
    return public


def _audit_entry(
    session: Session,
    actor: Actor,
    conference: Conference,
    listing: Listing,
    what: AuditAction,
    **detail: object,
) -> None:
    person_id = session.scalar(
        select(col(Case.subject_person_id)).where(col(Case.id) == listing.case_id)
    )
    audit.record(
        session,
        actor,
        what,
        resource_type="conference",
        resource_id=conference.id,
        case_id=listing.case_id,
        person_id=person_id,
        detail={"listing_id": str(listing.id), **detail},
    )


def amend(
    session: Session,
    actor: Actor,
    conference_id: uuid.UUID,
    listing_id: uuid.UUID,
    data: AmendmentIn,
) -> MinutesEntryPublic:
    """Correct finalised minutes: the original text stays; the amendment is added to it."""
    conference = managed(session, actor, conference_id)
    listing = visible_listing(session, actor, conference, listing_id)
    if conference.status != FINALISED:
        raise Conflict(
            "The minutes are not finalised yet: edit them directly",
            resource_type="conference",
            resource_id=conference.id,
        )
    entry = session.scalars(
        select(MinutesEntry).where(col(MinutesEntry.listing_id) == listing.id)
    ).one()
    previous = session.scalars(
        select(MinutesAmendment)
        .where(
            col(MinutesAmendment.entry_id) == entry.id,
            col(MinutesAmendment.field) == data.field.value,
        )
        .order_by(col(MinutesAmendment.created_at).desc(), col(MinutesAmendment.id).desc())
    ).first()
    session.add(
        MinutesAmendment(
            entry_id=entry.id,
            conference_id=conference.id,
            field=data.field.value,
            previous_text=previous.text if previous else getattr(entry, data.field.value),
            text=data.text,
            reason=data.reason,
            amended_by_id=actor.required_id,
        )
    )
    session.flush()
    _audit_entry(
        session, actor, conference, listing, AuditAction.MINUTES_AMEND, field=data.field.value
    )
    (public,) = _entries(session, actor, conference, listing.id)
    return public
