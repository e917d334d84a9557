"""A PostgreSQL write unit's statements that need no answer, sent with the next one that does.

On PostgreSQL a statement costs its round trip more than its work: ~150 µs of the service's
CPU (psycopg, the event loop, the greenlet) and the server's for each message, against
0.01 to 0.3 ms to run it (docs/performance.md, ninth and tenth rounds). A write unit's
``BEGIN``, its audit events and the writes whose outcome nothing waits on are therefore held
here (``Raw.later``, ``app.audit``) and go to the server in one message with whatever comes
next: ``BEGIN`` with the unit's first read (the principal), the writes with ``COMMIT``, or,
before any other read, on their own, in the order they were made.

A message of several statements uses the simple query protocol, so its values are bound on
the client, quoted by psycopg (``ClientCursor``), never pasted in by this code. So that the
server still plans each statement once per connection, as psycopg's own prepared statements
do, each goes as ``EXECUTE`` of a statement prepared by name (``PREPARE``, sent on its own
the first time a connection needs it; prepared statements outlive transactions). A statement
that fails fails the whole message: the server stops at the error and the unit rolls back,
as it would have had each gone alone.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.util import await_

# ``Connection.info`` key of a PostgreSQL write unit's held statements (``app.db``).
PENDING = "panels.pending"

BEGIN = "BEGIN"
COMMIT = "COMMIT"

Statement = tuple[str, Sequence[Any]]


class Pending:
    """What a write unit has not sent yet: ``BEGIN`` (when it owns its transaction) and the
    statements made with ``Raw.later``, in order. ``owns``: the unit began its transaction
    itself (``app.db.Database.begin``), so its ``COMMIT`` may go with its last statements."""

    __slots__ = ("begin", "owns", "statements")

    def __init__(self) -> None:
        self.begin = False
        self.owns = False
        self.statements: list[Statement] = []

    def __bool__(self) -> bool:
        return self.begin or bool(self.statements)

    def take(self, tail: Statement | None = None) -> list[Statement]:
        """Everything held, in order, then ``tail``; nothing is held afterwards."""
        taken: list[Statement] = [(BEGIN, ())] if self.begin else []
        taken += self.statements
        if tail is not None:
            taken.append(tail)
        self.begin = False
        self.statements = []
        return taken

    def discard(self) -> None:
        """Forget what was held (the unit rolled back: the server never saw any of it)."""
        self.begin = self.owns = False
        self.statements = []


def of(connection: Connection) -> Pending | None:
    """The unit's held statements, if it is a PostgreSQL write unit."""
    pending: Pending | None = connection.info.get(PENDING)
    return pending


class Rows:
    """The last result of a message, read already, with what ``app.rawsql`` uses of a cursor."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = iter(rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return next(self._rows, None)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        self._rows = iter(())


class _Named:
    """A statement's server-side name, its ``PREPARE`` and its ``EXECUTE`` (placeholders
    for psycopg to bind on the client)."""

    __slots__ = ("execute", "name", "prepare")

    prepare: str | None

    def __init__(self, sql: str) -> None:
        self.name = "panels_" + hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
        first = _FIRST_WORD.match(sql)
        if first is None or first.group(1).upper() not in _PREPARABLE:
            # PREPARE takes only these; anything else (SHOW, SET...) goes as it is.
            self.prepare, self.execute = None, sql
            return
        numbers = iter(range(1, 10_000))
        # Sent without values, so psycopg leaves "%%" as it is: unescape it here.
        body = _PLACEHOLDER.sub(lambda _match: f"${next(numbers)}", sql).replace("%%", "%")
        count = next(numbers) - 1
        self.prepare = f"PREPARE {self.name} AS {body}"
        marks = ", ".join(["%s"] * count)
        self.execute = f"EXECUTE {self.name}({marks})" if count else f"EXECUTE {self.name}"


_PLACEHOLDER = re.compile(r"(?<!%)%s")
_FIRST_WORD = re.compile(r"\s*(\w+)")
_PREPARABLE = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES", "MERGE"}
_NAMED: dict[str, _Named] = {}
# The names each driver connection has prepared (gone with the connection).
_PREPARED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def forget(dbapi: Any, *, savepoint: bool = False) -> None:
    """Before a rollback (``app.db``'s hooks), forget what the connection had prepared:
    psycopg follows a ROLLBACK with ``DEALLOCATE ALL`` when it has statements of its own
    prepared (their plans may refer to what the transaction undid), which takes these too.
    Nothing to forget when the driver is out of a transaction: it then sends nothing."""
    driver = getattr(dbapi, "_connection", dbapi)
    if not isinstance(driver, psycopg.Connection | psycopg.AsyncConnection):
        return
    if savepoint or driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        _PREPARED.pop(driver, None)


def _named(sql: str) -> _Named:
    found = _NAMED.get(sql)
    if found is None:
        found = _NAMED[sql] = _Named(sql)
    return found


def _message(
    cursor: psycopg.ClientCursor[Any] | psycopg.AsyncClientCursor[Any],
    prepared: set[str],
    statements: list[Statement],
) -> tuple[dict[str, str], str]:
    """The ``PREPARE``s the connection still needs, by name, and the message of
    ``EXECUTE``s, each with its values bound (quoted by psycopg).

    Each statement is bound on its own, its text being one psycopg converts once and
    remembers; the message is then sent as it is. Bound as a whole, the message (a different
    text for every combination of statements, often of more than fifty values) was parsed
    for its placeholders on every send: a tenth of a referral's CPU on PostgreSQL."""
    missing: dict[str, str] = {}
    parts: list[str] = []
    for sql, params in statements:
        if sql in (BEGIN, COMMIT):
            parts.append(sql)
            continue
        named = _named(sql)
        if named.prepare is not None and named.name not in prepared:
            missing[named.name] = named.prepare
        parts.append(cursor.mogrify(named.execute, params))
    return missing, "; ".join(parts)


_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


def _has_rows(cursor: psycopg.ClientCursor[Any] | psycopg.AsyncClientCursor[Any]) -> bool:
    """Whether the cursor's current result is rows (``description`` is not None, without
    building its columns)."""
    result = cursor.pgresult
    return result is not None and (bool(result.nfields) or result.status == _TUPLES_OK)


# What a connection has prepared, asked of the server when not known (a new connection, or
# after a rollback, when psycopg may have sent DEALLOCATE ALL).
_ON_SERVER = "SELECT name FROM pg_prepared_statements WHERE name LIKE 'panels\\_%'"


def send(dbapi: Any, statements: list[Statement]) -> Rows:
    """Send ``statements`` as one message on the unit's DBAPI connection (SQLAlchemy's face
    of psycopg's asyncio connection in a unit, or psycopg's own in tests and scripts) and
    return the rows of the last."""
    return Rows(send_each(dbapi, statements)[-1])


def send_each(dbapi: Any, statements: list[Statement]) -> list[list[Any]]:
    """``send``, returning the rows of every statement, in order (none for a statement that
    returns no rows)."""
    driver = getattr(dbapi, "_connection", dbapi)
    try:
        if isinstance(driver, psycopg.AsyncConnection):
            return await_(_send_async(driver, statements))
        return _send_sync(driver, statements)
    except psycopg.errors.InvalidSqlStatementName:
        # Prepared statements gone without a rollback the hooks saw: ask the server again
        # next time rather than fail every unit on this connection.
        _PREPARED.pop(driver, None)
        raise


def _send_sync(driver: psycopg.Connection[Any], statements: list[Statement]) -> list[list[Any]]:
    with psycopg.ClientCursor(driver) as cursor:
        prepared = _PREPARED.get(driver)
        if prepared is None:
            cursor.execute(_ON_SERVER)
            prepared = _PREPARED[driver] = {name for (name,) in cursor.fetchall()}
        missing, message = _message(cursor, prepared, statements)
        if missing:
            cursor.execute("; ".join(missing.values()))
            prepared.update(missing)
        cursor.execute(message)
        results = [cursor.fetchall() if _has_rows(cursor) else []]
        while cursor.nextset():
            results.append(cursor.fetchall() if _has_rows(cursor) else [])
        return results


async def _send_async(
    driver: psycopg.AsyncConnection[Any], statements: list[Statement]
) -> list[list[Any]]:
    async with psycopg.AsyncClientCursor(driver) as cursor:
        prepared = _PREPARED.get(driver)
        if prepared is None:
            await cursor.execute(_ON_SERVER)
            prepared = _PREPARED[driver] = {name for (name,) in await cursor.fetchall()}
        missing, message = _message(cursor, prepared, statements)
        if missing:
            await cursor.execute("; ".join(missing.values()))
            prepared.update(missing)
        await cursor.execute(message)
        results = [await cursor.fetchall() if _has_rows(cursor) else []]
        while cursor.nextset():
            results.append(await cursor.fetchall() if _has_rows(cursor) else [])
        return results
