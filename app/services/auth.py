"""The OAuth2 grants: password (with lockout and TOTP), client credentials, refresh, revoke."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor, ActorKind
from app.audit import AuditAction, Outcome
from app.config import Settings
from app.errors import OAuthError
from app.models.agency import Agency
from app.models.api_client import ApiClient
from app.models.auth import TokenResponse
from app.models.base import utcnow
from app.models.refresh_token import RefreshToken
from app.models.user import User
from app.permissions import MFA_ENROLMENT_SCOPE
from app.security import Security, TokenInvalid

BAD_CREDENTIALS = "The username, password or one-time code is not valid"


def _refuse(
    session: Session,
    actor: Actor,
    action: AuditAction,
    reason: str,
    *,
    error: str = "invalid_grant",
    status: int = 400,
    message: str = BAD_CREDENTIALS,
) -> OAuthError:
    audit.record(session, actor, action, outcome=Outcome.FAILURE, detail={"reason": reason})
    return OAuthError(error, message, status=status)


def _agency_active(session: Session, agency_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(col(Agency.is_active)).where(col(Agency.id) == agency_id)))


def password_grant(
    session: Session,
    actor: Actor,
    security: Security,
    settings: Settings,
    username: str,
    password: str,
    otp: str | None,
) -> TokenResponse:
    """Log a person in. Every refusal looks the same whether or not the account exists."""
    user = session.scalars(
        select(User).where(col(User.email) == username.strip().lower()).with_for_update()
    ).first()
    password_ok = security.verify_secret(password, user.password_hash if user else None)
    if user is None:
        raise _refuse(session, actor, AuditAction.AUTH_LOGIN, "unknown_user")
    who = actor.identified(kind=ActorKind.USER, id=user.id, agency_id=user.agency_id)
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        raise _refuse(session, who, AuditAction.AUTH_LOGIN, "locked")
    if not password_ok:
        raise _count_failure(session, who, user, settings, "bad_password")
    if not user.is_active or not _agency_active(session, user.agency_id):
        raise _refuse(session, who, AuditAction.AUTH_LOGIN, "inactive")
    if user.totp_secret_enc is not None:
        if not otp:
            raise _refuse(
                session,
                who,
                AuditAction.AUTH_LOGIN,
                "otp_required",
                message="A one-time code from your authenticator app is required (otp)",
            )
        try:
            secret = security.decrypt_totp(user.totp_secret_enc)
        except TokenInvalid:
            raise _refuse(session, who, AuditAction.AUTH_LOGIN, "otp_undecryptable") from None
        step = security.totp_match(secret, otp, user.totp_last_step)
        if step is None:
            raise _count_failure(session, who, user, settings, "bad_otp")
        user.totp_last_step = step
    must_enrol = user.totp_secret_enc is None and bool(
        set(settings.mfa_required_roles).intersection(user.roles)
    )
    scope = MFA_ENROLMENT_SCOPE if must_enrol else ""
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    response = _issue_user_tokens(session, security, settings, user, scope, uuid.uuid4())
    audit.record(
        session,
        who,
        AuditAction.AUTH_LOGIN,
        resource_type="user",
        resource_id=user.id,
        detail={"mfa": user.totp_secret_enc is not None, "scope": scope},
    )
    return response


def _count_failure(
    session: Session, who: Actor, user: User, settings: Settings, reason: str
) -> OAuthError:
    user.failed_login_count += 1
    if user.failed_login_count >= settings.login_max_failures:
        user.failed_login_count = 0
        user.locked_until = utcnow() + timedelta(seconds=settings.lockout_seconds)
        audit.record(
            session,
            who,
            AuditAction.AUTH_LOCKOUT,
            outcome=Outcome.FAILURE,
            resource_type="user",
            resource_id=user.id,
            detail={"locked_until": user.locked_until.isoformat()},
        )
    return _refuse(session, who, AuditAction.AUTH_LOGIN, reason)


def _issue_user_tokens(
    session: Session,
    security: Security,
    settings: Settings,
    user: User,
    scope: str,
    family_id: uuid.UUID,
) -> TokenResponse:
    refresh = security.new_opaque_token()
    session.add(
        RefreshToken(
            token_hash=security.digest(refresh),
            family_id=family_id,
            user_id=user.id,
            scope=scope,
            expires_at=security.refresh_expiry(),
        )
    )
    session.flush()
    return TokenResponse(
        access_token=security.create_access_token("user", user.id, scope, user.auth_epoch),
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh,
        scope=scope,
    )


def client_credentials_grant(
    session: Session,
    actor: Actor,
    security: Security,
    settings: Settings,
    client_id: str,
    client_secret: str,
    scope: str | None,
) -> TokenResponse:
    """Issue a partner system an access token for (a subset of) its granted scopes."""
    try:
        client: ApiClient | None = session.get(ApiClient, uuid.UUID(client_id))
    except ValueError:
        client = None
    secret_ok = security.verify_secret(client_secret, client.secret_hash if client else None)
    if client is None or not secret_ok:
        who = actor
        if client is not None:
            who = actor.identified(
                kind=ActorKind.API_CLIENT, id=client.id, agency_id=client.agency_id
            )
        raise _refuse(
            session,
            who,
            AuditAction.AUTH_CLIENT_TOKEN,
            "bad_client_credentials",
            error="invalid_client",
            status=401,
            message="Client authentication failed",
        )
    who = actor.identified(kind=ActorKind.API_CLIENT, id=client.id, agency_id=client.agency_id)
    if not client.is_active or not _agency_active(session, client.agency_id):
        raise _refuse(
            session,
            who,
            AuditAction.AUTH_CLIENT_TOKEN,
            "inactive",
            error="invalid_client",
            status=401,
            message="Client authentication failed",
        )
    requested = set(scope.split()) if scope else set(client.scopes)
    if not requested.issubset(client.scopes):
        raise _refuse(
            session,
            who,
            AuditAction.AUTH_CLIENT_TOKEN,
            "scope_not_granted",
            error="invalid_scope",
            message="The requested scope exceeds what this client is granted",
        )
    client.last_used_at = utcnow()
    granted = " ".join(sorted(requested))
    audit.record(
        session,
        who,
        AuditAction.AUTH_CLIENT_TOKEN,
        resource_type="api_client",
        resource_id=client.id,
        detail={"scope": granted},
    )
    return TokenResponse(
        access_token=security.create_access_token(
            "api_client", client.id, granted, client.auth_epoch
        ),
        expires_in=settings.access_token_ttl_seconds,
        scope=granted,
    )


def refresh_grant(
    session: Session, actor: Actor, security: Security, settings: Settings, token: str
) -> TokenResponse:
    """Rotate a refresh token. Presenting one already used revokes its whole family."""
    row = session.scalars(
        select(RefreshToken)
        .where(col(RefreshToken.token_hash) == security.digest(token))
        .with_for_update()
    ).first()
    if row is None:
        raise _refuse(
            session,
            actor,
            AuditAction.AUTH_REFRESH,
            "unknown_token",
            message="The refresh token is not valid",
        )
    user = session.get(User, row.user_id)
    assert user is not None  # foreign key
    who = actor.identified(kind=ActorKind.USER, id=user.id, agency_id=user.agency_id)
    now = utcnow()
    if row.used_at is not None and row.revoked_at is None:
        _revoke_family(session, row.family_id)
        raise _refuse(
            session,
            who,
            AuditAction.AUTH_REFRESH_REUSE,
            "reused",
            message="The refresh token is not valid",
        )
    if row.revoked_at is not None or row.used_at is not None or row.expires_at <= now:
        raise _refuse(
            session,
            who,
            AuditAction.AUTH_REFRESH,
            "revoked_or_expired",
            message="The refresh token is not valid",
        )
    if not user.is_active or not _agency_active(session, user.agency_id):
        _revoke_family(session, row.family_id)
        raise _refuse(
            session,
            who,
            AuditAction.AUTH_REFRESH,
            "inactive",
            message="The refresh token is not valid",
        )
    row.used_at = now
    response = _issue_user_tokens(session, security, settings, user, row.scope, row.family_id)
    audit.record(session, who, AuditAction.AUTH_REFRESH, resource_type="user", resource_id=user.id)
    return response


def _revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_user_tokens(session: Session, user_id: uuid.UUID) -> None:
    """Revoke every refresh token a user holds (deactivation, password reset)."""
    session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def revoke(session: Session, actor: Actor, security: Security, token: str) -> None:
    """RFC 7009: revoke the refresh token's family; unknown tokens are not an error."""
    row = session.scalars(
        select(RefreshToken).where(col(RefreshToken.token_hash) == security.digest(token))
    ).first()
    if row is None:
        audit.record(session, actor, AuditAction.AUTH_REVOKE, outcome=Outcome.NOT_FOUND)
        return
    user = session.get(User, row.user_id)
    who = actor
    if user is not None:
        who = actor.identified(kind=ActorKind.USER, id=user.id, agency_id=user.agency_id)
    _revoke_family(session, row.family_id)
    audit.record(
        session, who, AuditAction.AUTH_REVOKE, resource_type="user", resource_id=row.user_id
    )
