"""Group commit on SQLite (app.group_commit): units of work that run in one turn of the loop
share one COMMIT, each all or nothing on its own, none answered before it is durable.

The rest of the suite runs every unit inside the test's own transaction, where there is no
group; these tests serve the app from a database file of its own, as `panels serve` does,
and send requests concurrently.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import IntegrityError

from app.config import Environment, Settings
from app.db import Database
from app.group_commit import CommitFailed
from app.main import create_app
from app.models.agency import Agency, AgencyKind
from app.security import Security
from tests.builders import Principals, make_principals
from tests.conftest import TEST_SECRET, migrate

AGENCIES = "/api/v1/agencies"


@dataclass
class Served:
    app: FastAPI
    db: Database
    principals: Principals
    path: Path
    commits: list[int]

    def count(self, sql: str, *params: Any) -> int:
        """Read what is durable, from a connection of another's."""
        with sqlite3.connect(self.path) as other:
            (n,) = other.execute(sql, params).fetchone()
        return int(n)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    path = tmp_path / "grouped.db"
    settings = Settings(
        env=Environment.TEST,
        database_url=f"sqlite:///{path}",
        secret_key=TEST_SECRET,
        audit_seal_interval_seconds=0,
        log_level="WARNING",
    )
    db = Database.from_settings(settings)
    assert isinstance(db.bind, Engine)
    with db.bind.begin() as connection:
        migrate(connection)
    with db.session() as session:
        principals = make_principals(session, Security(settings))
        session.commit()
    commits: list[int] = []
    event.listen(db.bind, "commit", lambda _conn: commits.append(1))
    yield Served(create_app(settings, db), db, principals, path, commits)
    db.dispose()


def _send(served: Served, requests: list[tuple[str, str, dict[str, Any] | None]]) -> list[int]:
    """Send the requests all at once; return their status codes, in order."""

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=served.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(
                *(
                    client.request(method, path, json=body, headers=served.principals.admin.headers)
                    for method, path, body in requests
                )
            )
        return [r.status_code for r in responses]

    return asyncio.run(go())


def _create(name: str) -> tuple[str, str, dict[str, Any]]:
    return ("POST", AGENCIES, {"name": name, "kind": "voluntary"})


def test_concurrent_units_share_commits_and_every_one_is_kept(served: Served) -> None:
    names = [f"Grouped {n}" for n in range(24)]
    statuses = _send(served, [_create(name) for name in names])
    assert statuses == [201] * len(names)
    assert served.count("SELECT count(*) FROM agency WHERE name LIKE 'Grouped %'") == len(names)
    assert served.count("SELECT count(*) FROM audit_event WHERE action = 'agency.create'") == 24
    # Grouped: fewer COMMITs than units, which is the point.
    assert 1 <= len(served.commits) < len(names)


def test_a_refused_unit_in_a_group_keeps_its_refusal_and_undoes_nothing_else(
    served: Served,
) -> None:
    missing = f"{AGENCIES}/{uuid.uuid4()}"
    requests = [_create("Same name") for _ in range(4)]
    requests += [("GET", missing, None) for _ in range(4)]
    requests += [_create(f"Unrelated {n}") for n in range(4)]
    statuses = _send(served, requests)
    assert sorted(statuses[:4]) == [201, 409, 409, 409]
    assert statuses[4:] == [404] * 4 + [201] * 4
    assert served.count("SELECT count(*) FROM agency WHERE name LIKE 'Unrelated %'") == 4
    assert served.count("SELECT count(*) FROM agency WHERE name = 'Same name'") == 1
    refused = "SELECT count(*) FROM audit_event WHERE action = 'access.refused'"
    assert served.count(refused) == 3 + 4


def test_a_failed_flush_undoes_its_own_unit_only(served: Served) -> None:
    db = served.db

    def unit(make: Callable[[], Agency]) -> None:
        connection = db.connect()
        transaction = db.begin(connection)
        try:
            with db.unit_session(connection) as session:
                session.add(make())
                session.commit()
            transaction.commit()
        finally:
            if transaction.is_active:
                transaction.rollback()
            db.release(connection)

    taken = served.principals.home.name

    async def go() -> list[Any]:
        return await asyncio.gather(
            db.run(unit, lambda: Agency(name="Kept 1", kind=AgencyKind.VOLUNTARY.value)),
            db.run(unit, lambda: Agency(name=taken, kind=AgencyKind.VOLUNTARY.value)),
            db.run(unit, lambda: Agency(name="Kept 2", kind=AgencyKind.VOLUNTARY.value)),
            return_exceptions=True,
        )

    first, duplicate, last = asyncio.run(go())
    assert first is None and last is None
    assert isinstance(duplicate, IntegrityError)
    assert served.count("SELECT count(*) FROM agency WHERE name LIKE 'Kept %'") == 2
    assert len(served.commits) == 1  # all three ran in one group


def _rename(
    served: Served, short_name: str, then: Callable[[Connection], None] | None = None
) -> None:
    """A unit of work as the service runs one: set the home agency's short name, then
    ``then`` (which may fail, or end the transaction under the unit's feet), then commit."""
    db = served.db
    connection = db.connect()
    transaction = db.begin(connection)
    try:
        connection.exec_driver_sql(
            "UPDATE agency SET short_name = ? WHERE name = ?",
            (short_name, served.principals.home.name),
        )
        if then is not None:
            then(connection)
        transaction.commit()
    finally:
        if transaction.is_active:
            transaction.rollback()
        db.release(connection)


def _fail(_connection: Connection) -> None:
    raise RuntimeError("the unit failed after writing")


def _end_the_transaction(connection: Connection) -> None:
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("ROLLBACK")


def test_a_unit_that_fails_after_writing_is_rolled_back_to_its_own_savepoint(
    served: Served,
) -> None:
    db = served.db

    async def go() -> list[Any]:
        return await asyncio.gather(
            db.run(_rename, served, "First"),
            db.run(_rename, served, "Undone", _fail),
            return_exceptions=True,
        )

    kept, failed = asyncio.run(go())
    assert kept is None and isinstance(failed, RuntimeError)
    assert served.count("SELECT count(*) FROM agency WHERE short_name = 'First'") == 1
    assert served.count("SELECT count(*) FROM agency WHERE short_name = 'Undone'") == 0
    assert len(served.commits) == 1


def test_no_unit_is_answered_before_its_commit(served: Served) -> None:
    async def go() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post(
                AGENCIES,
                json={"name": "Durable", "kind": "police"},
                headers=served.principals.admin.headers,
            )
            # Read from another connection before the loop runs anything else.
            return r.status_code, served.count("SELECT count(*) FROM agency WHERE name = 'Durable'")

    assert asyncio.run(go()) == (201, 1)


def test_when_the_shared_commit_fails_every_unit_of_the_group_fails_and_nothing_is_kept(
    served: Served,
) -> None:
    failures = [1]

    def fail_once(_conn: object) -> None:
        if failures:
            failures.pop()
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(served.db.bind, "commit", fail_once)
    names = [f"Lost or kept {n}" for n in range(12)]
    statuses = _send(served, [_create(name) for name in names])
    assert 500 in statuses
    assert set(statuses) <= {201, 500}
    for name, status in zip(names, statuses, strict=True):
        kept = served.count("SELECT count(*) FROM agency WHERE name = ?", name)
        assert kept == (1 if status == 201 else 0), (name, status)
    created = served.count("SELECT count(*) FROM audit_event WHERE action = 'agency.create'")
    assert created == statuses.count(201)


def test_when_the_database_ends_the_group_the_rest_of_it_does_nothing_and_the_next_group_works(
    served: Served,
) -> None:
    """SQLite rolls a transaction back on its own on a full disk or an I/O error; a unit that
    comes after, in the same group, must not start and commit a transaction of its own."""
    db = served.db

    async def go() -> list[Any]:
        group = await asyncio.gather(
            db.run(_rename, served, "Ended", _end_the_transaction),
            db.run(_rename, served, "After"),
            return_exceptions=True,
        )
        later = await db.run(_rename, served, "Next")
        return [*group, later]

    ended, after, later = asyncio.run(go())
    assert isinstance(ended, Exception)
    assert isinstance(after, CommitFailed)
    assert later is None
    assert served.count("SELECT count(*) FROM agency WHERE short_name = 'After'") == 0
    assert served.count("SELECT count(*) FROM agency WHERE short_name = 'Next'") == 1
