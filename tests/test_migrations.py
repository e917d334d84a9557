"""The migrations are the schema: they match the models, and go up and down on this backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Uuid,
    column,
    insert,
    inspect,
    make_url,
    select,
    table,
    text,
)
from sqlalchemy.exc import DBAPIError

import app.models  # noqa: F401  (registers every table)
from app.config import Settings
from app.db import Database, create_db_engine
from app.main import create_app
from app.migrations_state import alembic_config, head_revisions
from app.models.base import metadata
from tests.conftest import _fresh_server_database


def test_models_and_migrations_do_not_differ(connection: Connection) -> None:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    assert compare_metadata(context, metadata) == []


@pytest.fixture
def scratch(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An empty database of the same backend, for running the migrations end to end."""
    if settings.is_sqlite:
        url = f"sqlite:///{tmp_path_factory.mktemp('scratch') / 'scratch.db'}"
    else:
        parsed = make_url(settings.database_url)
        url = parsed.set(database=f"{parsed.database}_scratch").render_as_string(
            hide_password=False
        )
        _fresh_server_database(url)
    engine = create_db_engine(Settings(database_url=url))
    yield engine
    engine.dispose()


def _run(engine: Engine, verb: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["configure_logger"] = False
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, verb)(config, revision)


def test_upgrade_downgrade_upgrade(scratch: Engine) -> None:
    _run(scratch, "upgrade", "head")
    tables = set(inspect(scratch).get_table_names())
    assert {"agency", "user_account", "api_client", "audit_event", "audit_seal"} <= tables
    _run(scratch, "downgrade", "base")
    assert set(inspect(scratch).get_table_names()) <= {"alembic_version"}
    _run(scratch, "upgrade", "head")
    with scratch.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == head_revisions()


def _subjects(engine: Engine, *names: str) -> set[tuple[Any, ...]]:
    t = table("audit_subject", *(column(n, Uuid() if n == "case_id" else Integer()) for n in names))
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(select(*t.c))}


def _refuses_change(engine: Engine) -> None:
    for statement in (
        "UPDATE audit_subject SET event_id = event_id + 1",
        "DELETE FROM audit_subject",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_re_keying_the_subject_index_keeps_its_rows_and_its_triggers(scratch: Engine) -> None:
    """3e8d1f6a2c57 rebuilds audit_subject keyed by epoch: every row is kept, filed under its
    event's epoch, and the table stays append-only; its downgrade gives the rows back as
    they were."""
    before, after = "7c41e2a9b053", "3e8d1f6a2c57"
    _run(scratch, "upgrade", before)
    rows = {(uuid.uuid4(), event_id) for event_id in (5, 511, 512, 700, 1024, 10**9)}
    rows.add((next(iter(rows))[0], 3))
    written = table("audit_subject", column("case_id", Uuid()), column("event_id", Integer()))
    with scratch.begin() as conn:
        conn.execute(insert(written), [{"case_id": c, "event_id": e} for c, e in rows])
    _run(scratch, "upgrade", after)
    by_epoch = {(e // 512, c, e) for c, e in rows}
    assert _subjects(scratch, "epoch", "case_id", "event_id") == by_epoch
    _refuses_change(scratch)
    _run(scratch, "downgrade", before)
    assert _subjects(scratch, "case_id", "event_id") == rows
    _refuses_change(scratch)
    _run(scratch, "upgrade", "head")


def test_readyz_reports_a_database_behind_the_migrations(
    scratch: Engine, settings: Settings
) -> None:
    app = create_app(settings, Database(scratch, inline=settings.is_sqlite))
    client = TestClient(app)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert "migrations at" in r.json()["detail"]
    _run(scratch, "upgrade", "head")
    assert client.get("/readyz").status_code == 200
