"""People: search with match scores, read, and resolve the people a referral describes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Invalid, NotFound
from app.models.agency import Agency, AgencyKind
from app.models.base import new_id, utcnow
from app.models.case import Case, CasePerson
from app.models.person import (
    Person,
    PersonCandidate,
    PersonIdentifier,
    PersonIn,
    PersonPublic,
)
from app.models.referral import Referral, ReferralPerson
from app.policies import managed_panel_ids, visible_cases, visible_people
from app.rawsql import Raw
from app.services import matching


def public(person: Person, may_see_safe_contact: Collection[uuid.UUID]) -> PersonPublic:
    """The person as this actor may see them: safe contact details only for those who need them."""
    out = PersonPublic.model_validate(person)
    if person.id not in may_see_safe_contact:
        out.safe_contact = None
    return out


def safe_contact_readers(session: Session, actor: Actor, people_: list[Person]) -> set[uuid.UUID]:
    """Of these people, those whose safe contact details the actor needs: all of them for an
    IDVA service (who represent victims); otherwise those on a referral or case of a panel the
    actor runs. Running some other panel is not enough. Two queries, whatever the count."""
    ids = [p.id for p in people_ if p.safe_contact is not None]
    if not ids:
        return set()
    kind = session.scalar(select(col(Agency.kind)).where(col(Agency.id) == actor.agency_id))
    if kind == AgencyKind.IDVA_SERVICE.value:
        return set(ids)
    managed = managed_panel_ids(actor)
    on_referral = (
        select(col(ReferralPerson.person_id))
        .join(Referral, col(Referral.id) == col(ReferralPerson.referral_id))
        .where(col(ReferralPerson.person_id).in_(ids), col(Referral.panel_id).in_(managed))
    )
    on_case = (
        select(col(CasePerson.person_id))
        .join(Case, col(Case.id) == col(CasePerson.case_id))
        .where(
            col(CasePerson.person_id).in_(ids),
            col(Case.panel_id).in_(managed),
            visible_cases(actor),
        )
    )
    return set(session.scalars(on_referral.union(on_case)))


def search(
    session: Session,
    actor: Actor,
    name: str | None,
    date_of_birth: date | None,
    postcode: str | None,
    limit: int,
) -> list[PersonCandidate]:
    """Candidates among the people the caller may see, best match first."""
    if not (name or date_of_birth or postcode):
        raise Invalid("Give at least one of name, date_of_birth and postcode")
    query = matching.Query.parse(name, date_of_birth, postcode)
    found = matching.candidates(session, actor, query, visible_only=True, limit=limit)
    audit.record(
        session,
        actor,
        AuditAction.PERSON_SEARCH,
        resource_type="person",
        detail={"returned": len(found)},
    )
    # The full records of the candidates matching scored, for what the caller may see.
    ids = [c.id for c, _, _ in found]
    records = (
        {p.id: p for p in session.scalars(select(Person).where(col(Person.id).in_(ids)))}
        if ids
        else {}
    )
    shown = [(records[c.id], s, why) for c, s, why in found]
    readers = safe_contact_readers(session, actor, [p for p, _, _ in shown])
    return [
        PersonCandidate(person=public(p, readers), score=s, matched_on=why) for p, s, why in shown
    ]


def get_person(session: Session, actor: Actor, person_id: uuid.UUID) -> PersonPublic:
    """One person, if they are on a case or referral the caller may see."""
    person = session.scalars(
        select(Person).where(col(Person.id) == person_id, visible_people(actor))
    ).first()
    if person is None:
        raise NotFound("person", person_id)
    audit.record(
        session,
        actor,
        AuditAction.PERSON_READ,
        resource_type="person",
        resource_id=person.id,
        person_id=person.id,
    )
    return public(person, safe_contact_readers(session, actor, [person]))


def lock_identities(session: Session, described: Iterable[PersonIn]) -> None:
    """Serialise concurrent referrals about the same new person, on PostgreSQL.

    Two transactions that both look someone up, find no one and create them would leave two
    records that match exactly; from then on no referral about that person matches exactly
    again, and each creates yet another record flagged against all the others (measured: one
    new record per referral under 32 concurrent submissions). A transaction-scoped advisory
    lock per identity that can match exactly (family name, first name, date of birth), taken
    in a fixed order before the lookup that may create them (``resolve_all``), makes the
    second wait for the first's commit and then find its record. SQLite needs none: its
    writers run one at a time (BEGIN IMMEDIATE).
    """
    raw = Raw(session)
    if raw.sqlite:
        return
    keys = sorted(
        {
            matching.identity_lock_key(
                matching.name_key(d.family_name), matching.given_key(d.given_name), d.date_of_birth
            )
            for d in described
            if d.date_of_birth is not None
        }
    )
    for key in keys:
        # Held for the first lookup's message (app.pending): it runs first all the same.
        raw.later("SELECT pg_advisory_xact_lock(?)", (key,))


@dataclass
class Resolved:
    person_id: uuid.UUID
    created: bool
    duplicates: int


Rows = list[tuple[Any, ...]]


def lookups(
    raw: Raw, actor: Actor, entries: Sequence[tuple[uuid.UUID | None, PersonIn | None]]
) -> list[tuple[int, tuple[str, list[Any]]]]:
    """The matching statements of the entries described by details (and no agency
    identifier, which is looked up first), by entry: to send with the unit's other reads,
    and give their rows to ``resolve_all``."""
    out = []
    for i, (person_id, details) in enumerate(entries):
        if person_id is None and details is not None and not details.agency_identifiers:
            statement = matching.lookup(raw, actor, _query(details), visible_only=False)
            if statement is not None:
                out.append((i, statement))
    return out


def resolve_all(
    session: Session,
    actor: Actor,
    entries: Sequence[tuple[uuid.UUID | None, PersonIn | None]],
    looked_up: dict[int, Rows] | None = None,
) -> list[Resolved]:
    """The people of a referral, in order: ``resolve`` for each ``(person_id, details)``.

    ``looked_up``: the rows of ``lookups``' statements, by entry, read with the unit's other
    reads. Each stands for its entry's lookup until someone it could find is created here
    (the same person described twice, say); after that the entry is looked up again.

    On PostgreSQL, everyone described with a date of birth (an identity that can match
    exactly) is first looked up without a lock. Someone already known is linked as found,
    so that referrals about them (a perpetrator named again and again) never wait for each
    other: the lock held each such referral from its lookup to its commit, and made them run
    one at a time. Only those not found are locked, all at once in a fixed order
    (``lock_identities``), and looked up again under the lock before a record is made.
    """
    ahead = dict(looked_up or {})
    known: list[Resolved | None] = [None] * len(entries)
    if not Raw(session).sqlite:
        lockable = [
            (i, details)
            for i, (person_id, details) in enumerate(entries)
            if person_id is None and details is not None and details.date_of_birth is not None
        ]
        for i, described in lockable:
            known[i] = _lookup(session, actor, described, ahead.pop(i, None))[0]
        lock_identities(session, [described for i, described in lockable if known[i] is None])
    out = []
    for i, (found, (person_id, details)) in enumerate(zip(known, entries, strict=True)):
        if found is None:
            found = resolve(session, actor, person_id, details, ahead.pop(i, None))
            if found.created and details is not None:
                created = _query(details)
                for j in list(ahead):
                    later = entries[j][1]
                    if later is not None and matching.may_find(_query(later), created):
                        del ahead[j]
        out.append(found)
    return out


def resolve(
    session: Session,
    actor: Actor,
    person_id: uuid.UUID | None,
    details: PersonIn | None,
    looked_up: Rows | None = None,
) -> Resolved:
    """The person a referral is about: a given id, an exact match, or a new record.

    A new record that looks like someone already known is flagged as a possible duplicate,
    never merged. ``looked_up``: the rows of the details' matching statement, if read already.
    """
    if person_id is not None:
        person = session.scalars(
            select(Person).where(col(Person.id) == person_id, visible_people(actor))
        ).first()
        if person is None:
            raise Invalid(f"person_id {person_id} is not a person you can refer")
        return Resolved(person.id, created=False, duplicates=0)
    if details is None:
        raise Invalid("each person needs either person_id or details")
    known, found = _lookup(session, actor, details, looked_up)
    if known is not None:
        return known
    person_id = _create(session, actor, details)
    likely = [(p, s) for p, s, _ in found if s >= matching.LIKELY_DUPLICATE]
    if likely:
        Raw(session).insert(
            "person_duplicate",
            [
                {
                    "person_id": person_id,
                    "candidate_id": other.id,
                    "score": score,
                    "status": "open",
                    "created_at": utcnow(),
                }
                for other, score in likely
            ],
            later=True,
        )
    return Resolved(person_id, created=True, duplicates=len(likely))


def _query(details: PersonIn) -> matching.Query:
    return matching.Query(
        family=matching.name_key(details.family_name),
        given=matching.given_key(details.given_name),
        date_of_birth=details.date_of_birth,
        postcode=matching.postcode_key(details.postcode),
    )


def _lookup(
    session: Session, actor: Actor, details: PersonIn, looked_up: Rows | None = None
) -> tuple[Resolved | None, list[tuple[matching.Candidate, float, list[str]]]]:
    """The person these details name, by an agency identifier or as the one exact match
    (family name, first name, date of birth), if any; and the candidates found by matching
    (from ``looked_up``, the rows of its statement, when read already)."""
    by_identifier = _by_identifier(session, details)
    if by_identifier is not None:
        return Resolved(by_identifier.id, created=False, duplicates=0), []
    query = _query(details)
    if looked_up is None:
        found = matching.candidates(session, actor, query, visible_only=False)
    else:
        found = matching.scored(Raw(session), query, looked_up)
    exact = [
        p
        for p, _, why in found
        if {"family_name", "given_name", "date_of_birth"} <= set(why) and p.given_key == query.given
    ]
    if len(exact) == 1:
        return Resolved(exact[0].id, created=False, duplicates=0), found
    return None, found


def _by_identifier(session: Session, details: PersonIn) -> Person | None:
    for ident in details.agency_identifiers:
        person = session.scalars(
            select(Person)
            .join(PersonIdentifier, col(PersonIdentifier.person_id) == col(Person.id))
            .where(
                col(PersonIdentifier.agency_id) == ident.agency_id,
                col(PersonIdentifier.identifier) == ident.identifier,
            )
        ).first()
        if person is not None:
            return person
    return None


def _create(session: Session, actor: Actor, details: PersonIn) -> uuid.UUID:
    """A new person record, through the driver (``app.rawsql``): every new victim of a
    referral is one, and the ORM's object and flush cost several times the insert."""
    raw = Raw(session)
    person_id = new_id()
    raw.insert(
        "person",
        [
            {
                "id": person_id,
                "given_name": details.given_name,
                "family_name": details.family_name,
                "aliases": list(details.aliases),
                "date_of_birth": details.date_of_birth,
                "gender": details.gender,
                "ethnicity": details.ethnicity,
                "disability": details.disability,
                "lgbt": details.lgbt,
                "address": details.address,
                "postcode": details.postcode.upper() if details.postcode else None,
                "safe_contact": details.safe_contact.model_dump(mode="json", exclude_none=True)
                if details.safe_contact
                else None,
                "family_key": matching.name_key(details.family_name),
                "given_key": matching.given_key(details.given_name),
                "postcode_key": matching.postcode_key(details.postcode),
                "version": 1,
                "created_at": utcnow(),
            }
        ],
        later=True,  # with the unit's next message (app.pending)
    )
    for ident in details.agency_identifiers:
        if session.get(Agency, ident.agency_id) is None:
            raise Invalid(f"agency_identifiers: unknown agency {ident.agency_id}")
        raw.insert(
            "person_identifier",
            [
                {
                    "id": new_id(),
                    "person_id": person_id,
                    "agency_id": ident.agency_id,
                    "identifier": ident.identifier,
                }
            ],
        )
    audit.record(
        session,
        actor,
        AuditAction.PERSON_CREATE,
        resource_type="person",
        resource_id=person_id,
        person_id=person_id,
    )
    return person_id
