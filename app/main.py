"""create_app(): settings, database, routers, error handlers, middleware, audit sealer."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig

from app import __doc__ as summary
from app.checkpoint import Checkpointer
from app.config import Settings, get_settings
from app.db import Database
from app.errors import install_error_handlers
from app.logging import configure_logging, get_logger
from app.middleware import RequestContextMiddleware
from app.migrations_state import head_revisions
from app.openapi import document_bearer_security
from app.routers import (
    actions,
    agencies,
    agenda,
    api_clients,
    attendance,
    audit,
    auth,
    cases,
    conferences,
    health,
    me,
    minutes,
    panels,
    people,
    referrals,
    users,
)
from app.security import Security
from app.services.audit_chain import chain_key, seal_next

log = get_logger("app")


# The subjects (cases shown) the service's sealer indexes in one batch at most. Measured on the
# eighth round's benchmark machine, ~3.5 µs of CPU each on SQLite, hashing included: a batch
# holds the event loop for ~9 ms, where a hundred events of fifty-case list reads held it for
# 16-25 ms and set those reads' p99. A smaller budget (1,000) left the sealer behind the list
# reads: each batch waits for its group's commit.
SUBJECTS_PER_BATCH = 2500


def seal_batch(
    db: Database, key: bytes, batch: int, subjects: int | None = None
) -> tuple[int, bool]:
    """Seal one batch of queued audit events in its own transaction (on SQLite, its own
    SAVEPOINT in a group of units: ``app.group_commit``); return how many, and whether a
    limit stopped the batch (more were waiting)."""
    connection = db.connect()
    try:
        transaction = db.begin(connection)
        try:
            with db.unit_session(connection) as session:
                sealed = seal_next(session, key, batch=batch, subjects=subjects)
                session.commit()
            transaction.commit()
        finally:
            if transaction.is_active:
                transaction.rollback()
    finally:
        db.release(connection)
    return sealed


def seal_all(db: Database, key: bytes, batch: int) -> int:
    """Seal queued audit events until the queue is empty; return how many were sealed."""
    total, more = 0, True
    while more:
        sealed, more = seal_batch(db, key, batch)
        total += sealed
    return total


async def _sealer(db: Database, key: bytes, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.audit_seal_interval_seconds)
        try:
            # Batch by batch, yielding between them, while batches come back full: on SQLite
            # the sealer shares the event loop with requests, and a long seal would show up
            # in their tail latency. Once a batch is not full, the rest waits for the next
            # round: sealing the few events each moment brings costs more a batch.
            batch, more = settings.audit_seal_batch, True
            while more:
                _, more = await db.run(seal_batch, db, key, batch, SUBJECTS_PER_BATCH)
                await asyncio.sleep(0)
        except Exception as exc:  # keep sealing on the next round; the queue keeps the events
            log.error("audit_seal_failed", error_type=type(exc).__name__)


# FastAPI's OpenTelemetry instrumentation, off (``Settings.opentelemetry``).
_NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def _freeze_startup_objects() -> None:
    """Keep what start-up built (routes, models, metadata: ~190,000 objects) out of every
    later garbage collection. A full collection over them stopped the process for ~80 ms,
    every request in flight included: that was the p99 of the cheap reads."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db: Database = app.state.db
    key = chain_key(settings.secret_key, settings.audit_key)
    task = None
    if settings.audit_seal_interval_seconds > 0:
        task = asyncio.create_task(_sealer(db, key, settings))
    checkpointer, checkpoints = None, None
    path = db.sqlite_file()
    if path is not None and settings.sqlite_checkpoint_seconds > 0:
        db.checkpoint_elsewhere()
        checkpointer = app.state.checkpointer = Checkpointer(path)
        checkpoints = asyncio.create_task(checkpointer.run(settings.sqlite_checkpoint_seconds))
    _freeze_startup_objects()
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await db.run(seal_all, db, key, settings.audit_seal_batch)
        if checkpointer is not None and checkpoints is not None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
            with contextlib.suppress(Exception):
                checkpointer.checkpoint()
            checkpointer.close()
        await db.aclose()


# The API's sections in the order /docs shows them (the routers are included busiest first).
_TAGS = [
    {"name": name, "description": description}
    for name, description in (
        ("auth", "Tokens: password and client-credentials grants, refresh"),
        ("me", "The signed-in user: profile, password, second factor"),
        ("agencies", "Partner agencies"),
        ("users", "User accounts and their roles"),
        ("api clients", "Partner systems' OAuth2 clients"),
        ("audit", "The sealed audit log: queries, exports, verification"),
        ("panels", "Panels, panel types, members and roles"),
        ("people", "People and likely matches"),
        ("referrals", "Referrals and their triage"),
        ("cases", "Cases, consents and exclusions"),
        ("conferences", "Case conferences: agenda, attendance, minutes"),
        ("actions", "Actions and their progress"),
        ("health", "Liveness and readiness"),
    )
]


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Safeguarding Panels",
        version="0.1.0",
        summary=summary,
        description="The API partner agencies, panel coordinators and auditors use. "
        "Every access is audited. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        redoc_url=None,
        openapi_tags=_TAGS,
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.db = database or Database.from_settings(settings)
    app.state.security = Security(settings)
    app.state.migration_heads = head_revisions()
    install_error_handlers(app)

    # FastAPI asks each router in turn whether a path is one of its own (``app.routing``):
    # the busiest first, which partner systems and coordinators call all day.
    for router in (
        cases.router,
        actions.router,
        actions.on_cases,
        agenda.router,
        referrals.router,
        conferences.router,
        agencies.router,
        people.router,
        panels.router,
        attendance.router,
        minutes.router,
        auth.router,
        me.router,
        users.router,
        api_clients.router,
        audit.router,
        conferences.feeds,
        health.router,
    ):
        app.include_router(router)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "X-Request-ID",
                "X-Purpose",
            ],
            expose_headers=["ETag", "Location", "X-Request-ID"],
        )
    document_bearer_security(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
