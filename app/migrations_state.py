"""Is the database at the head of the Alembic migrations? Used by /readyz and the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def migration_status(db: Database, heads: frozenset[str]) -> tuple[bool, str]:
    """(ready, explanation): the database is reachable and at the migrations' head."""
    # On the service's own connection: on SQLite a second one would share its driver
    # connection and, given back to the pool, roll back the units waiting for their COMMIT.
    try:
        conn = db.connect()
        try:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
        finally:
            db.release(conn)
    except SQLAlchemyError as exc:
        return False, f"database unreachable: {type(exc).__name__}"
    if current != heads:
        return False, f"schema at {sorted(current) or 'nothing'}, migrations at {sorted(heads)}"
    return True, f"schema at {', '.join(sorted(heads))}"
