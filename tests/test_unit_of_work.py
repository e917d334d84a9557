"""The unit of work (app.deps.UnitOfWork): one transaction per service call, whether the
service uses the ORM, the driver (app.rawsql) or both; refusals and conflicts roll the work
back and are audited; a refusal that keeps its changes commits them.

Each test runs twice: inside the test's rolled-back transaction (the unit takes a savepoint,
as in every other test) and on a database of its own with real commits (the unit owns the
transaction, as in production)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import func, make_url, select, text
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit, pending
from app.actor import Actor, RequestMeta
from app.audit import AuditAction
from app.config import Settings
from app.db import SQLITE_CACHE_KIB, Database, create_db_engine
from app.deps import UnitOfWork
from app.errors import Conflict, DomainError, Invalid, OAuthError
from app.main import create_app
from app.models.agency import Agency, AgencyKind
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.person import PersonIdentifier
from app.rawsql import Raw, ReadUnitWrite
from tests.conftest import _fresh_server_database, migrate

ROUTE = "POST /test/unit-of-work"


@pytest.fixture(scope="module")
def committing(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, str]]:
    """An app on a migrated database of its own, whose units of work really commit."""
    url = _own_database(settings, tmp_path_factory, "uow")
    database = Database(create_db_engine(Settings(database_url=url)), inline=settings.is_sqlite)
    yield create_app(settings, database), url
    database.dispose()


def _own_database(settings: Settings, tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """The URL of a new, migrated database for this module alone."""
    if settings.is_sqlite:
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}"
    else:
        parsed = make_url(settings.database_url)
        url = parsed.set(database=f"{parsed.database}_{name}").render_as_string(hide_password=False)
        _fresh_server_database(url)
    engine = create_db_engine(Settings(database_url=url))
    with engine.begin() as conn:
        migrate(conn)
    engine.dispose()
    return url


@pytest.fixture(params=["savepoint", "commit"])
def where(
    request: pytest.FixtureRequest, app: FastAPI, session: Session
) -> Iterator[tuple[FastAPI, Session]]:
    """The app to run units on, and a session that sees what they leave behind."""
    if request.param == "savepoint":
        yield app, session
        return
    committing, url = request.getfixturevalue("committing")
    # Its own engine: on SQLite the app's units share one persistent connection.
    engine = create_db_engine(Settings(database_url=url))
    with Session(bind=engine, expire_on_commit=False) as own:
        yield committing, own
    engine.dispose()


def _run(
    app: FastAPI,
    fn: Callable[..., Any],
    request_id: str = "unit-of-work-test",
    method: str = "POST",
) -> Any:
    return asyncio.run(_unit(app, request_id, method)(fn))


def _unit(app: FastAPI, request_id: str, method: str = "POST") -> UnitOfWork:
    request = Request(
        {
            "type": "http",
            "method": method,
            "path": "/test/unit-of-work",
            "raw_path": b"/test/unit-of-work",
            "query_string": b"",
            "headers": [],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
            "scheme": "http",
            "root_path": "",
            "path_params": {},
            "app": app,
        }
    )
    return UnitOfWork(request, RequestMeta(request_id=request_id))


def _agencies_named(session: Session, name: str) -> int:
    session.rollback()  # a fresh snapshot
    return session.scalar(select(func.count()).where(col(Agency.name) == name)) or 0


def _refusals(session: Session, request_id: str) -> list[tuple[str, Any]]:
    """The refusals audited for one request: (outcome, detail) each."""
    session.rollback()  # a fresh snapshot
    rows = session.execute(
        select(col(AuditEvent.outcome), col(AuditEvent.detail)).where(
            col(AuditEvent.action) == AuditAction.ACCESS_REFUSED.value,
            col(AuditEvent.request_id) == request_id,
        )
    )
    return [(outcome, detail) for outcome, detail in rows]


def _add_agency(session: Session, name: str) -> Agency:
    agency = Agency(name=name, kind=AgencyKind.POLICE.value)
    session.add(agency)
    return agency


def _insert_agency_on_the_driver(session: Session, agency_id: uuid.UUID, name: str) -> None:
    raw = Raw(session)
    raw.run(
        "INSERT INTO agency (id, name, kind, is_active, version, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (raw.id(agency_id), name, "police", True, 1, raw.timestamp(utcnow())),
    )


def test_orm_changes_are_committed_without_an_explicit_flush(
    where: tuple[FastAPI, Session],
) -> None:
    app, session = where
    name = f"UoW {uuid.uuid4().hex[:8]}"
    _run(app, lambda s, _actor: _add_agency(s, name))
    assert _agencies_named(session, name) == 1


def test_a_conflict_in_a_flush_rolls_back_driver_and_orm_writes_and_is_audited(
    where: tuple[FastAPI, Session],
) -> None:
    app, session = where
    name = f"UoW {uuid.uuid4().hex[:8]}"
    events_before = session.scalar(select(func.count()).select_from(AuditEvent))
    session.rollback()  # release SQLite's write lock before the unit runs

    def service(s: Session, actor: Actor) -> None:
        audit.record(s, actor, AuditAction.AGENCY_READ, resource_type="agency")  # driver
        _add_agency(s, name)
        s.flush()
        # Nobody's identifier: both foreign keys fail, an IntegrityError in the flush.
        s.add(PersonIdentifier(person_id=uuid.uuid4(), agency_id=uuid.uuid4(), identifier="x"))
        s.flush()

    with pytest.raises(Conflict):
        _run(app, service, name)
    assert _agencies_named(session, name) == 0
    assert _refusals(session, name) == [("conflict", {"route": ROUTE, "status": 409})]
    # Only the refusal was kept: the read event written before the conflict was rolled back.
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events_before + 1


def test_a_conflict_from_the_driver_rolls_back_orm_writes_and_is_audited(
    where: tuple[FastAPI, Session],
) -> None:
    app, session = where
    name = f"UoW {uuid.uuid4().hex[:8]}"
    existing = _add_agency(session, f"UoW existing {uuid.uuid4().hex[:8]}")
    session.commit()

    def service(s: Session, _actor: Actor) -> None:
        _add_agency(s, name)
        s.flush()
        _insert_agency_on_the_driver(s, existing.id, "dup")

    with pytest.raises(Conflict):
        _run(app, service, name)
    assert _agencies_named(session, name) == 0
    assert _refusals(session, name) == [("conflict", {"route": ROUTE, "status": 409})]


def test_a_refusal_rolls_back_the_work_and_is_audited(where: tuple[FastAPI, Session]) -> None:
    app, session = where
    name = f"UoW {uuid.uuid4().hex[:8]}"

    def service(s: Session, _actor: Actor) -> None:
        _add_agency(s, name)
        s.flush()
        raise DomainError("no")

    with pytest.raises(DomainError):
        _run(app, service, name)
    assert _agencies_named(session, name) == 0
    assert _refusals(session, name) == [("invalid", {"route": ROUTE, "status": 400})]


def test_a_refusal_that_keeps_its_changes_commits_them(where: tuple[FastAPI, Session]) -> None:
    app, session = where
    name = f"UoW {uuid.uuid4().hex[:8]}"

    def service(s: Session, _actor: Actor) -> None:
        _add_agency(s, name)
        raise OAuthError("invalid_grant", "kept")

    with pytest.raises(OAuthError):
        _run(app, service, name)
    assert _agencies_named(session, name) == 1
    assert _refusals(session, name) == []


def test_a_conflict_in_the_final_flush_rolls_back_and_is_audited(
    where: tuple[FastAPI, Session],
) -> None:
    app, session = where
    name = f"UoW {uuid.uuid4().hex[:8]}"

    def service(s: Session, _actor: Actor) -> None:
        _add_agency(s, name)
        s.add(PersonIdentifier(person_id=uuid.uuid4(), agency_id=uuid.uuid4(), identifier="x"))

    with pytest.raises(Conflict):
        _run(app, service, name)
    assert _agencies_named(session, name) == 0
    assert _refusals(session, name) == [("conflict", {"route": ROUTE, "status": 409})]


def test_the_service_connections_are_set_up_for_short_transactions(engine: Any) -> None:
    """SQLite: write-ahead log, foreign keys, synchronous=NORMAL, the units' sub-journals in
    memory (not a temporary file written and deleted per request) and a page cache of
    SQLITE_CACHE_KIB. PostgreSQL: no JIT, which compiled a mispriced 50-row case list for
    1.2 s at a million cases."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
        else:
            driver = connection.connection.driver_connection
            assert driver.execute("PRAGMA journal_mode").fetchone()[0] in {"wal", "memory"}
            assert driver.execute("PRAGMA foreign_keys").fetchone() == (1,)
            assert driver.execute("PRAGMA synchronous").fetchone() == (1,)
            assert driver.execute("PRAGMA temp_store").fetchone() == (2,)  # MEMORY
            assert driver.execute("PRAGMA cache_size").fetchone() == (-SQLITE_CACHE_KIB,)


# A read (GET) writes only its audit events: they are written as it commits, and on
# PostgreSQL its unit runs in autocommit mode (app.audit.write_deferred).
READ = "GET /test/unit-of-work"


def _events(session: Session, request_id: str) -> list[tuple[str, str]]:
    """(action, outcome) of every event recorded for one request."""
    session.rollback()  # a fresh snapshot
    rows = session.execute(
        select(col(AuditEvent.action), col(AuditEvent.outcome))
        .where(col(AuditEvent.request_id) == request_id)
        .order_by(col(AuditEvent.id))
    )
    return [(action, outcome) for action, outcome in rows]


def _read_event(s: Session, actor: Actor, note: str = "read") -> None:
    audit.record(s, actor, AuditAction.AGENCY_READ, resource_type="agency", detail={"n": note})


def test_a_read_keeps_its_events_once_it_succeeds(where: tuple[FastAPI, Session]) -> None:
    app, session = where
    request_id = f"read {uuid.uuid4().hex[:8]}"

    def service(s: Session, actor: Actor) -> str:
        _read_event(s, actor, "first")
        _read_event(s, actor, "second")
        # Not yet written, even as the unit itself sees it: they wait for the read to succeed.
        written = Raw(s).one("SELECT count(*) FROM audit_event WHERE request_id = ?", (request_id,))
        assert written == (0,)
        return "shown"

    assert _run(app, service, request_id, "GET") == "shown"
    assert _events(session, request_id) == [("agency.read", "success")] * 2


def test_a_refused_read_keeps_only_its_refusal(where: tuple[FastAPI, Session]) -> None:
    app, session = where
    request_id = f"read {uuid.uuid4().hex[:8]}"

    def service(s: Session, actor: Actor) -> None:
        _read_event(s, actor)
        raise DomainError("no")

    with pytest.raises(DomainError):
        _run(app, service, request_id, "GET")
    assert _events(session, request_id) == [("access.refused", "invalid")]
    assert _refusals(session, request_id) == [("invalid", {"route": READ, "status": 400})]


def test_a_read_that_fails_keeps_no_event(where: tuple[FastAPI, Session]) -> None:
    app, session = where
    request_id = f"read {uuid.uuid4().hex[:8]}"

    def service(s: Session, actor: Actor) -> None:
        _read_event(s, actor)
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        _run(app, service, request_id, "GET")
    assert _events(session, request_id) == []


@pytest.mark.parametrize("how", ["orm", "driver"])
def test_a_read_cannot_write_anything_but_its_events(
    where: tuple[FastAPI, Session], how: str
) -> None:
    app, session = where
    name = f"UoW read {uuid.uuid4().hex[:8]}"

    def service(s: Session, actor: Actor) -> None:
        _read_event(s, actor)
        if how == "orm":
            _add_agency(s, name)
            s.flush()
        else:
            _insert_agency_on_the_driver(s, uuid.uuid4(), name)

    with pytest.raises(ReadUnitWrite):
        _run(app, service, name, "GET")
    assert _agencies_named(session, name) == 0
    assert _events(session, name) == []


def test_units_run_in_autocommit_on_a_database_server_and_writes_begin_their_own(
    request: pytest.FixtureRequest, where: tuple[FastAPI, Session], settings: Settings
) -> None:
    """On PostgreSQL a unit runs over psycopg's asyncio connection in autocommit: a read
    needs no transaction (no BEGIN, no COMMIT), a write sends its own BEGIN with its first
    statement (app.pending), so both its statements are in one transaction. Inside a test's
    transaction, or on SQLite, every unit runs in a transaction."""
    app, _session = where
    seen: dict[str, tuple[str, bool, bool | None]] = {}

    def probe(method: str) -> Callable[[Session, Actor], None]:
        def service(s: Session, _actor: Actor) -> None:
            raw = Raw(s)
            one_transaction = None
            if not raw.sqlite:  # the units' own pool is set up as the engine's
                assert raw.one("SHOW jit", ()) == ("off",)
                first, second = (raw.one("SELECT pg_current_xact_id()::text", ()) for _ in "ab")
                one_transaction = first == second
            seen[method] = (type(raw._dbapi).__name__, raw.in_autocommit(), one_transaction)

        return service

    for method in ("GET", "POST"):
        _run(app, probe(method), f"probe {method}", method)
    own_server = not settings.is_sqlite and "commit" in request.node.callspec.id
    if own_server:
        assert seen == {
            "GET": ("AsyncAdapt_psycopg_connection", True, False),
            "POST": ("AsyncAdapt_psycopg_connection", True, True),
        }
    else:
        assert {autocommit for _driver, autocommit, _one in seen.values()} == {False}
        expected = None if settings.is_sqlite else True
        assert {one for _driver, _autocommit, one in seen.values()} == {expected}


def test_the_served_app_commits_a_reads_event_and_closes_its_connections(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Over HTTP, with the lifespan running, on a database of its own: a refused read's
    event is committed (on PostgreSQL by a unit on the asyncio connection, in autocommit),
    and shutting down closes every connection the app opened."""
    url = _own_database(settings, tmp_path_factory, "served")
    database = Database(create_db_engine(Settings(database_url=url)), inline=settings.is_sqlite)
    request_id = f"served-{uuid.uuid4().hex[:8]}"
    with TestClient(create_app(settings, database)) as client:
        response = client.get("/api/v1/me", headers={"X-Request-ID": request_id})
        assert response.status_code == 401
    engine = create_db_engine(Settings(database_url=url))
    with Session(bind=engine) as own:
        assert _events(own, request_id) == [("auth.token_rejected", "failure")]
        if not settings.is_sqlite:
            others = own.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert others == 0
    engine.dispose()


_HELD_INSERT = (
    "INSERT INTO agency (id, name, kind, is_active, version, created_at)"
    " VALUES (?, ?, 'other', ?, 1, ?)"
)


def _hold_an_agency(raw: Raw, name: str) -> None:
    raw.later(_HELD_INSERT, (raw.id(uuid.uuid4()), name, True, raw.timestamp(utcnow())))


def test_a_write_after_a_refused_one_on_the_same_connection_prepares_again(
    request: pytest.FixtureRequest, where: tuple[FastAPI, Session], settings: Settings
) -> None:
    """A refused write rolls back, and psycopg follows the ROLLBACK with DEALLOCATE ALL once
    it has statements of its own prepared: the next write on that connection must prepare
    its held statements again (app.pending), not fail on a name the server forgot."""
    app, session = where
    name = f"UoW after refusal {uuid.uuid4().hex[:8]}"
    seen: dict[str, Any] = {}

    def refused(s: Session, _actor: Actor) -> None:
        raw = Raw(s)
        _hold_an_agency(raw, f"{name} refused")
        seen["pid"] = raw.one("SELECT pg_backend_pid()" if not raw.sqlite else "SELECT 1", ())
        for _ in range(6):  # enough for psycopg to prepare a statement of its own
            raw.one("SELECT count(*) FROM agency WHERE name = ?", (name,))
        raise Invalid("refused on purpose")

    def accepted(s: Session, _actor: Actor) -> None:
        raw = Raw(s)
        pid = raw.one("SELECT pg_backend_pid()" if not raw.sqlite else "SELECT 1", ())
        seen["same_connection"] = pid == seen["pid"]
        if not raw.sqlite:
            driver = getattr(raw._dbapi, "_connection", raw._dbapi)
            seen["known_after"] = set(pending._PREPARED.get(driver, ()))
        _hold_an_agency(raw, name)
        seen["count"] = raw.one("SELECT count(*) FROM agency WHERE name LIKE ?", (f"{name}%",))

    async def both() -> None:  # one event loop: the units share the pool's one connection
        with pytest.raises(Invalid):
            await _unit(app, "after-refusal")(refused)
        await _unit(app, "after-refusal")(accepted)

    asyncio.run(both())
    assert seen["count"] == (1,)  # its own insert, not the refused one's
    assert _agencies_named(session, name) == 1
    own_server = not settings.is_sqlite and "commit" in request.node.callspec.id
    if own_server:
        assert seen["same_connection"]
        # The server had forgotten the refused unit's insert: it was prepared again.
        insert_name = pending._named(_HELD_INSERT.replace("?", "%s")).name
        assert insert_name not in seen["known_after"]
