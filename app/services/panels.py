"""Panels: created and configured by admins; member agencies and users' panel roles."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.agency import Agency
from app.models.base import utcnow
from app.models.panel import (
    MemberAgencyPublic,
    MembersUpdate,
    MemberUserPublic,
    Panel,
    PanelCreate,
    PanelMember,
    PanelMembers,
    PanelRole,
    PanelTypePublic,
    PanelUpdate,
)
from app.models.user import User
from app.pagination import paginate
from app.panels import PANEL_TYPES
from app.panels.base import PanelConfig
from app.permissions import Permission
from app.policies import member_panel_ids
from app.prepared import Prepared
from app.prepared import Query as PreparedQuery
from app.rawsql import Raw

_AUDITED = ("name", "area", "config", "is_active")


def list_types(session: Session, actor: Actor) -> list[PanelTypePublic]:
    """The installed panel types and their referral form schemas."""
    audit.record(session, actor, AuditAction.PANEL_TYPES_READ, resource_type="panel_type")
    return [
        PanelTypePublic(
            key=t.key,
            title=t.title,
            reference_prefix=t.reference_prefix,
            person_roles=list(t.person_roles),
            requires_screening=t.requires_screening,
            isolated=t.isolated,
            stages=list(t.stages),
            default_config=t.defaults,
            referral_form_schema=t.schema(),
        )
        for t in PANEL_TYPES.values()
    ]


def config_of(panel: Panel) -> PanelConfig:
    """The panel's effective configuration: its type's defaults with its overrides."""
    return configured(panel.panel_type, panel.config)


def configured(panel_type: str, overrides: dict[str, Any]) -> PanelConfig:
    """A panel type's defaults with a panel's overrides."""
    defaults = PANEL_TYPES[panel_type].defaults
    return PanelConfig.model_validate({**defaults.model_dump(), **overrides})


def list_panels(
    session: Session,
    actor: Actor,
    panel_type: str | None,
    is_active: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Panel], str | None]:
    """Every panel (the directory of panels is not confidential; their cases are)."""
    stmt = select(Panel)
    if panel_type is not None:
        stmt = stmt.where(col(Panel.panel_type) == panel_type)
    if is_active is not None:
        stmt = stmt.where(col(Panel.is_active) == is_active)
    page = paginate(
        session, stmt, [(col(Panel.name), str), (col(Panel.id), uuid.UUID)], cursor, limit
    )
    audit.record(
        session,
        actor,
        AuditAction.PANEL_LIST,
        resource_type="panel",
        detail={"returned": len(page[0])},
    )
    return page


def get_panel_row(session: Session, panel_id: uuid.UUID, *, for_update: bool = False) -> Panel:
    panel = session.get(Panel, panel_id, with_for_update=for_update)
    if panel is None:
        raise NotFound("panel", panel_id)
    return panel


def get_panel(session: Session, actor: Actor, panel_id: uuid.UUID) -> Panel:
    """One panel with its configuration."""
    panel = get_panel_row(session, panel_id)
    audit.record(
        session, actor, AuditAction.PANEL_READ, resource_type="panel", resource_id=panel.id
    )
    return panel


def _snapshot(panel: Panel) -> dict[str, Any]:
    return {f: getattr(panel, f) for f in _AUDITED}


def create_panel(session: Session, actor: Actor, data: PanelCreate) -> Panel:
    """Create a panel of an installed type, with configuration overriding the type's defaults."""
    panel_type = PANEL_TYPES.get(data.panel_type)
    if panel_type is None:
        raise Invalid(f"Unknown panel type '{data.panel_type}'; see GET /api/v1/panel-types")
    if session.scalar(
        select(col(Panel.id)).where(func.lower(col(Panel.name)) == data.name.lower())
    ):
        raise Conflict(f"A panel named '{data.name}' already exists", resource_type="panel")
    overrides = data.config.model_dump(exclude_none=True, mode="json") if data.config else {}
    panel = Panel(panel_type=panel_type.key, name=data.name, area=data.area, config=overrides)
    session.add(panel)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.PANEL_CREATE,
        resource_type="panel",
        resource_id=panel.id,
        changes=audit.diff({}, {"panel_type": panel.panel_type, **_snapshot(panel)}),
    )
    return panel


def update_panel(
    session: Session, actor: Actor, panel_id: uuid.UUID, data: PanelUpdate, if_match: str | None
) -> Panel:
    """Rename, re-area, re-configure or (de)activate a panel."""
    panel = get_panel_row(session, panel_id, for_update=True)
    check_if_match(if_match, panel.version, "panel", panel.id)
    before = _snapshot(panel)
    if data.name is not None and data.name.lower() != panel.name.lower():
        taken = select(col(Panel.id)).where(func.lower(col(Panel.name)) == data.name.lower())
        if session.scalar(taken):
            raise Conflict(f"A panel named '{data.name}' already exists", resource_type="panel")
    if data.name is not None:
        panel.name = data.name
    if data.area is not None:
        panel.area = data.area
    if data.config is not None:
        panel.config = {**panel.config, **data.config.model_dump(exclude_none=True, mode="json")}
    if data.is_active is not None:
        panel.is_active = data.is_active
    delta = audit.diff(before, _snapshot(panel))
    if delta:
        panel.version += 1
        panel.updated_at = utcnow()
        session.flush()
    audit.record(
        session,
        actor,
        AuditAction.PANEL_UPDATE,
        resource_type="panel",
        resource_id=panel.id,
        changes=delta,
    )
    return panel


def member_panel(session: Session, actor: Actor, panel_id: uuid.UUID) -> Panel:
    """A panel the caller takes part in; to anyone else it does not exist (404)."""
    panel = session.scalars(
        select(Panel).where(col(Panel.id) == panel_id, col(Panel.id).in_(member_panel_ids(actor)))
    ).first()
    if panel is None:
        raise NotFound("panel", panel_id)
    return panel


def user_role_on(session: Session, panel_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """Another user's role on a panel: held, the user active, their agency a member."""
    role: str | None = session.scalar(
        select(col(PanelRole.role))
        .join(User, col(User.id) == col(PanelRole.user_id))
        .join(
            PanelMember,
            (col(PanelMember.panel_id) == col(PanelRole.panel_id))
            & (col(PanelMember.agency_id) == col(User.agency_id)),
        )
        .where(
            col(PanelRole.panel_id) == panel_id,
            col(PanelRole.user_id) == user_id,
            col(User.is_active).is_(True),
        )
    )
    return role


def role_query(actor: Actor, panel_id: Any) -> PreparedQuery:
    """The caller's role on the panel ``panel_id`` (a bound parameter or a column), if they
    hold one and their agency is a member: one row at most (the keys of both tables)."""
    return (
        select(col(PanelRole.role))
        .join(PanelMember, col(PanelMember.panel_id) == col(PanelRole.panel_id))
        .where(
            col(PanelRole.panel_id) == panel_id,
            col(PanelRole.user_id) == actor.id,
            col(PanelMember.agency_id) == actor.agency_id,
        )
    )


def _build_role(actor: Actor, _variant: Hashable) -> PreparedQuery:
    return role_query(actor, bindparam("panel_id", required=False))


# Asked on most requests about a panel's work: prepared (app.prepared).
_ROLE = Prepared(_build_role)


def panel_role_of(session: Session, actor: Actor, panel_id: uuid.UUID | Any) -> str | None:
    """The caller's role on a panel, if they hold one and their agency is a member.
    ``panel_id``: a UUID, or the id as the driver returned it."""
    if actor.id is None or actor.agency_id is None:
        return None
    session.flush()  # a role or membership this unit changed through the ORM counts
    found = _ROLE.row(Raw(session), actor, {"panel_id": panel_id})
    return None if found is None else str(found[0])


def _members(session: Session, panel_id: uuid.UUID) -> PanelMembers:
    agencies = session.execute(
        select(col(PanelMember.agency_id), col(Agency.name), col(PanelMember.may_refer))
        .join(Agency, col(Agency.id) == col(PanelMember.agency_id))
        .where(col(PanelMember.panel_id) == panel_id)
        .order_by(col(Agency.name))
    ).all()
    users = session.execute(
        select(
            col(PanelRole.user_id), col(User.full_name), col(User.agency_id), col(PanelRole.role)
        )
        .join(User, col(User.id) == col(PanelRole.user_id))
        .where(col(PanelRole.panel_id) == panel_id)
        .order_by(col(User.full_name))
    ).all()
    return PanelMembers(
        agencies=[
            MemberAgencyPublic(agency_id=a, agency_name=n, may_refer=r) for a, n, r in agencies
        ],
        users=[
            MemberUserPublic(user_id=u, full_name=n, agency_id=a, role=r) for u, n, a, r in users
        ],
    )


def get_members(session: Session, actor: Actor, panel_id: uuid.UUID) -> PanelMembers:
    """Member agencies and users: for admins, auditors and the panel's own members."""
    panel = get_panel_row(session, panel_id)
    oversight = actor.can(Permission.PANEL_WRITE) or actor.can(Permission.AUDIT_READ)
    if not oversight and panel_role_of(session, actor, panel.id) is None:
        raise Forbidden(
            "Only the panel's members may see who sits on it",
            resource_type="panel",
            resource_id=panel.id,
        )
    audit.record(
        session, actor, AuditAction.PANEL_MEMBERS_READ, resource_type="panel", resource_id=panel.id
    )
    return _members(session, panel.id)


def update_members(
    session: Session, actor: Actor, panel_id: uuid.UUID, data: MembersUpdate
) -> PanelMembers:
    """Add, change or remove member agencies and users' panel roles."""
    panel = get_panel_row(session, panel_id, for_update=True)
    for entry in data.agencies:
        agency = session.get(Agency, entry.agency_id)
        if agency is None or not agency.is_active:
            raise Invalid(f"agency {entry.agency_id} is not an active agency")
        # Update in place: a changed may_refer is not a new membership (keeps created_at).
        member = session.get(PanelMember, (panel.id, agency.id))
        if member is None:
            session.add(
                PanelMember(panel_id=panel.id, agency_id=agency.id, may_refer=entry.may_refer)
            )
            session.flush()  # so a repeated entry in this request finds it
        else:
            member.may_refer = entry.may_refer
    session.flush()
    for agency_id in data.remove_agency_ids:
        session.execute(
            delete(PanelMember).where(
                col(PanelMember.panel_id) == panel.id, col(PanelMember.agency_id) == agency_id
            )
        )
        # Its users sit on the panel through it: their roles go with it.
        session.execute(
            delete(PanelRole).where(
                col(PanelRole.panel_id) == panel.id,
                col(PanelRole.user_id).in_(
                    select(col(User.id)).where(col(User.agency_id) == agency_id)
                ),
            )
        )
    member_agencies = set(
        session.scalars(
            select(col(PanelMember.agency_id)).where(col(PanelMember.panel_id) == panel.id)
        )
    )
    for seat in data.users:
        user = session.get(User, seat.user_id)
        if user is None or not user.is_active:
            raise Invalid(f"user {seat.user_id} is not an active user")
        if user.agency_id not in member_agencies:
            raise Invalid(f"user {seat.user_id} belongs to an agency that is not a member")
        role = session.get(PanelRole, (panel.id, user.id))
        if role is None:
            session.add(PanelRole(panel_id=panel.id, user_id=user.id, role=seat.role.value))
            session.flush()
        else:
            role.role = seat.role.value
    for user_id in data.remove_user_ids:
        session.execute(
            delete(PanelRole).where(
                col(PanelRole.panel_id) == panel.id, col(PanelRole.user_id) == user_id
            )
        )
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.PANEL_MEMBERS_UPDATE,
        resource_type="panel",
        resource_id=panel.id,
        changes=data.model_dump(mode="json", exclude_defaults=True),
    )
    return _members(session, panel.id)
