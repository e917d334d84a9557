"""SQLAlchemy statements compiled once per kind of actor, then run through the driver.

A hot read's statement depends on who asks in two ways: through the actor's kind, roles,
scopes and permissions, on which the visibility filters in ``app.policies`` choose their
branches, and through the actor's and agency's ids, which they bind as values. ``Prepared``
builds the statement for a stand-in actor that has everything of the real one but
placeholder ids, compiles it for the dialect once per kind of actor, and runs the compiled
SQL on the unit's connection (``app.rawsql``) with the real ids in place of the placeholders.
The SQL is exactly what SQLAlchemy builds for that actor; what is saved is building,
cache-key computation and ORM loading on every request.

A build function receives only the stand-in actor and a variant key (which optional filters
apply), never the request's values, so it cannot bake one into the cached statement: those
are named ``bindparam``s, given to ``rows``/``row`` by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Dialect

from app.actor import Actor
from app.rawsql import Raw

# Placeholder ids no real actor has (version-0 UUIDs are never generated).
_ACTOR_ID = uuid.UUID("00000000-0000-0000-0000-00000000a001")
_AGENCY_ID = uuid.UUID("00000000-0000-0000-0000-00000000a002")
_DIALECTS: dict[bool, Dialect] = {
    True: sqlite.dialect(),
    False: psycopg.dialect(paramstyle="format"),  # type: ignore[no-untyped-call]
}


Query = Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # Per positional parameter: ("param", name) for a request value, ("actor",) / ("agency",)
    # for the actor's ids, or ("const", value) for a value the build fixed.
    slots: tuple[tuple[Any, ...], ...]


def _shape(actor: Actor) -> tuple[Hashable, ...]:
    return (
        actor.kind,
        actor.roles,
        actor.scopes,
        actor.permissions,
        actor.id is None,
        actor.agency_id is None,
    )


class Prepared:
    """One query, built by ``build(actor, variant)`` and compiled per actor shape."""

    def __init__(self, build: Callable[[Actor, Hashable], Query]) -> None:
        self._build = build
        self._cache: dict[tuple[Hashable, ...], _Compiled] = {}

    def _compiled(self, sqlite_: bool, actor: Actor, variant: Hashable) -> _Compiled:
        key = (sqlite_, variant, *_shape(actor))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _compile(self._build, sqlite_, actor, variant)
        return found

    def rows(
        self, raw: Raw, actor: Actor, params: dict[str, Any], variant: Hashable = None
    ) -> list[tuple[Any, ...]]:
        return raw.all_compiled(*self.statement(raw, actor, params, variant))

    def statement(
        self, raw: Raw, actor: Actor, params: dict[str, Any], variant: Hashable = None
    ) -> tuple[str, list[Any]]:
        """The compiled SQL and its values, to run with others (``Raw.all_each``)."""
        compiled = self._compiled(raw.sqlite, actor, variant)
        values = []
        for slot in compiled.slots:
            kind = slot[0]
            if kind == "param":
                value = params[slot[1]]
            elif kind == "actor":
                value = actor.id
            elif kind == "agency":
                value = actor.agency_id
            else:
                value = slot[1]
            values.append(raw.param(value))
        return compiled.sql, values

    def row(
        self, raw: Raw, actor: Actor, params: dict[str, Any], variant: Hashable = None
    ) -> tuple[Any, ...] | None:
        found = self.rows(raw, actor, params, variant)
        return found[0] if found else None


def _compile(
    build: Callable[[Actor, Hashable], Query], sqlite_: bool, actor: Actor, variant: Hashable
) -> _Compiled:
    stand_in = replace(
        actor,
        id=None if actor.id is None else _ACTOR_ID,
        agency_id=None if actor.agency_id is None else _AGENCY_ID,
    )
    compiled = build(stand_in, variant).compile(
        dialect=_DIALECTS[sqlite_], compile_kwargs={"render_postcompile": True}
    )
    assert compiled.positiontup is not None, "a positional paramstyle"
    slots: list[tuple[Any, ...]] = []
    for name in compiled.positiontup:
        # An expanded IN list's items ("panel_type_1_1") have no bind of their own.
        bind = compiled.binds.get(name)
        value = compiled.params[name]
        if value == _ACTOR_ID:
            slots.append(("actor",))
        elif value == _AGENCY_ID:
            slots.append(("agency",))
        elif bind is not None and not bind.unique and bind.value is None:
            # Named by the build (bindparam("case_id")) without a value: a request value.
            slots.append(("param", name))
        else:
            slots.append(("const", value))
    return _Compiled(compiled.string, tuple(slots))
