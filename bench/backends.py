"""Fresh databases for a run: a SQLite file in a temp dir, or a PostgreSQL database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import create_engine, func, make_url, select

from app.models.audit import AuditUnsealed

from .servers import ROOT


class BackendUnavailable(RuntimeError):
    pass


@dataclass
class Backend:
    name: str  # "sqlite" | "postgresql"
    url: str  # the SQLAlchemy URL the service is given
    version: str
    admin_url: str | None = None  # PostgreSQL: where to drop the database afterwards

    def drop(self) -> None:
        if self.admin_url is None:
            return  # the SQLite file goes with the run's temp dir
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            name = make_url(self.url).database
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name or "")
                )
            )


def sqlite_backend(workdir: Path) -> Backend:
    path = workdir / "panels-bench.db"
    return Backend("sqlite", f"sqlite:///{path}", f"SQLite {sqlite3.sqlite_version}")


def postgresql_backend(admin_url: str, database: str) -> Backend:
    """Drop and create ``database`` on the server ``admin_url`` points at."""
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            row = conn.execute("SHOW server_version").fetchone()
            settings = {
                name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections")
            }
    except psycopg.Error as exc:
        raise BackendUnavailable(f"PostgreSQL at {admin_url} is unreachable: {exc}") from exc
    extra = ", ".join(f"{k}={v[0]}" for k, v in settings.items() if v)
    version = f"PostgreSQL {row[0] if row else '?'} ({extra})"
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=database)
    return Backend(
        "postgresql", url.render_as_string(hide_password=False), version, admin_url=admin_url
    )


def migrate(url: str, env: dict[str, str]) -> None:
    """`panels migrate` against ``url``, as an operator would run it."""
    _panels("migrate", url, env)


def seal_backlog(url: str, env: dict[str, str]) -> None:
    """`panels audit-seal` against ``url``: the audit events a previous run left queued are
    sealed before the next run, so that its server's sealer is not measured doing them."""
    _panels("audit-seal", url, env)


def _panels(command: str, url: str, env: dict[str, str]) -> None:
    """Runs the `panels` entry point from this checkout (``app.cli``), so the schema always
    matches the code under test, whichever tree the editable install points at."""
    proc = subprocess.run(
        [sys.executable, "-c", "from app.cli import app; app()", command],
        cwd=ROOT,
        env={**env, "PANELS_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"panels {command} failed:\n{proc.stdout}\n{proc.stderr}")


def unsealed_backlog(url: str) -> int:
    """Audit events still waiting for the sealer."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(AuditUnsealed)) or 0)
    finally:
        engine.dispose()
