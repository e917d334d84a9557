"""Partner systems' API clients. A secret is shown once, at creation or rotation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Invalid, NotFound
from app.etags import check_if_match
from app.models.agency import Agency
from app.models.api_client import (
    ApiClient,
    ApiClientCreate,
    ApiClientPublic,
    ApiClientUpdate,
    ApiClientWithSecret,
)
from app.models.base import utcnow
from app.pagination import paginate
from app.policies import visible_api_clients
from app.security import Security

_AUDITED_FIELDS = ("name", "agency_id", "scopes", "is_active")


def _snapshot(client: ApiClient) -> dict[str, Any]:
    return {f: getattr(client, f) for f in _AUDITED_FIELDS}


def list_clients(
    session: Session,
    actor: Actor,
    agency_id: uuid.UUID | None,
    is_active: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ApiClient], str | None]:
    """API clients, oldest first, optionally for one agency."""
    stmt = select(ApiClient).where(visible_api_clients(actor))
    if agency_id is not None:
        stmt = stmt.where(col(ApiClient.agency_id) == agency_id)
    if is_active is not None:
        stmt = stmt.where(col(ApiClient.is_active) == is_active)
    keys = [(col(ApiClient.created_at), datetime), (col(ApiClient.id), uuid.UUID)]
    page = paginate(session, stmt, keys, cursor, limit)
    audit.record(
        session,
        actor,
        AuditAction.API_CLIENT_LIST,
        resource_type="api_client",
        detail={"returned": len(page[0])},
    )
    return page


def _get(
    session: Session, actor: Actor, client_id: uuid.UUID, *, for_update: bool = False
) -> ApiClient:
    stmt = select(ApiClient).where(col(ApiClient.id) == client_id, visible_api_clients(actor))
    client = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if client is None:
        raise NotFound("api_client", client_id)
    return client


def get_client(session: Session, actor: Actor, client_id: uuid.UUID) -> ApiClient:
    """One API client's metadata (never its secret)."""
    client = _get(session, actor, client_id)
    audit.record(
        session,
        actor,
        AuditAction.API_CLIENT_READ,
        resource_type="api_client",
        resource_id=client.id,
    )
    return client


def _with_secret(client: ApiClient, secret: str) -> ApiClientWithSecret:
    public = ApiClientPublic.model_validate(client)
    return ApiClientWithSecret(**public.model_dump(), client_secret=secret)


def create_client(
    session: Session, actor: Actor, security: Security, data: ApiClientCreate
) -> ApiClientWithSecret:
    """Register a partner system for an active agency; the response carries the secret once."""
    agency = session.get(Agency, data.agency_id)
    if agency is None or not agency.is_active:
        raise Invalid("agency_id does not name an active agency", field="body.agency_id")
    secret = security.new_opaque_token()
    client = ApiClient(
        agency_id=agency.id,
        name=data.name,
        scopes=sorted({s.value for s in data.scopes}),
        secret_hash=security.hash_secret(secret),
    )
    session.add(client)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.API_CLIENT_CREATE,
        resource_type="api_client",
        resource_id=client.id,
        changes=audit.diff({}, _snapshot(client)),
    )
    return _with_secret(client, secret)


def update_client(
    session: Session,
    actor: Actor,
    client_id: uuid.UUID,
    data: ApiClientUpdate,
    if_match: str | None,
) -> ApiClient:
    """Rename, re-scope or (de)activate a client; deactivation stops its tokens at once."""
    client = _get(session, actor, client_id, for_update=True)
    check_if_match(if_match, client.version, "api_client", client.id)
    before = _snapshot(client)
    if data.name is not None:
        client.name = data.name
    if data.scopes is not None:
        client.scopes = sorted({s.value for s in data.scopes})
    if data.is_active is not None:
        client.is_active = data.is_active
    delta = audit.diff(before, _snapshot(client))
    if delta:
        client.version += 1
        client.updated_at = utcnow()
        session.flush()
    audit.record(
        session,
        actor,
        AuditAction.API_CLIENT_UPDATE,
        resource_type="api_client",
        resource_id=client.id,
        changes=delta,
    )
    return client


def rotate_secret(
    session: Session, actor: Actor, security: Security, client_id: uuid.UUID, if_match: str | None
) -> ApiClientWithSecret:
    """Issue a new secret; the old one and every token issued under it stop working."""
    client = _get(session, actor, client_id, for_update=True)
    check_if_match(if_match, client.version, "api_client", client.id)
    secret = security.new_opaque_token()
    client.secret_hash = security.hash_secret(secret)
    client.secret_rotated_at = utcnow()
    client.auth_epoch += 1
    client.version += 1
    client.updated_at = client.secret_rotated_at
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.API_CLIENT_ROTATE_SECRET,
        resource_type="api_client",
        resource_id=client.id,
    )
    return _with_secret(client, secret)
