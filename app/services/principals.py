"""Turn a verified access token into an Actor, checking the principal is still allowed in.

Runs at the start of every authenticated unit of work, in its transaction, so deactivating a
user, a client or their agency stops their tokens on the very next request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

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
    row: Any = session.execute(
        select(
            col(User.agency_id),
            col(User.roles),
            col(User.is_active),
            col(User.auth_epoch),
            col(User.totp_secret_enc),
            col(Agency.is_active).label("agency_active"),
        )
        .join(Agency, col(Agency.id) == col(User.agency_id))
        .where(col(User.id) == claims.subject_id)
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
    row: Any = session.execute(
        select(
            col(ApiClient.agency_id),
            col(ApiClient.scopes),
            col(ApiClient.is_active),
            col(ApiClient.auth_epoch),
            col(Agency.is_active).label("agency_active"),
        )
        .join(Agency, col(Agency.id) == col(ApiClient.agency_id))
        .where(col(ApiClient.id) == claims.subject_id)
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
