"""People who log in: created and maintained by admins, or by agency admins for their agency."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.config import Settings
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.agency import Agency
from app.models.base import utcnow
from app.models.user import User, UserCreate, UserPublic, UserUpdate
from app.pagination import paginate
from app.permissions import Permission, Role
from app.policies import visible_users
from app.security import Security
from app.services import idempotency
from app.services.auth import revoke_user_tokens

_AUDITED_FIELDS = ("email", "full_name", "job_title", "roles", "is_active", "agency_id")
_PASSWORD = "body.password"


def check_password_policy(
    password: str, email: str, min_length: int, *, field: str | None = None
) -> None:
    """At least ``min_length`` characters, and not the user's email or its local part."""
    if len(password) < min_length:
        raise Invalid(f"The password must be at least {min_length} characters long", field=field)
    lowered = password.strip().lower()
    if lowered in {email.lower(), email.split("@", 1)[0].lower()}:
        raise Invalid("The password must not be the user's email address", field=field)


def _snapshot(user: User) -> dict[str, Any]:
    return {f: getattr(user, f) for f in _AUDITED_FIELDS}


def list_users(
    session: Session,
    actor: Actor,
    agency_id: uuid.UUID | None,
    is_active: bool | None,
    email: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[User], str | None]:
    """Users the caller may manage or review, ordered by email."""
    stmt = select(User).where(visible_users(actor))
    if agency_id is not None:
        stmt = stmt.where(col(User.agency_id) == agency_id)
    if is_active is not None:
        stmt = stmt.where(col(User.is_active) == is_active)
    if email:
        stmt = stmt.where(func.lower(col(User.email)).contains(email.lower(), autoescape=True))
    page = paginate(
        session, stmt, [(col(User.email), str), (col(User.id), uuid.UUID)], cursor, limit
    )
    audit.record(
        session,
        actor,
        AuditAction.USER_LIST,
        resource_type="user",
        detail={"returned": len(page[0])},
    )
    return page


def _get(session: Session, actor: Actor, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    stmt = select(User).where(col(User.id) == user_id, visible_users(actor))
    user = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if user is None:
        raise NotFound("user", user_id)
    return user


def get_user(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    """One user, if the caller may see them."""
    user = _get(session, actor, user_id)
    audit.record(session, actor, AuditAction.USER_READ, resource_type="user", resource_id=user.id)
    return user


def _check_roles(actor: Actor, roles: list[str]) -> None:
    if roles and not actor.can(Permission.ROLE_ASSIGN):
        raise Forbidden("Assigning system roles needs the 'role:assign' permission")


def create_user(
    session: Session, actor: Actor, security: Security, settings: Settings, data: UserCreate
) -> User:
    """Create a user in an active agency the caller administers."""
    roles = sorted({r.value for r in data.roles})
    _check_roles(actor, roles)
    agency = session.get(Agency, data.agency_id)
    if agency is None or not agency.is_active:
        raise Invalid("agency_id does not name an active agency", field="body.agency_id")
    if Role.ADMIN not in actor.roles and agency.id != actor.agency_id:
        raise Forbidden("Agency admins create users in their own agency only")
    email = data.email.lower()
    if session.scalar(select(col(User.id)).where(func.lower(col(User.email)) == email)) is not None:
        raise Conflict("A user with that email already exists", resource_type="user")
    check_password_policy(data.password, email, settings.password_min_length, field=_PASSWORD)
    user = User(
        agency_id=agency.id,
        email=email,
        full_name=data.full_name,
        job_title=data.job_title,
        roles=roles,
        password_hash=security.hash_secret(data.password),
        password_changed_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.USER_CREATE,
        resource_type="user",
        resource_id=user.id,
        changes=audit.diff({}, _snapshot(user)),
    )
    return user


class _CreateFingerprint(BaseModel):
    """What a retry must repeat: the request, with the password as a keyed MAC, never itself
    (a plain hash of it in the idempotency table would be cheap to guess offline)."""

    request: dict[str, Any]
    password_mac: str


def create_user_once(
    session: Session,
    actor: Actor,
    security: Security,
    settings: Settings,
    data: UserCreate,
    key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Create, or with a repeated Idempotency-Key return the first response (and whether)."""
    mac = hmac.new(settings.secret_key.encode(), data.password.encode(), hashlib.sha256)
    fingerprint = _CreateFingerprint(
        request=data.model_dump(mode="json", exclude={"password"}), password_mac=mac.hexdigest()
    )
    return idempotency.once(
        session,
        actor,
        "user.create",
        key,
        fingerprint,
        lambda: UserPublic.model_validate(create_user(session, actor, security, settings, data)),
    )


def update_user(
    session: Session,
    actor: Actor,
    security: Security,
    settings: Settings,
    user_id: uuid.UUID,
    data: UserUpdate,
    if_match: str | None,
) -> User:
    """Change a user's details, roles or status; reset their password, lockout or MFA."""
    user = _get(session, actor, user_id, for_update=True)
    check_if_match(if_match, user.version, "user", user.id)
    if user.roles and not actor.can(Permission.ROLE_ASSIGN):
        raise Forbidden("Only an admin may change a user who holds a system role")
    before = _snapshot(user)
    events: dict[str, Any] = {}
    if data.roles is not None:
        roles = sorted({r.value for r in data.roles})
        _check_roles(actor, roles if roles != user.roles else [])
        if user.id == actor.id and Role.ADMIN in user.roles and Role.ADMIN not in roles:
            raise Conflict("You cannot remove your own admin role")
        user.roles = roles
    if data.is_active is not None:
        if user.id == actor.id and not data.is_active:
            raise Conflict("You cannot deactivate your own account")
        user.is_active = data.is_active
        if not data.is_active:
            # Tokens issued before deactivation must not revive if the account is reactivated.
            user.auth_epoch += 1
            revoke_user_tokens(session, user.id)
    if data.full_name is not None:
        user.full_name = data.full_name
    if "job_title" in data.model_fields_set:
        user.job_title = data.job_title
    if data.password is not None:
        check_password_policy(
            data.password, user.email, settings.password_min_length, field=_PASSWORD
        )
        user.password_hash = security.hash_secret(data.password)
        user.password_changed_at = utcnow()
        user.auth_epoch += 1
        revoke_user_tokens(session, user.id)
        events["password"] = "reset"
    if data.unlock:
        user.failed_login_count = 0
        user.locked_until = None
        events["lockout"] = "cleared"
    if data.reset_mfa:
        user.totp_secret_enc = None
        user.totp_pending_enc = None
        user.totp_last_step = None
        user.auth_epoch += 1
        revoke_user_tokens(session, user.id)
        events["mfa"] = "reset"
    delta = audit.diff(before, _snapshot(user)) | events
    if delta:
        user.version += 1
        user.updated_at = utcnow()
        session.flush()
    audit.record(
        session,
        actor,
        AuditAction.USER_UPDATE,
        resource_type="user",
        resource_id=user.id,
        changes=delta,
    )
    return user
