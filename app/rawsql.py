"""Driver-level SQL for the few statements every request runs (principal, audit event).

Measured on the benchmark machine, one SQLAlchemy Core statement costs ~65 µs and an ORM
statement several hundred, against ~4 µs through the driver; every request pays for loading
its principal and writing its audit event, so those two run here, inside the same
transaction as the rest of the request (the session's own DBAPI connection). Values are
encoded exactly as SQLAlchemy stores them (UUIDs as 32 hex digits and timestamps as naive
UTC text on SQLite), so ORM code reads what this writes and the other way round.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any, NoReturn

import orjson
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from app import pending

_SQLALCHEMY_ERRORS: dict[str, type[sa_exc.DBAPIError]] = {
    "IntegrityError": sa_exc.IntegrityError,
    "DataError": sa_exc.DataError,
    "UniqueViolation": sa_exc.IntegrityError,
    "ForeignKeyViolation": sa_exc.IntegrityError,
    "NotNullViolation": sa_exc.IntegrityError,
    "CharacterNotInRepertoire": sa_exc.DataError,
    "StringDataRightTruncation": sa_exc.DataError,
}


# ``session.info`` key of a read's unit of work (``app.db.Database.unit_session``): its audit
# events wait for its commit (``app.audit``) and nothing else may write.
READ_UNIT = "panels.read_unit"
_RAW = "panels.raw"


class ReadUnitWrite(RuntimeError):
    """A read's unit of work tried to write something other than its audit events."""


_ROWS_PER_STATEMENT = 8
# Rows in one of ``Raw.insert_values``'s statements on SQLite, at most, and the parameters a
# statement may take on any SQLite (999 before 3.32).
_SQLITE_ROWS_PER_INSERT, _SQLITE_PARAMETERS = 256, 999
# Parameters passed as they are (exact classes: an enum member goes through ``Raw.param``).
_AS_IS = frozenset({str, int, bool, float, type(None)})


def _canonical_id(value: str) -> str:
    """SQLite's 32 hex digits of an id in the canonical text (anything else as it is)."""
    if len(value) != 32:
        return value
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def _json_timestamp(value: str) -> Any:
    """SQLite's naive UTC text ("2026-11-20 09:30:00.000000", as SQLAlchemy and
    ``Raw.timestamp`` write it) as the text pydantic writes ("2026-11-20T09:30:00Z", the
    fraction only when there is one), at a third of the cost of parsing it."""
    if len(value) == 26 and value[10] == " ":
        fraction = value[19:]
        return f"{value[:10]}T{value[11:19]}{'' if fraction == '.000000' else fraction}Z"
    return _parse_timestamp(value)


def _parse_timestamp(value: str) -> datetime:
    """SQLite's naive UTC text as an aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Remembered(dict[str, Any]):
    """SQLite's ids and timestamps (text) as the busiest reads write them, remembered: those
    reads write the same values request after request (a panel's cases, its actions, its
    agencies), and a lookup costs a tenth of writing one out again (measured: 10 against
    120 µs for the 300 ids of a page of actions). Bounded: when full, it starts again."""

    __slots__ = ("_write",)
    LIMIT = 32_768

    def __init__(self, write: Callable[[str], Any]) -> None:
        super().__init__()
        self._write = write

    def __missing__(self, value: str) -> Any:
        written = self._write(value)
        if len(self) >= self.LIMIT:
            self.clear()
        self[value] = written
        return written


def _as_is(value: Any) -> Any:
    return value


_CANONICAL = Remembered(_canonical_id)
_TIMESTAMPS = Remembered(_json_timestamp)


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    values = ", ".join([f"({marks})"] * rows)
    return f"INSERT INTO {table} ({names}) VALUES {values}"  # noqa: S608 (names from code)


# For one message's statements (``Raw.all_each``): a message of several statements is one
# transaction, which SET LOCAL lasts for; RESET ends it there in a unit's own transaction.
_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"
_DEFAULT_PLANS = "RESET plan_cache_mode"


def _reraise(exc: Exception, sql: str, params: Any) -> NoReturn:
    """Raise a driver error as SQLAlchemy's, which the unit of work and the error handlers
    already turn into 409 / 422 answers; any other error as it is."""
    wrapper = _SQLALCHEMY_ERRORS.get(type(exc).__name__)
    if wrapper is None:
        raise exc
    raise wrapper(sql, params, exc) from exc


def send_held(connection: Connection, *, commit: bool = False) -> None:
    """Send what a PostgreSQL write unit held (``app.pending``) on its own message; with
    ``commit``, and the unit owning its transaction, ``COMMIT`` goes in the same message (the
    unit's commit then finds the driver out of the transaction and sends nothing)."""
    held = pending.of(connection)
    if not held:
        return
    if commit and not held.statements:
        # Nothing waits to be sent but, perhaps, BEGIN: then the server never saw the
        # transaction; otherwise the unit's commit sends COMMIT.
        held.discard()
        return
    statements = held.take((pending.COMMIT, ()) if commit and held.owns else None)
    _send(connection.connection.dbapi_connection, statements)


def _send(dbapi: Any, statements: list[pending.Statement]) -> None:
    try:
        pending.send(dbapi, statements)
    except Exception as exc:
        _reraise(exc, statements[-1][0], statements[-1][1])


class Raw:
    """The session's DBAPI connection, with parameters adapted to its dialect."""

    __slots__ = ("_dbapi", "_pending", "read_only", "sqlite")
    _dbapi: Any
    _pending: pending.Pending | None
    read_only: bool
    sqlite: bool

    def __new__(cls, session: Session) -> Raw:
        # One per unit of work's Session, kept in its ``info``: a request's services each ask
        # for theirs (a referral a dozen times), and finding the driver's connection through
        # SQLAlchemy's objects cost more than the statements some of them run.
        found: Raw | None = session.info.get(_RAW)
        if found is not None:
            return found
        self = super().__new__(cls)
        # A unit of work's Session is bound to the unit's connection, already in its
        # transaction: use that directly rather than waking the Session (app.db.unit_session).
        bind = session.bind
        unit = isinstance(bind, Connection) and bind.in_transaction()
        connection = bind if unit else session.connection()
        assert isinstance(connection, Connection)
        self.sqlite = connection.dialect.name == "sqlite"
        # The DBAPI connection: the driver's own (sqlite3, psycopg), or SQLAlchemy's
        # synchronous face of psycopg's asyncio connection in a unit of work (app.db).
        self._dbapi = connection.connection.dbapi_connection
        self.read_only = READ_UNIT in session.info
        # A PostgreSQL write unit's statements held for its next message (app.pending).
        self._pending = None if self.sqlite or self.read_only else pending.of(connection)
        if unit:  # its connection is the unit's for the Session's life; another's may not be
            session.info[_RAW] = self
        return self

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def _execute(self, sql: str, params: Sequence[Any], *, compiled: bool = False) -> Any:
        try:
            if self.sqlite:
                return self._dbapi.execute(sql, params)
            if self._pending:
                # What the unit held goes first, in the same message (app.pending).
                held = self._pending.take((sql if compiled else self._sql(sql), params))
                return pending.send(self._dbapi, held)
            cursor = self._dbapi.cursor()
            cursor.execute(sql if compiled else self._sql(sql), params)
            return cursor
        except Exception as exc:
            _reraise(exc, sql, params)

    def one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._execute(sql, params).fetchall()
        return rows

    def each(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """The rows one at a time, as the caller takes them: those it does not take are
        never read (nor their JSON parsed)."""
        cursor = self._execute(sql, params)
        try:
            yield from cursor
        finally:
            cursor.close()

    def run(self, sql: str, params: Sequence[Any]) -> None:
        self._refuse_in_read()
        self._execute(sql, params)

    def later(self, sql: str, params: Sequence[Any]) -> None:
        """Run a statement whose outcome nothing in the unit waits on: in a PostgreSQL write
        unit it goes with the unit's next message (``app.pending``), its error, if any,
        failing that message; elsewhere at once. Not for a statement whose error the caller
        handles, nor one whose row count it checks."""
        self._refuse_in_read()
        if self._pending is None:
            self._execute(sql, params)
        else:
            self._pending.statements.append((self._sql(sql), params))

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows (psycopg pipelines them)."""
        self._refuse_in_read()
        self.flush()
        try:
            self._dbapi.cursor().executemany(self._sql(sql), rows)
        except Exception as exc:
            _reraise(exc, sql, rows)

    def flush(self) -> None:
        """Send what the unit held, now (before a statement that does not go through here)."""
        if self._pending:
            _send(self._dbapi, self._pending.take())

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], *, later: bool = False) -> None:
        """Insert ``rows``, each with the same columns, into ``table`` (names from code, never
        from a request). Values as ``param`` encodes them; a dict or list is a JSON column's.
        ``later``: as ``Raw.later`` (a few rows only)."""
        if not rows:
            return
        columns = tuple(rows[0])
        values = [tuple(self._column_value(row[c]) for c in columns) for row in rows]
        if len(values) <= _ROWS_PER_STATEMENT:
            # One statement, one round trip: psycopg's executemany (a pipeline) costs more
            # than the few rows a request inserts.
            sql = _insert_sql(table, columns, len(values))
            flat = [v for row in values for v in row]
            if later:
                self.later(sql, flat)
            else:
                self.run(sql, flat)
        else:
            self.insert_values(table, columns, values)

    def insert_values(
        self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows`` of values as the driver takes them into ``table``'s ``columns``
        (names from code). On SQLite in statements of many rows each, sized in powers of two
        (so a handful of statements, each prepared once and kept by the driver): a row costs
        a quarter less than through ``executemany``'s statement of one (1.02 -> 0.78 µs
        measured, the sealer's subject index). On PostgreSQL ``run_many`` (a pipeline)."""
        if not self.sqlite:
            self.run_many(_insert_sql(table, columns, 1), rows)
            return
        self._refuse_in_read()
        size = _SQLITE_ROWS_PER_INSERT
        while size > 1 and size * len(columns) > _SQLITE_PARAMETERS:
            size //= 2
        start = 0
        while start < len(rows):
            while size > len(rows) - start:
                size //= 2
            chunk = rows[start : start + size]
            self._execute(_insert_sql(table, columns, size), list(chain.from_iterable(chunk)))
            start += size

    def _column_value(self, value: Any) -> Any:
        if value.__class__ in _AS_IS:
            return value
        return self.json(value) if isinstance(value, dict | list) else self.param(value)

    def _refuse_in_read(self) -> None:
        if self.read_only:
            raise ReadUnitWrite("A read's unit of work writes only its audit events")

    def in_autocommit(self) -> bool:
        """Whether each statement commits on its own (a read's unit on PostgreSQL)."""
        return not self.sqlite and bool(self._dbapi.autocommit)

    def all_compiled(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of SQL already compiled for this dialect (``app.prepared``)."""
        rows: list[tuple[Any, ...]] = self._execute(sql, params, compiled=True).fetchall()
        return rows

    def all_each(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, generic_plans: bool = False
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of each of these statements compiled for this dialect, in order: on
        PostgreSQL sent in one message (after what a write unit held, ``app.pending``),
        where each would have been a round trip of its own; on SQLite one after another.

        ``generic_plans``: PostgreSQL runs them on their generic plans (for statements whose
        custom plan, made anew on every run, costs more than it saves)."""
        if self.sqlite or not statements:
            return [self.all_compiled(sql, params) for sql, params in statements]
        held = self._pending.take() if self._pending else []
        setting = [(_GENERIC_PLANS, ())] if generic_plans else []
        reset = [(_DEFAULT_PLANS, ())] if generic_plans else []
        try:
            results = pending.send_each(self._dbapi, [*held, *setting, *statements, *reset])
        except Exception as exc:
            _reraise(exc, "; ".join(sql for sql, _ in statements), None)
        return results[len(held) + len(setting) :][: len(statements)]

    # parameters ---------------------------------------------------------------------------
    def id(self, value: uuid.UUID | None) -> Any:
        if value is None:
            return None
        return value.hex if self.sqlite else value

    def timestamp(self, value: datetime) -> Any:
        value = value.astimezone(UTC)
        if not self.sqlite:
            return value
        # SQLAlchemy's SQLite format ("%Y-%m-%d %H:%M:%S.%f"), at half strftime's cost.
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def param(self, value: Any) -> Any:
        """Any parameter: ids, timestamps and dates as SQLAlchemy stores them, others as they
        are."""
        if value.__class__ in _AS_IS:  # most values: one lookup, not three isinstance calls
            return value
        if isinstance(value, uuid.UUID):
            return self.id(value)
        if isinstance(value, datetime):
            return self.timestamp(value)
        if isinstance(value, date):
            return value.isoformat() if self.sqlite else value
        return value

    def json(self, value: Any) -> Any:
        """A JSON column's value (orjson: a list read's event carries a hundred ids)."""
        if value is None:
            return None
        if self.sqlite:
            return orjson.dumps(value).decode()
        from psycopg.types.json import Json

        return Json(value, dumps=orjson.dumps)

    # results ------------------------------------------------------------------------------
    def to_uuid(self, value: Any) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(hex=value)

    def to_id_text(self, value: Any) -> str | None:
        """An id as the driver returned it (a UUID, or 32 hex digits on SQLite), as text in
        the canonical form: cheaper than going through ``uuid.UUID`` for a page of them."""
        if value.__class__ is str:
            return _CANONICAL[value] if len(value) == 32 else value
        return None if value is None else str(value)

    def to_json_id(self, value: Any) -> Any:
        """An id as the driver returned it, for ``app.json_body``: the UUID itself (orjson
        writes it), or the canonical text of SQLite's 32 hex digits. A list page turns
        hundreds of ids a request (the agenda ~300)."""
        return _CANONICAL[value] if value.__class__ is str else value

    def json_id_writer(self) -> Callable[[Any], Any]:
        """``to_json_id`` for ids never None, as one call with nothing to check: the
        canonical text of SQLite's 32 hex digits (remembered), or the driver's UUID as is."""
        return _CANONICAL.__getitem__ if self.sqlite else _as_is

    def to_json_timestamp(self, value: Any) -> Any:
        """A timestamp as the driver returned it, for ``app.json_body``: SQLite's text as
        pydantic writes it (``_json_timestamp``), otherwise an aware datetime."""
        if value.__class__ is str:
            return _TIMESTAMPS[value]
        return self.to_timestamp(value)

    def to_timestamp(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return _parse_timestamp(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def utc_input(self, value: Any) -> Any:
        """A timestamp column's value for a pydantic model to parse: SQLite's naive UTC text
        with its offset added (parsed in pydantic's core, cheaper than ``to_timestamp`` for a
        page of rows), or the aware datetime the server's driver returned."""
        return value + "+00:00" if isinstance(value, str) else value

    def to_json(self, value: Any) -> Any:
        """A JSON column's value as SQLite returns it (text), or as psycopg did (parsed).
        orjson, as the sealer reads a hundred ids from a list read's event; the standard
        library for what orjson refuses and SQLAlchemy may have written (NaN)."""
        if not isinstance(value, str):
            return value
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return json.loads(value)
