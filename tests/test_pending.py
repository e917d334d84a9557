"""A PostgreSQL write unit's held statements (app.pending): they reach the server in order,
in one message with the next statement that needs an answer, their errors surface as the
unit's, and psycopg's DEALLOCATE ALL after a rollback does not lose their prepared plans.
On SQLite nothing is held: each statement runs at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, exc, text
from sqlalchemy.orm import Session

from app import pending
from app.db import Database
from app.rawsql import Raw, send_held

_INSERT = (
    "INSERT INTO agency (id, name, kind, is_active, version, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_COUNT = "SELECT count(*) FROM agency WHERE name LIKE ?"


@pytest.fixture
def held(db: Database, connection: Connection, session: Session) -> Iterator[Raw]:
    """A write unit's view of the test's connection: what it holds, and its Raw."""
    db.hold(connection)
    try:
        yield Raw(session)
    finally:
        db.release_held(connection)


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[list[pending.Statement]]:
    """Every message ``app.pending`` sends, as the statements in it."""
    sent: list[list[pending.Statement]] = []
    real = pending.send

    def spy(dbapi: Any, statements: list[pending.Statement]) -> pending.Rows:
        sent.append(list(statements))
        return real(dbapi, statements)

    monkeypatch.setattr(pending, "send", spy)
    return sent


def _agency(raw: Raw, name: str) -> tuple[Any, ...]:
    now = raw.timestamp(datetime.now(UTC))
    return (raw.id(uuid.uuid4()), name, "other", True, 1, now)


def test_held_writes_go_first_in_the_next_reads_message(
    held: Raw, connection: Connection, messages: list[list[pending.Statement]]
) -> None:
    prefix = f"Held {uuid.uuid4().hex[:8]}"
    for n in range(3):
        held.later(_INSERT, _agency(held, f"{prefix} {n}"))
    assert held.one(_COUNT, (f"{prefix}%",)) == (3,)
    if connection.dialect.name == "sqlite":
        assert pending.of(connection) is None
        assert messages == []
    else:
        # The three inserts and the read: one message, in the order they were made.
        assert [len(m) for m in messages] == [4]
        assert [sql.split(" ", 2)[:2] for sql, _ in messages[0]] == [["INSERT", "INTO"]] * 3 + [
            ["SELECT", "count(*)"]
        ]


def test_a_message_of_many_values_keeps_each_exactly_as_given(
    held: Raw, connection: Connection, messages: list[list[pending.Statement]]
) -> None:
    """Each statement's values are bound on their own, then the message is sent as it is:
    what looks like a placeholder or a quote inside a value stays the value's, and a message
    of more than fifty values (a referral's) binds them in order."""
    prefix = f"Bound {uuid.uuid4().hex[:8]}"
    names = [
        f"{prefix} {n} " + tricky
        for n, tricky in enumerate(
            ["%s", "%%", "%(name)s", "it's", 'say "hi"', "back\\slash", "50%", "$1", "; COMMIT"]
        )
    ]
    for name in names:
        held.later(_INSERT, _agency(held, name))
    found = held.all("SELECT name FROM agency WHERE name LIKE ? ORDER BY name", (f"{prefix}%",))
    assert [name for (name,) in found] == sorted(names)
    if connection.dialect.name != "sqlite":
        assert [len(m) for m in messages] == [len(names) + 1]
        assert sum(len(params) for _, params in messages[0]) > 50


def test_a_held_write_that_fails_fails_the_next_message_as_the_database_error(
    held: Raw, connection: Connection
) -> None:
    values = _agency(held, f"Twice {uuid.uuid4().hex[:8]}")
    held.later(_INSERT, values)
    if connection.dialect.name == "sqlite":
        with pytest.raises(exc.IntegrityError):  # nothing is held: it fails at once
            held.later(_INSERT, values)
        return
    held.later(_INSERT, values)  # the same primary key: held, not yet sent
    with pytest.raises(exc.IntegrityError):
        send_held(connection)


def test_held_statements_survive_psycopg_deallocating_after_a_rollback(
    held: Raw, connection: Connection, session: Session
) -> None:
    prefix = f"Dealloc {uuid.uuid4().hex[:8]}"
    held.later(_INSERT, _agency(held, f"{prefix} a"))
    assert held.one(_COUNT, (f"{prefix}%",)) == (1,)
    # Enough runs of one statement for psycopg to prepare it, then a rolled-back SAVEPOINT:
    # psycopg answers ROLLBACK with DEALLOCATE ALL, which takes app.pending's statements too.
    for _ in range(6):
        session.execute(text("SELECT 1 WHERE :flag"), {"flag": True})
    nested = connection.begin_nested()
    nested.rollback()
    if connection.dialect.name != "sqlite":
        names = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'panels%%'"
        ).scalar()
        assert names == 0
    held.later(_INSERT, _agency(held, f"{prefix} b"))
    assert held.one(_COUNT, (f"{prefix}%",)) == (2,)
