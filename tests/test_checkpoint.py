"""SQLite's WAL checkpoints run from a thread of the service's, not inside its commits
(app.checkpoint): the log must still be copied back and reused, or it would grow forever."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.checkpoint import Checkpointer
from app.config import Environment, Settings
from app.main import create_app
from tests.conftest import TEST_SECRET


def _wal_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE note (body TEXT)")
    return connection


def _write(connection: sqlite3.Connection, commits: int) -> None:
    for n in range(commits):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO note VALUES (?)", (f"{n:04d}" * 500,))
        connection.execute("COMMIT")


def _wal_bytes(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def test_a_checkpoint_lets_the_log_be_reused_instead_of_growing(tmp_path: Path) -> None:
    checked, unchecked = tmp_path / "checked.db", tmp_path / "unchecked.db"
    with_checkpoints, without = _wal_database(checked), _wal_database(unchecked)
    _write(with_checkpoints, 200)
    _write(without, 200)
    first = _wal_bytes(checked)
    assert first == _wal_bytes(unchecked) > 0

    busy, pages, copied = Checkpointer(str(checked)).checkpoint()

    assert busy == 0 and pages > 0 and copied == pages
    _write(with_checkpoints, 200)
    _write(without, 200)
    assert _wal_bytes(checked) == first  # started again from the beginning
    assert _wal_bytes(unchecked) > 1.5 * first  # what the log does with no checkpoints
    assert with_checkpoints.execute("SELECT count(*) FROM note").fetchone() == (400,)


def test_the_service_checkpoints_from_its_own_thread(tmp_path: Path) -> None:
    settings = Settings(
        env=Environment.TEST,
        database_url=f"sqlite:///{tmp_path / 'service.db'}",
        secret_key=TEST_SECRET,
        audit_seal_interval_seconds=0,
        sqlite_checkpoint_seconds=0.05,
        log_level="WARNING",
    )
    app = create_app(settings)
    with TestClient(app):
        connection = app.state.db.connect()
        # The service's own connection no longer checkpoints inside its commits, and is not
        # left in a transaction by being told so...
        assert not connection.in_transaction()
        driver = connection.connection.driver_connection
        assert driver.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        with connection.begin():
            connection.exec_driver_sql("CREATE TABLE note (body TEXT)")
        for n in range(50):
            with connection.begin():
                connection.exec_driver_sql("INSERT INTO note VALUES (?)", (str(n) * 1000,))
        # ...and the checkpointer, on its own connection, copies the log back.
        checkpointer = app.state.checkpointer
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            last = checkpointer.last
            if last is not None and last[0] == 0 and last[1] > 0 and last[1] == last[2]:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"no complete checkpoint; last: {checkpointer.last}")
