"""Migrations applied once per run; every test in a transaction rolled back at the end.

The suite runs on SQLite by default and on PostgreSQL when PANELS_TEST_DATABASE_URL names a
database on a server (it is dropped and created afresh for the run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from app.config import Environment, Settings
from app.db import Database, create_db_engine
from app.main import create_app
from app.migrations_state import alembic_config
from app.security import Security
from tests.builders import Principals, make_principals

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def _fresh_server_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("PANELS_TEST_DATABASE_URL")
    if url:
        _fresh_server_database(url)
        return url
    path: Path = tmp_path_factory.mktemp("db") / "panels-test.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        env=Environment.TEST,
        database_url=database_url,
        secret_key=TEST_SECRET,
        audit_seal_interval_seconds=0,
        log_level="WARNING",
    )


def migrate(connection: Connection, revision: str = "head") -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    with engine.begin() as conn:
        migrate(conn)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session for arranging and inspecting data, inside the test's transaction."""
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as s:
        yield s


@pytest.fixture
def db(connection: Connection, settings: Settings) -> Database:
    return Database(connection, inline=settings.is_sqlite, join_transaction_mode="create_savepoint")


@pytest.fixture
def security(settings: Settings) -> Security:
    return Security(settings)


@pytest.fixture(scope="session")
def shared_app(settings: Settings, engine: Engine) -> FastAPI:
    """Building the app costs more than most tests; build it once and swap its database."""
    return create_app(settings, Database(engine, inline=settings.is_sqlite))


@pytest.fixture
def app(shared_app: FastAPI, db: Database) -> Iterator[FastAPI]:
    """The app, bound for this test to the test's rolled-back transaction."""
    original = shared_app.state.db
    shared_app.state.db = db
    yield shared_app
    shared_app.state.db = original


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def principals(session: Session, security: Security) -> Principals:
    """One principal per role, each with a valid access token."""
    return make_principals(session, security)
