"""Turn a verified access token into an Actor, checking the principal is still allowed in.

Runs at the start of every authenticated unit of work, in its transaction, so deactivating a
user, a client or their agency stops their tokens on the very next request.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.actor import Actor, ActorKind, RequestMeta
from app.errors import Unauthorized
from app.models.agency import Agency
from app.models.api_client import ApiClient
from app.models.user import User
from app.permissions import (
    MFA_ENROLMENT_PERMISSIONS,
    MFA_ENROLMENT_SCOPE,
    client_permissions,
    user_permissions,
)
from app.security import AccessClaims


def load_actor(
    session: Session, claims: AccessClaims, meta: RequestMeta, mfa_roles: frozenset[str]
) -> Actor:
    """The actor behind ``claims``; Unauthorized if the principal is gone or disabled."""
    if claims.subject_kind == ActorKind.USER:
        return _load_user(session, claims, meta, mfa_roles)
    return _load_client(session, claims, meta)


def _load_user(
    session: Session, claims: AccessClaims, meta: RequestMeta, mfa_roles: frozenset[str]
) -> Actor:
    row = session.execute(
        select(
            User.agency_id,
            User.roles,
            User.is_active,
            User.auth_epoch,
            User.totp_secret_enc,
            Agency.is_active.label("agency_active"),  # type: ignore[attr-defined]
        )
        .join(Agency, Agency.id == User.agency_id)  # type: ignore[arg-type]
        .where(User.id == claims.subject_id)  # type: ignore[arg-type]
    ).first()
    if row is None or not row.is_active or not row.agency_active:
        raise Unauthorized("The account behind this token is not active")
    if claims.epoch != row.auth_epoch:
        raise Unauthorized("The token was issued before the password or second factor changed")
    roles = list(row.roles)
    must_enrol = row.totp_secret_enc is None and bool(mfa_roles.intersection(roles))
    if claims.scope == MFA_ENROLMENT_SCOPE or must_enrol:
        permissions = MFA_ENROLMENT_PERMISSIONS
    else:
        permissions = user_permissions(roles)
    return Actor(
        kind=ActorKind.USER,
        meta=meta,
        id=claims.subject_id,
        agency_id=row.agency_id,
        roles=frozenset(roles),
        permissions=permissions,
    )


def _load_client(session: Session, claims: AccessClaims, meta: RequestMeta) -> Actor:
    row = session.execute(
        select(
            ApiClient.agency_id,
            ApiClient.scopes,
            ApiClient.is_active,
            ApiClient.auth_epoch,
            Agency.is_active.label("agency_active"),  # type: ignore[attr-defined]
        )
        .join(Agency, Agency.id == ApiClient.agency_id)  # type: ignore[arg-type]
        .where(ApiClient.id == claims.subject_id)  # type: ignore[arg-type]
    ).first()
    if row is None or not row.is_active or not row.agency_active:
        raise Unauthorized("The API client behind this token is not active")
    if claims.epoch != row.auth_epoch:
        raise Unauthorized("The token was issued before the client secret was rotated")
    # The token's scope can only narrow what the client is granted now, never widen it.
    granted = set(row.scopes).intersection(claims.scope.split())
    return Actor(
        kind=ActorKind.API_CLIENT,
        meta=meta,
        id=claims.subject_id,
        agency_id=row.agency_id,
        scopes=frozenset(granted),
        permissions=client_permissions(sorted(granted)),
    )
