"""Person matching: normalised names (nicknames and initials tolerated), date of birth,
postcode. Candidates are fetched through indexes, then scored here."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date
from difflib import SequenceMatcher
from itertools import combinations
from typing import Any

from sqlalchemy import and_, bindparam, select, union_all
from sqlalchemy.orm import Session
from sqlmodel import col

from app.actor import Actor
from app.models.person import Person
from app.policies import visible_people
from app.prepared import Prepared
from app.prepared import Query as PreparedQuery
from app.rawsql import Raw

NICKNAMES = {
    "abby": "abigail",
    "alex": "alexander",
    "andy": "andrew",
    "becky": "rebecca",
    "beth": "elizabeth",
    "bill": "william",
    "billy": "william",
    "bob": "robert",
    "bobby": "robert",
    "cathy": "catherine",
    "charlie": "charles",
    "chris": "christopher",
    "dan": "daniel",
    "danny": "daniel",
    "dave": "david",
    "ed": "edward",
    "eddie": "edward",
    "fred": "frederick",
    "harry": "henry",
    "jack": "john",
    "jim": "james",
    "jimmy": "james",
    "jen": "jennifer",
    "jenny": "jennifer",
    "jo": "joanne",
    "joe": "joseph",
    "johnny": "john",
    "jon": "jonathan",
    "kate": "katherine",
    "katie": "katherine",
    "kathy": "katherine",
    "liz": "elizabeth",
    "lizzie": "elizabeth",
    "maggie": "margaret",
    "matt": "matthew",
    "meg": "margaret",
    "mick": "michael",
    "mike": "michael",
    "nick": "nicholas",
    "pat": "patricia",
    "peggy": "margaret",
    "rob": "robert",
    "sam": "samuel",
    "steve": "stephen",
    "sue": "susan",
    "ted": "edward",
    "tom": "thomas",
    "tony": "anthony",
    "vicky": "victoria",
    "will": "william",
}
CANDIDATE_CAP = 200
LIKELY_DUPLICATE = 0.6


_NOT_LETTER = re.compile(r"[^a-z]")
_NOT_POSTCODE = re.compile(r"[^A-Z0-9]")


def name_key(name: str) -> str:
    """Lower-case ASCII letters only: "Zoë O'Brien-Smith" -> 'zoeobriensmith'."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_LETTER.sub("", folded.lower())[:100]


def given_key(name: str) -> str:
    """The first given name, nicknames mapped to their usual full form."""
    first = name.strip().split()[0] if name.strip() else ""
    key = name_key(first)
    return NICKNAMES.get(key, key)


def postcode_key(postcode: str | None) -> str | None:
    if not postcode:
        return None
    key = _NOT_POSTCODE.sub("", postcode.upper())
    return key[:10] or None


def identity_lock_key(family: str, given: str, date_of_birth: date) -> int:
    """A stable signed 64-bit key for the identity an exact match compares (PostgreSQL
    advisory locks take a bigint); the same in every process, unlike ``hash()``."""
    digest = hashlib.blake2b(
        f"{family}|{given}|{date_of_birth.isoformat()}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class Query:
    family: str | None
    given: str | None
    date_of_birth: date | None
    postcode: str | None

    @classmethod
    def parse(cls, name: str | None, dob: date | None, postcode: str | None) -> Query:
        """``name`` is "given family" or "family"; a single token is taken as the family name."""
        parts = (name or "").split()
        family = name_key(parts[-1]) if parts else None
        given = given_key(" ".join(parts[:-1])) if len(parts) > 1 else None
        return cls(family or None, given or None, dob, postcode_key(postcode))


@dataclass(frozen=True, slots=True)
class Candidate:
    """What matching compares of a person on record."""

    id: uuid.UUID
    family_name: str
    family_key: str
    given_key: str
    aliases: list[str]
    date_of_birth: date | None
    postcode_key: str | None


def _given_score(query: str, candidate: Candidate) -> tuple[float, str | None]:
    if query == candidate.given_key:
        return 0.2, "given_name"
    if len(query) == 1 or len(candidate.given_key) == 1:
        if query[:1] == candidate.given_key[:1]:
            return 0.1, "initial"
    elif SequenceMatcher(None, query, candidate.given_key).ratio() >= 0.8:
        return 0.12, "given_name_similar"
    return 0.0, None


def _family_score(query: str, candidate: Candidate) -> tuple[float, str | None]:
    if query == candidate.family_key:
        return 0.35, "family_name"
    if any(name_key(alias.split()[-1]) == query for alias in candidate.aliases if alias.split()):
        return 0.3, "alias"
    if SequenceMatcher(None, query, candidate.family_key).ratio() >= 0.85:
        return 0.25, "family_name_similar"
    return 0.0, None


def _dob_score(query: date, born: date | None) -> tuple[float, str | None]:
    if born is None:
        return 0.0, None
    if query == born:
        return 0.3, "date_of_birth"
    swapped = query.day <= 12 and born == date(query.year, query.day, query.month)
    if swapped or (query.month, query.day) == (born.month, born.day):
        return 0.12, "date_of_birth_partial"
    return 0.0, None


def score(query: Query, candidate: Candidate) -> tuple[float, list[str]]:
    """A 0-1 likelihood that ``candidate`` is the person described, and what matched."""
    parts: list[tuple[float, str | None]] = []
    if query.family:
        parts.append(_family_score(query.family, candidate))
    if query.given:
        parts.append(_given_score(query.given, candidate))
    if query.date_of_birth:
        parts.append(_dob_score(query.date_of_birth, candidate.date_of_birth))
    if query.postcode and candidate.postcode_key:
        if query.postcode == candidate.postcode_key:
            parts.append((0.15, "postcode"))
        elif query.postcode[:-3] == candidate.postcode_key[:-3]:
            parts.append((0.06, "postcode_district"))
    total = min(1.0, sum(points for points, _ in parts))
    return round(total, 3), [why for _, why in parts if why]


_KEYS = {
    "family": Person.__table__.c.family_key,  # type: ignore[attr-defined]
    "given": Person.__table__.c.given_key,  # type: ignore[attr-defined]
    "born": Person.__table__.c.date_of_birth,  # type: ignore[attr-defined]
    "postcode": Person.__table__.c.postcode_key,  # type: ignore[attr-defined]
}
_COLUMNS = (
    col(Person.id),
    col(Person.family_name),
    col(Person.family_key),
    col(Person.given_key),
    col(Person.aliases),
    col(Person.date_of_birth),
    col(Person.postcode_key),
)
# One named parameter per field, shared by every lookup that compares it.
_PARAMS = {name: bindparam(name, required=False, type_=c.type) for name, c in _KEYS.items()}


def _build_lookup(actor: Actor, variant: Hashable) -> PreparedQuery:
    """The people any of the lookups finds, for the fields the query gives (the columns of
    a ``Candidate``), once for each lookup that finds them.

    Each broad lookup (the family name, the date of birth, the postcode) is capped, and a
    common surname, birthday or a block of flats' postcode can fill the cap with others. So
    narrower lookups (everything given agreeing, then pairs agreeing) are capped each on its
    own: a strong candidate is always scored, whatever order rows come back in. One
    statement; each lookup is served by an index on person, whatever the planner's
    statistics say (``tests/test_people.py`` reads the plans)."""
    assert isinstance(variant, tuple)
    present, visible_only = variant
    fields = {name: _KEYS[name] == _PARAMS[name] for name in present}
    indexed = [fields[k] for k in ("family", "born", "postcode") if k in fields]
    tiers: list[tuple[str, ...]] = [tuple(fields)]
    if "given" in fields and "born" in fields:
        tiers.append(("family", "given", "born"))
    # Pairs; the (unindexed) first name only with the family name it narrows.
    tiers += [p for p in combinations(fields, 2) if "given" not in p or p == ("family", "given")]
    lookups = [and_(*(fields[k] for k in tier)) for tier in dict.fromkeys(tiers) if len(tier) > 1]
    parts = []
    for where in [*lookups, *indexed]:
        stmt = select(*_COLUMNS).where(where)
        if visible_only:
            stmt = stmt.where(visible_people(actor))
        capped = stmt.limit(CANDIDATE_CAP).subquery()
        parts.append(select(capped))
    # Each lookup's rows as they are, not ``person.id IN (the lookups)``: on that shape the
    # plan depended on the planner's statistics, and SQLite's, gathered while there were
    # few people, had it scan every person for every lookup (a referral's cost grew with
    # every person recorded). Someone found by several lookups comes back once each.
    return union_all(*parts)


_LOOKUP = Prepared(_build_lookup)


def candidates(
    session: Session, actor: Actor, query: Query, *, visible_only: bool, limit: int = 20
) -> list[tuple[Candidate, float, list[str]]]:
    """Scored candidates, best first; with ``visible_only``, only people the actor may see
    (``app.policies.visible_people``). One statement, through the driver."""
    session.flush()  # people this unit created through the ORM are candidates too
    raw = Raw(session)
    statement = lookup(raw, actor, query, visible_only=visible_only)
    return [] if statement is None else scored(raw, query, raw.all_compiled(*statement), limit)


def lookup(
    raw: Raw, actor: Actor, query: Query, *, visible_only: bool
) -> tuple[str, list[Any]] | None:
    """The statement whose rows ``scored`` scores, to send with others; none when the query
    gives nothing to look people up by."""
    values = {
        "family": query.family,
        "given": query.given if query.family else None,
        "born": query.date_of_birth,
        "postcode": query.postcode,
    }
    present = tuple(name for name, value in values.items() if value)
    if not set(present) & {"family", "born", "postcode"}:
        return None
    return _LOOKUP.statement(raw, actor, values, (present, visible_only))


def scored(
    raw: Raw, query: Query, rows: list[tuple[Any, ...]], limit: int = 20
) -> list[tuple[Candidate, float, list[str]]]:
    """The rows of ``lookup``'s statement as candidates with their scores, best first."""
    found = [_candidate(raw, r) for r in {r[0]: r for r in rows}.values()]
    ranked = [(p, *score(query, p)) for p in found]
    ranked = [row for row in ranked if row[1] > 0]
    ranked.sort(key=lambda row: (-row[1], row[0].family_name, str(row[0].id)))
    return ranked[:limit]


def may_find(query: Query, person: Query) -> bool:
    """Whether ``lookup`` for ``query`` could find someone recorded with ``person``'s keys: it
    looks people up by family name, date of birth or postcode (each narrower lookup needs
    one of them)."""
    return bool(
        (query.family and query.family == person.family)
        or (query.date_of_birth and query.date_of_birth == person.date_of_birth)
        or (query.postcode and query.postcode == person.postcode)
    )


def _candidate(raw: Raw, r: tuple[Any, ...]) -> Candidate:
    person_id = raw.to_uuid(r[0])
    assert person_id is not None  # a primary key
    return Candidate(
        id=person_id,
        family_name=r[1],
        family_key=r[2],
        given_key=r[3],
        aliases=raw.to_json(r[4]),
        date_of_birth=date.fromisoformat(r[5]) if isinstance(r[5], str) else r[5],
        postcode_key=r[6],
    )
