"""Prepared statements (app.prepared): compiled once per kind of actor, each actor's own ids
bound at run time, and request values never baked into the cached statement."""

from __future__ import annotations

from collections.abc import Hashable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app.actor import Actor, ActorKind
from app.models.agency import Agency, AgencyKind
from app.pagination import fetch_size
from app.prepared import Prepared, Query
from app.rawsql import Raw
from app.services import case_reads
from tests.builders import make_agency


def _own_agency_named(actor: Actor, _variant: Hashable) -> Query:
    return select(col(Agency.name)).where(
        col(Agency.id) == actor.agency_id,
        col(Agency.kind).in_([AgencyKind.POLICE.value, AgencyKind.HEALTH.value]),
        col(Agency.name) == bindparam("name", required=False),
    )


def test_one_compiled_statement_serves_each_actor_with_their_own_ids(session: Session) -> None:
    police = make_agency(session, "Prepared Police", AgencyKind.POLICE)
    health = make_agency(session, "Prepared Health", AgencyKind.HEALTH)
    query = Prepared(_own_agency_named)
    raw = Raw(session)

    def names(agency: Agency, name: str) -> list[str]:
        actor = Actor(kind=ActorKind.USER, id=agency.id, agency_id=agency.id)
        return [row[0] for row in query.rows(raw, actor, {"name": name})]

    assert names(police, "Prepared Police") == ["Prepared Police"]
    assert names(health, "Prepared Health") == ["Prepared Health"]
    assert names(health, "Prepared Police") == []
    assert names(police, "Prepared Health") == []
    assert len(query._cache) == 1


def test_actors_of_another_kind_get_a_statement_of_their_own(session: Session) -> None:
    agency = make_agency(session, "Prepared Shapes", AgencyKind.POLICE)
    query = Prepared(_own_agency_named)
    raw = Raw(session)
    for kind in (ActorKind.USER, ActorKind.API_CLIENT):
        actor = Actor(kind=kind, id=agency.id, agency_id=agency.id)
        assert query.row(raw, actor, {"name": "Prepared Shapes"}) == ("Prepared Shapes",)
    assert len(query._cache) == 2


def test_list_statements_fetch_a_few_page_sizes_with_a_literal_limit(session: Session) -> None:
    """A bound LIMIT kept PostgreSQL planning the case list again on every request (no
    generic plan ever looked as cheap): the page size is written into the statement,
    rounded up to one of a few so that the statements stay few."""
    assert [fetch_size(n) for n in (1, 10, 11, 25, 50, 51, 100, 200)] == [
        11,
        11,
        26,
        26,
        51,
        101,
        101,
        201,
    ]
    agency = make_agency(session, "Prepared Lists", AgencyKind.POLICE)
    actor = Actor(kind=ActorKind.USER, id=agency.id, agency_id=agency.id)
    raw = Raw(session)
    for fetch in (11, 51):
        compiled = case_reads._LIST._compiled(raw.sqlite, actor, (True, False, False, False, fetch))
        assert f" LIMIT {fetch}" in " ".join(compiled.sql.split())
        assert ("param", "limit") not in compiled.slots
