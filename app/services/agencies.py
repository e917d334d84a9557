"""Partner agencies: the directory every principal reads, and admins maintain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Conflict, NotFound
from app.etags import check_if_match
from app.models.agency import Agency, AgencyCreate, AgencyKind, AgencyPublic, AgencyUpdate
from app.models.base import utcnow
from app.pagination import paginate
from app.services import idempotency

_AUDITED_FIELDS = ("name", "short_name", "kind", "contact_email", "is_active")


def list_agencies(
    session: Session,
    actor: Actor,
    kind: AgencyKind | None,
    is_active: bool | None,
    name: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Agency], str | None]:
    """Agencies, alphabetically, filtered by kind, status and a name fragment."""
    stmt = select(Agency)
    if kind is not None:
        stmt = stmt.where(col(Agency.kind) == kind.value)
    if is_active is not None:
        stmt = stmt.where(col(Agency.is_active) == is_active)
    if name:
        stmt = stmt.where(func.lower(col(Agency.name)).contains(name.lower(), autoescape=True))
    page = paginate(
        session, stmt, [(col(Agency.name), str), (col(Agency.id), uuid.UUID)], cursor, limit
    )
    audit.record(
        session,
        actor,
        AuditAction.AGENCY_LIST,
        resource_type="agency",
        detail={"returned": len(page[0])},
    )
    return page


def _get(session: Session, agency_id: uuid.UUID, *, for_update: bool = False) -> Agency:
    agency = session.get(Agency, agency_id, with_for_update=for_update)
    if agency is None:
        raise NotFound("agency", agency_id)
    return agency


def get_agency(session: Session, actor: Actor, agency_id: uuid.UUID) -> Agency:
    """One agency by id."""
    agency = _get(session, agency_id)
    audit.record(
        session, actor, AuditAction.AGENCY_READ, resource_type="agency", resource_id=agency.id
    )
    return agency


def _ensure_name_free(session: Session, name: str, exclude: uuid.UUID | None = None) -> None:
    stmt = select(col(Agency.id)).where(func.lower(col(Agency.name)) == name.lower())
    if exclude is not None:
        stmt = stmt.where(col(Agency.id) != exclude)
    if session.scalar(stmt) is not None:
        raise Conflict(f"An agency named '{name}' already exists", resource_type="agency")


def create_agency(session: Session, actor: Actor, data: AgencyCreate) -> Agency:
    """Register a partner agency."""
    _ensure_name_free(session, data.name)
    agency = Agency(
        name=data.name,
        kind=data.kind.value,
        short_name=data.short_name,
        contact_email=data.contact_email,
    )
    session.add(agency)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.AGENCY_CREATE,
        resource_type="agency",
        resource_id=agency.id,
        changes=audit.diff({}, {f: getattr(agency, f) for f in _AUDITED_FIELDS}),
    )
    return agency


def create_agency_once(
    session: Session, actor: Actor, data: AgencyCreate, key: str | None
) -> tuple[dict[str, Any], bool]:
    """Create, or with a repeated Idempotency-Key return the first response (and whether)."""
    return idempotency.once(
        session,
        actor,
        "agency.create",
        key,
        data,
        lambda: AgencyPublic.model_validate(create_agency(session, actor, data)),
    )


def update_agency(
    session: Session, actor: Actor, agency_id: uuid.UUID, data: AgencyUpdate, if_match: str | None
) -> Agency:
    """Change an agency; deactivating one stops its users' and clients' tokens at once."""
    agency = _get(session, agency_id, for_update=True)
    check_if_match(if_match, agency.version, "agency", agency.id)
    changes = data.model_dump(exclude_unset=True, mode="json")
    if changes.get("is_active") is False and agency.id == actor.agency_id:
        # Deactivating it would end the caller's own access at once, as deactivating
        # themselves would; another admin, of another agency, has to do it.
        raise Conflict(
            "You cannot deactivate your own agency", resource_type="agency", resource_id=agency.id
        )
    if changes.get("name") and changes["name"].lower() != agency.name.lower():
        _ensure_name_free(session, changes["name"], exclude=agency.id)
    before = {f: getattr(agency, f) for f in _AUDITED_FIELDS}
    for field, value in changes.items():
        setattr(agency, field, value)
    after = {f: getattr(agency, f) for f in _AUDITED_FIELDS}
    delta = audit.diff(before, after)
    if delta:
        agency.version += 1
        agency.updated_at = utcnow()
        session.flush()
    audit.record(
        session,
        actor,
        AuditAction.AGENCY_UPDATE,
        resource_type="agency",
        resource_id=agency.id,
        changes=delta,
    )
    return agency
