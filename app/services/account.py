"""The caller's own account: who am I, change my password, enrol a second factor."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import audit
from app.actor import Actor, ActorKind
from app.audit import AuditAction
from app.config import Settings
from app.errors import Forbidden, Invalid
from app.models.agency import Agency
from app.models.api_client import ApiClient
from app.models.auth import AgencyRef, Me, TotpEnrolment
from app.models.base import utcnow
from app.models.user import PasswordChange, User
from app.security import Security
from app.services.auth import revoke_user_tokens
from app.services.users import check_password_policy


def _own_user(session: Session, actor: Actor) -> User:
    if actor.kind is not ActorKind.USER or actor.id is None:
        raise Forbidden("Only a person's account has a password and a second factor")
    user = session.get(User, actor.id)
    assert user is not None  # the actor was loaded from this row in this transaction
    return user


def _must_enrol(user: User, settings: Settings) -> bool:
    """The user's role requires a second factor and none is enrolled yet."""
    required = bool(set(settings.mfa_required_roles).intersection(user.roles))
    return required and user.totp_secret_enc is None


def me(session: Session, actor: Actor, settings: Settings) -> Me:
    """Describe the caller: account, agency, roles or scopes, effective permissions."""
    assert actor.id is not None and actor.agency_id is not None
    agency = session.get(Agency, actor.agency_id)
    assert agency is not None
    ref = AgencyRef(id=agency.id, name=agency.name)
    permissions = sorted(actor.permissions)
    audit.record(
        session, actor, AuditAction.SELF_READ, resource_type=actor.kind.value, resource_id=actor.id
    )
    if actor.kind is ActorKind.API_CLIENT:
        client = session.get(ApiClient, actor.id)
        assert client is not None
        return Me(
            kind="api_client",
            id=client.id,
            name=client.name,
            agency=ref,
            scopes=sorted(actor.scopes),
            permissions=permissions,
        )
    user = _own_user(session, actor)
    return Me(
        kind="user",
        id=user.id,
        name=user.full_name,
        email=user.email,
        agency=ref,
        roles=list(user.roles),
        permissions=permissions,
        mfa_enabled=user.mfa_enabled,
        mfa_required=bool(set(settings.mfa_required_roles).intersection(user.roles)),
    )


def change_password(
    session: Session, actor: Actor, security: Security, settings: Settings, data: PasswordChange
) -> None:
    """Change one's own password; every other session of the account ends."""
    user = _own_user(session, actor)
    if _must_enrol(user, settings):
        # An enrolment-only session exists to enrol a second factor, and nothing else.
        raise Forbidden("Enrol a second factor first (POST /api/v1/me/mfa/totp)")
    if not security.verify_secret(data.current_password, user.password_hash):
        raise Invalid("The current password is not correct")
    check_password_policy(data.new_password, user.email, settings.password_min_length)
    user.password_hash = security.hash_secret(data.new_password)
    user.password_changed_at = utcnow()
    user.auth_epoch += 1
    user.version += 1
    revoke_user_tokens(session, user.id)
    audit.record(
        session,
        actor,
        AuditAction.PASSWORD_CHANGE,
        resource_type="user",
        resource_id=user.id,
        changes={"password": "changed"},
    )


def start_totp(session: Session, actor: Actor, security: Security) -> TotpEnrolment:
    """Generate a TOTP secret to add to an authenticator app; confirm it with a code."""
    user = _own_user(session, actor)
    if user.totp_secret_enc is not None:
        raise Invalid("A second factor is already enrolled; an admin can reset it")
    secret = security.new_totp_secret()
    user.totp_pending_enc = security.encrypt_totp(secret)
    audit.record(
        session, actor, AuditAction.MFA_ENROL_START, resource_type="user", resource_id=user.id
    )
    return TotpEnrolment(secret=secret, otpauth_uri=security.provisioning_uri(secret, user.email))


def confirm_totp(session: Session, actor: Actor, security: Security, code: str) -> None:
    """Turn the pending secret into the account's second factor, if the code matches it."""
    user = _own_user(session, actor)
    if user.totp_pending_enc is None:
        raise Invalid("Start an enrolment first (POST /api/v1/me/mfa/totp)")
    secret = security.decrypt_totp(user.totp_pending_enc)
    step = security.totp_match(secret, code, None)
    if step is None:
        raise Invalid("The code does not match; check the device clock and try again")
    user.totp_secret_enc = user.totp_pending_enc
    user.totp_pending_enc = None
    user.totp_last_step = step
    # The enrolment-only session ends: sign in again with the new factor.
    user.auth_epoch += 1
    user.version += 1
    revoke_user_tokens(session, user.id)
    audit.record(
        session, actor, AuditAction.MFA_ENROL_CONFIRM, resource_type="user", resource_id=user.id
    )
