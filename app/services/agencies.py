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
from app.rawsql import Raw
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


_READ_SQL = (
    "SELECT id, name, short_name, kind, contact_email, is_active, version, created_at,"
    " updated_at FROM agency WHERE id = ?"
)


def _read(session: Session, agency_id: uuid.UUID, *, for_update: bool = False) -> AgencyPublic:
    """The hot read path, through the driver (see app.rawsql)."""
    raw = Raw(session)
    lock = " FOR UPDATE" if for_update and not raw.sqlite else ""
    row = raw.one(_READ_SQL + lock, (raw.id(agency_id),))
    if row is None:
        raise NotFound("agency", agency_id)
    return AgencyPublic(
        id=agency_id,
        name=row[1],
        short_name=row[2],
        kind=AgencyKind(row[3]),
        contact_email=row[4],
        is_active=bool(row[5]),
        version=row[6],
        created_at=raw.to_timestamp(row[7]) or utcnow(),
        updated_at=raw.to_timestamp(row[8]),
    )


def get_agency(session: Session, actor: Actor, agency_id: uuid.UUID) -> AgencyPublic:
    """One agency by id."""
    agency = _read(session, agency_id)
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
) -> AgencyPublic:
    """Change an agency; deactivating one stops its users' and clients' tokens at once."""
    agency = _read(session, agency_id, for_update=True)
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
    before = agency.model_dump(include=set(_AUDITED_FIELDS), mode="json")
    after = {**before, **{f: v for f, v in changes.items() if f in _AUDITED_FIELDS}}
    delta = audit.diff(before, after)
    if delta:
        agency = agency.model_copy(
            update={
                **after,
                "kind": AgencyKind(after["kind"]),
                "version": agency.version + 1,
                "updated_at": utcnow(),
            }
        )
        raw = Raw(session)
        # The version guard makes a lost update impossible even without a row lock. Nothing
        # waits on it: it goes with the unit's COMMIT (app.pending).
        raw.later(
            "UPDATE agency SET name = ?, short_name = ?, kind = ?, contact_email = ?,"
            " is_active = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?",
            (
                agency.name,
                agency.short_name,
                agency.kind.value,
                agency.contact_email,
                agency.is_active,
                agency.version,
                raw.timestamp(agency.updated_at or utcnow()),
                raw.id(agency.id),
                agency.version - 1,
            ),
        )
    audit.record(
        session,
        actor,
        AuditAction.AGENCY_UPDATE,
        resource_type="agency",
        resource_id=agency.id,
        changes=delta,
    )
    return agency
