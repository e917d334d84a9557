"""Liveness and readiness probes (outside /api/v1, unauthenticated, no data)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.deps import DatabaseDep
from app.migrations_state import migration_status
from app.routing import IndexedRouter

router = IndexedRouter(tags=["health"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(db: DatabaseDep, request: Request) -> Health | JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    ready, detail = await db.run(migration_status, db, request.app.state.migration_heads)
    if not ready:
        return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
    return Health(status="ok", detail=detail)
