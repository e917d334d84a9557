"""Engine and the per-request unit of work.

Every request's database work runs as one synchronous function over one session, in one
transaction. *Where* it runs depends on the backend:

- SQLite is an in-process library with a single writer. Running the unit of work directly on
  the event loop serialises writers in Python, where they queue cheaply, instead of in
  SQLite's busy handler, whose sleep-and-retry turns 32 concurrent writers into a lock
  convoy with p99 latencies in the hundreds of milliseconds.
- PostgreSQL is a server: many transactions wait on the network at once while the loop keeps
  serving. A unit of work runs in a greenlet over psycopg's asyncio connection
  (SQLAlchemy's ``greenlet_spawn``, as ``AsyncConnection.run_sync`` does): its code stays
  synchronous, and each statement waits on the event loop with every other socket. Threads
  cost far more: each statement's wait and each hand-off between a worker and the loop is a
  wake-up of its own, and the threads fight the loop for the GIL (measured: 246 against
  100 µs of CPU for 8 concurrent ``BEGIN; SELECT; COMMIT`` units; see docs/performance.md,
  sixth round).
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.util import greenlet_spawn

from app import pending
from app.config import Settings
from app.group_commit import GroupCommit
from app.pending import PENDING, Pending
from app.rawsql import READ_UNIT, ReadUnitWrite, send_held
from app.services.principals import Principals, PrincipalUnconfirmed, unconfirmed

T = TypeVar("T")


class UnitTransaction(Protocol):
    """What a unit of work does with its transaction (SQLAlchemy's, or a group's SAVEPOINT)."""

    @property
    def is_active(self) -> bool: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def create_db_engine(settings: Settings) -> Engine:
    """Create the engine for the configured URL, with SQLite set up for WAL and foreign keys."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One process-wide connection: units of work run one at a time on the event loop.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=StaticPool
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    # The sealer, probes and scripts: units of work have their own pool (``Database``). Tests
    # bind units to this engine's connections, so it has the units' hooks too.
    engine = create_engine(url, pool_size=2, **_SERVER_POOL)
    _hold_statements_on(engine)
    return engine


# Recycled rather than pinged. No JIT: it pays off for long analytic queries, and here
# compiled a mispriced 50-row page for 1.2 s (a million cases; see docs/performance.md,
# "The scale check").
_SERVER_POOL: dict[str, Any] = {
    "max_overflow": 4,
    "pool_recycle": 1800,
    "connect_args": {"options": "-c jit=off"},
}


# SQLite's page cache for the engine's one connection, in KiB (filled only as pages are read).
SQLITE_CACHE_KIB = 64 * 1024


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    configure_sqlite(dbapi_conn)


def configure_sqlite(dbapi_conn: sqlite3.Connection) -> None:
    """The service's settings for a SQLite connection (also ``bench.subject_index``'s)."""
    # Let SQLAlchemy, not pysqlite, emit BEGIN, so that the write lock is taken up front.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # WAL + NORMAL: a crash never corrupts; a power cut can lose the last commits.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # Every unit of work runs in a SAVEPOINT (app.group_commit), and in WAL mode SQLite keeps
    # the original of each page a unit changes in a sub-journal, on a temporary file once it
    # passes 64 KiB: a referral changes more, and its sub-journal was a temporary file
    # created, written page by page and deleted on every request (about half of its system
    # time, docs/performance.md, fourteenth round). In memory instead.
    cur.execute("PRAGMA temp_store=MEMORY")
    # SQLite's own page cache, 2 MB by default, held a small part of the indexes a request
    # walks: the rest came back through a read() each time.
    cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock at BEGIN: a transaction that reads then writes can never
    # fail half-way with SQLITE_BUSY when another process (the CLI, a second worker) writes.
    # On the driver: through SQLAlchemy's execute it costs every request ~35 µs more.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("BEGIN IMMEDIATE")


class ReadSession(Session):
    """A read's unit of work: the ORM may load, never write (``app.rawsql.READ_UNIT``)."""


@event.listens_for(ReadSession, "before_flush")
def _refuse_flush(session: Session, _context: object, _instances: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadUnitWrite("A read's unit of work writes only its audit events")


class Database:
    """Owns the session factory and runs units of work where the backend wants them."""

    def __init__(
        self,
        bind: Engine | Connection,
        *,
        inline: bool,
        concurrency: int = 8,
        join_transaction_mode: Literal[
            "conditional_savepoint", "create_savepoint", "rollback_only", "control_fully"
        ] = "conditional_savepoint",
    ) -> None:
        self.bind = bind
        self.inline = inline
        # A database server's units of work in flight at once (``run_unit``), and the threads
        # for the sealer and the readiness probe (``run``).
        self._concurrency = concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._connection: Connection | None = None
        # A database server's units of work: a pool of asyncio connections (made on first
        # use, on the loop that serves; one per admitted unit) and the bound on units in
        # flight, as the thread pool's size was.
        self._async: AsyncEngine | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        # Units of work on the one persistent connection share their COMMITs.
        self._groups = (
            GroupCommit(self._persistent) if inline and isinstance(bind, Engine) else None
        )
        # Actors of recent tokens, for a database server's reads (app.services.principals):
        # there a principal's lookup is a message of its own; on SQLite it is not.
        self.principals = Principals() if not inline and bind.dialect.name == "postgresql" else None
        self._sessions = sessionmaker(
            bind=bind,
            class_=Session,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode=join_transaction_mode,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            create_db_engine(settings),
            inline=settings.is_sqlite,
            concurrency=settings.db_concurrency,
        )

    @property
    def dialect(self) -> str:
        return self.bind.dialect.name

    def sqlite_file(self) -> str | None:
        """The database file, when this is a file-backed SQLite database the service owns."""
        if not (self.inline and isinstance(self.bind, Engine)):
            return None
        name = self.bind.url.database
        return name if name and name != ":memory:" else None

    def checkpoint_elsewhere(self) -> None:
        """Stop the service's connection checkpointing the WAL in its commits
        (``app.checkpoint`` does it from a thread)."""
        # On the driver: through SQLAlchemy, the statement would begin a transaction that
        # every unit of work after it would then run inside.
        driver = self._persistent().connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA wal_autocheckpoint=0")

    def session(self) -> Session:
        """A session of its own (scripts, start-up); units of work get theirs from
        ``unit_session``."""
        if self.inline and isinstance(self.bind, Engine):
            return Session(bind=self._persistent(), expire_on_commit=False, autoflush=False)
        return self._sessions()

    def _persistent(self) -> Connection:
        # Inline units run one at a time on the event loop: keep one connection for them all
        # instead of checking it out and resetting it on every request.
        assert isinstance(self.bind, Engine)
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection = self.bind.connect()
        return self._connection

    # The unit of work's own transaction, in SQLAlchemy Core: the ORM's begin and commit
    # bookkeeping is paid only by the units that use the ORM (see ``unit_session``).
    def connect(self) -> Connection:
        """A connection for work run inline or in a thread (SQLite's units, the sealer, the
        readiness probe); give it back with ``release``. A database server's units of work
        get theirs from ``run_unit``."""
        if isinstance(self.bind, Connection):
            return self.bind
        if self.inline:
            return self._persistent()
        return self.bind.connect()

    def release(self, connection: Connection) -> None:
        if connection is not self.bind and connection is not self._connection:
            connection.close()

    def begin(self, connection: Connection) -> UnitTransaction:
        """The unit's transaction: its SAVEPOINT in the open group (``app.group_commit``), or
        a SAVEPOINT when the connection is already in a transaction (tests), or its own.

        A PostgreSQL write unit's own transaction on a connection in autocommit mode (a unit
        of work's, ``run_unit``): its ``BEGIN`` is held for the unit's first message and its
        ``COMMIT`` may go with its last (``app.pending``)."""
        if self._groups is not None and connection is self._connection and self._groups.open:
            return self._groups.savepoint(connection)
        if connection.in_transaction():
            return connection.begin_nested()
        held = pending.of(connection)
        if held is not None and connection.connection.dbapi_connection.autocommit:  # type: ignore[union-attr]
            held.begin = held.owns = True
        return connection.begin()

    def hold(self, connection: Connection) -> None:
        """Start holding a PostgreSQL write unit's statements that need no answer
        (``app.pending``); ``release_held`` ends it."""
        if not self.inline and self.dialect == "postgresql":
            connection.info[PENDING] = Pending()

    def commit(self, connection: Connection, transaction: UnitTransaction) -> None:
        """Commit the unit: what it held goes with its ``COMMIT`` when it owns its transaction
        (one message), otherwise just before it."""
        try:
            send_held(connection, commit=True)
        except Exception as exc:  # the driver's error, or SQLAlchemy's around it
            if unconfirmed(exc):  # the unit's remembered actor no longer holds
                raise PrincipalUnconfirmed from exc
            raise
        transaction.commit()

    def rollback(self, connection: Connection, transaction: UnitTransaction) -> None:
        held = pending.of(connection)
        if held is not None:
            held.discard()
        if transaction.is_active:
            transaction.rollback()

    def release_held(self, connection: Connection) -> None:
        connection.info.pop(PENDING, None)

    def unit_session(self, connection: Connection, *, read: bool = False) -> Session:
        """The Session a unit's service receives, joined to the unit's transaction on first use.

        Creating it costs a few microseconds; it begins nothing until the ORM is used. It
        neither commits nor ends the unit's transaction (its ``commit`` flushes), and
        ``app.rawsql`` runs on the connection without waking it. In a group, the ORM works in
        a SAVEPOINT of its own: a failed flush must undo this unit's work, not the group's.
        """
        grouped = self._groups is not None and self._groups.open
        session = (ReadSession if read else Session)(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint" if grouped else "conditional_savepoint",
        )
        if read:
            session.info[READ_UNIT] = []
        else:
            self.hold(connection)
        return session

    def _unit_engine(self) -> Engine | None:
        """The pool a database server's units run on, made for the running loop, its
        connections in autocommit mode for good: a read needs no transaction
        (``app.audit.write_deferred``), and a write sends its own ``BEGIN`` with its first
        statement (``begin``). The synchronous face of an asyncio engine: used in a
        greenlet, its statements wait on the loop."""
        if self.inline or not isinstance(self.bind, Engine):
            return None
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            # Another loop's connections (a test's earlier client) cannot serve this one: let
            # them go without awaiting them on a loop that may be gone.
            self._forget_async()
            # Autocommit at connect rather than ``execution_options(isolation_level=...)``,
            # which switches the mode at every checkout and back at every return (measured:
            # ~110 µs of CPU a unit on the benchmark machine).
            self._async = create_async_engine(
                self.bind.url,
                pool_size=self._concurrency,
                isolation_level="AUTOCOMMIT",
                **_SERVER_POOL,
            )
            _hold_statements_on(self._async.sync_engine)
            self._async_loop = loop
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._async.sync_engine

    async def run_unit(self, body: Callable[[Connection], T]) -> T:
        """Run a unit of work: ``body`` gets the connection to run on, already checked out.

        On a database server, in one greenlet on the event loop (see the module's
        docstring) that checks the connection out, runs ``body`` and gives it back:
        ``AsyncEngine.connect`` and ``run_sync`` would spawn three (measured: ~100 µs of
        CPU a unit). Otherwise where ``run`` runs functions."""
        engine = self._unit_engine()
        if engine is None:
            return await self.run(self._on_connection, body)
        assert self._slots is not None
        async with self._slots:
            return await greenlet_spawn(_on_engine, engine, body)

    def _on_connection(self, body: Callable[[Connection], T]) -> T:
        connection = self.connect()
        try:
            return body(connection)
        finally:
            self.release(connection)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)``: inline for SQLite, in the thread pool for a database server
        (the sealer and the readiness probe, on the engine's own pool; units of work use
        ``run_unit``).

        Inline, ``fn`` runs in the open group of units (``app.group_commit``), and its result
        is returned only once the group's COMMIT succeeded.
        """
        if self.inline:
            # Let the loop read other sockets first: without this yield, a request that
            # arrives while others are being served can wait behind many units in a row
            # (measured: p99 667 ms -> 276 ms at p50 58 ms under 32 connections).
            await asyncio.sleep(0)
            if self._groups is None:
                return fn(*args)
            group = self._groups.join()
            try:
                return fn(*args)
            finally:
                await self._groups.committed(group)
        # asyncio's own executor hand-off: anyio's costs ~10% more CPU a request (it looks up
        # the running library and task on every call). The context goes along, as with anyio.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="unit")
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(context.run, fn, *args))

    async def aclose(self) -> None:
        """Close the units' asyncio connections, then everything ``dispose`` closes."""
        if self._async_loop is asyncio.get_running_loop() and self._async is not None:
            await self._async.dispose()
            self._async = None
        self.dispose()

    def _forget_async(self) -> None:
        if self._async is not None:
            self._async.sync_engine.dispose(close=False)
        self._async = None

    def dispose(self) -> None:
        self._forget_async()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._connection is not None:
            self._connection.close()
        if isinstance(self.bind, Engine):
            self.bind.dispose()


def _on_engine(engine: Engine, body: Callable[[Connection], T]) -> T:
    with engine.connect() as connection:
        return body(connection)


def _hold_statements_on(engine: Engine) -> None:
    """The hooks a database server's engine needs for ``app.pending``: send what a write
    unit held before any statement made through SQLAlchemy, and forget what a connection had
    prepared before a rollback. Only such engines pay for SQLAlchemy's event dispatch."""
    event.listen(engine, "before_cursor_execute", _send_held_first)
    event.listen(engine, "rollback", _forget_prepared)
    event.listen(engine, "rollback_savepoint", _forget_prepared_in_savepoint)


def _forget_prepared(connection: Connection) -> None:
    pending.forget(connection.connection.dbapi_connection)


def _forget_prepared_in_savepoint(connection: Connection, _name: str, _context: Any) -> None:
    pending.forget(connection.connection.dbapi_connection, savepoint=True)


def _send_held_first(
    connection: Connection, _cursor: Any, _sql: str, _params: Any, _context: Any, _many: bool
) -> None:
    """Before any statement made through SQLAlchemy (the ORM's, a SAVEPOINT), send what a
    PostgreSQL write unit held (``app.pending``): it runs first, as it was made first."""
    send_held(connection)
