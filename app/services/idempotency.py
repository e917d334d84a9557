"""Idempotency-Key for creating POSTs: a retry gets the first response and creates nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app.actor import Actor
from app.errors import Invalid
from app.models.idempotency import IdempotencyRecord


def request_hash(body: BaseModel) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def once(
    session: Session,
    actor: Actor,
    endpoint: str,
    key: str | None,
    body: BaseModel,
    create: Callable[[], BaseModel],
    status_code: int = 201,
) -> tuple[dict[str, Any], bool]:
    """Run ``create`` unless this principal already sent ``key``; return (response, replayed).

    The same key with a different body is refused (422). The record is written in the same
    transaction as what it created, so a retry after a failure simply runs again.
    """
    if key is None:
        return create().model_dump(mode="json"), False
    principal = f"{actor.kind.value}:{actor.id}"
    digest = request_hash(body)
    previous = session.scalars(
        select(IdempotencyRecord).where(
            col(IdempotencyRecord.principal) == principal,
            col(IdempotencyRecord.endpoint) == endpoint,
            col(IdempotencyRecord.key) == key,
        )
    ).first()
    if previous is not None:
        if previous.request_hash != digest:
            raise Invalid("This Idempotency-Key was already used with a different request body")
        return previous.response, True
    response = create().model_dump(mode="json")
    session.add(
        IdempotencyRecord(
            principal=principal,
            endpoint=endpoint,
            key=key,
            request_hash=digest,
            status_code=status_code,
            response=response,
        )
    )
    session.flush()
    return response, False
