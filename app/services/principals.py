"""Turn a verified access token into an Actor, checking the principal is still allowed in.

Runs at the start of every authenticated unit of work, in its transaction, so deactivating a
user, a client or their agency stops their tokens on the very next request.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.actor import Actor, ActorKind, RequestMeta
from app.errors import Unauthorized
from app.permissions import (
    MFA_ENROLMENT_PERMISSIONS,
    MFA_ENROLMENT_SCOPE,
    client_permissions,
    user_permissions,
)
from app.rawsql import Raw
from app.security import AccessClaims


def load_actor(
    session: Session, claims: AccessClaims, meta: RequestMeta, mfa_roles: frozenset[str]
) -> Actor:
    """The actor behind ``claims``; Unauthorized if the principal is gone or disabled."""
    if claims.subject_kind == ActorKind.USER:
        return _load_user(session, claims, meta, mfa_roles)
    return _load_client(session, claims, meta)


_USER_SQL = (
    "SELECT u.agency_id, u.roles, u.is_active, u.auth_epoch, u.totp_secret_enc IS NULL,"
    " a.is_active FROM user_account u JOIN agency a ON a.id = u.agency_id WHERE u.id = ?"
)
_CLIENT_SQL = (
    "SELECT c.agency_id, c.scopes, c.is_active, c.auth_epoch, a.is_active"
    " FROM api_client c JOIN agency a ON a.id = c.agency_id WHERE c.id = ?"
)


def _load_user(
    session: Session, claims: AccessClaims, meta: RequestMeta, mfa_roles: frozenset[str]
) -> Actor:
    raw = Raw(session)
    row = raw.one(_USER_SQL, (raw.id(claims.subject_id),))
    if row is None:
        raise Unauthorized("The account behind this token is not active")
    agency_id, roles_json, active, epoch, no_factor, agency_active = row
    if not active or not agency_active:
        raise Unauthorized("The account behind this token is not active")
    if claims.epoch != epoch:
        raise Unauthorized("The token was issued before the password or second factor changed")
    roles = list(raw.to_json(roles_json))
    must_enrol = bool(no_factor) and bool(mfa_roles.intersection(roles))
    if claims.scope == MFA_ENROLMENT_SCOPE or must_enrol:
        permissions = MFA_ENROLMENT_PERMISSIONS
    else:
        permissions = user_permissions(roles)
    return Actor(
        kind=ActorKind.USER,
        meta=meta,
        id=claims.subject_id,
        agency_id=raw.to_uuid(agency_id),
        roles=frozenset(roles),
        permissions=permissions,
    )


def _load_client(session: Session, claims: AccessClaims, meta: RequestMeta) -> Actor:
    raw = Raw(session)
    row = raw.one(_CLIENT_SQL, (raw.id(claims.subject_id),))
    if row is None:
        raise Unauthorized("The API client behind this token is not active")
    agency_id, scopes_json, active, epoch, agency_active = row
    if not active or not agency_active:
        raise Unauthorized("The API client behind this token is not active")
    if claims.epoch != epoch:
        raise Unauthorized("The token was issued before the client secret was rotated")
    # The token's scope can only narrow what the client is granted now, never widen it.
    granted = set(raw.to_json(scopes_json)).intersection(claims.scope.split())
    return Actor(
        kind=ActorKind.API_CLIENT,
        meta=meta,
        id=claims.subject_id,
        agency_id=raw.to_uuid(agency_id),
        scopes=frozenset(granted),
        permissions=client_permissions(sorted(granted)),
    )
