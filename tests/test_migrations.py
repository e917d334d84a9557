"""The migrations are the schema: they match the models, and go up and down on this backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, inspect, make_url

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
