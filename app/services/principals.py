"""Turn a verified access token into an Actor, checking the principal is still allowed in.

Runs at the start of every authenticated unit of work, in its transaction, so deactivating a
user, a client or their agency stops their tokens on the very next request.

On a database server, a unit may instead start from the actor its token's principal gave a
moment ago (``Principals``) and confirm it before it commits: the principal's row must still
read as it did, or nothing the unit did is kept, its result is dropped and it runs again from
a fresh lookup. Nothing is answered that a fresh lookup would have refused, and the unit sends
one message fewer.

- A read confirms it in the statement that writes its audit event
  (``app.audit.write_deferred``): no row, no event, and the read runs again.
- A write confirms it in the message that carries its ``COMMIT`` (``confirm_sql``): when the
  row no longer reads as it did, the statement fails, the server rolls the whole transaction
  back, ``COMMIT`` included, and the write runs again. It is checked after the unit's own
  changes, so a write that changes its own principal (a new password, a second factor) is
  run again from a fresh lookup too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

# Where a read's unit keeps the proof its actor still holds (``app.audit.write_deferred``).
PROOF = "panels.principal_proof"


class PrincipalUnconfirmed(Exception):
    """A unit that started from a remembered actor could not confirm it: run it again from a
    fresh lookup of the principal."""


# What a write's confirmation fails with: PostgreSQL checks the cast only when the row is
# gone, and no other statement of the service casts this text.
_UNCONFIRMED = "principal-unconfirmed"


def confirm_sql(proof: Proof) -> str:
    """A statement that fails, aborting the transaction it runs in, unless ``proof`` finds
    its row (for a write, sent with the unit's ``COMMIT``)."""
    return (
        f"SELECT CAST(CASE WHEN EXISTS ({proof.sql}) THEN '1' ELSE '{_UNCONFIRMED}' END AS integer)"
    )


def unconfirmed(exc: BaseException) -> bool:
    """Whether ``exc`` (the driver's error, or SQLAlchemy's around it) is a write's
    confirmation failing (``confirm_sql``): an invalid integer, this text."""
    error = getattr(exc, "orig", None) or exc
    return getattr(error, "sqlstate", None) == "22P02" and f'"{_UNCONFIRMED}"' in str(error)


@dataclass(frozen=True, slots=True)
class Proof:
    """A query that returns a row only while the principal's row reads as it did when the
    actor was made from it."""

    sql: str
    params: tuple[Any, ...]


_USER_SQL = (
    "SELECT u.agency_id, CAST(u.roles AS TEXT), u.is_active, u.auth_epoch,"
    " u.totp_secret_enc IS NULL, a.is_active"
    " FROM user_account u JOIN agency a ON a.id = u.agency_id WHERE u.id = ?"
)
_USER_PROOF = (
    "SELECT 1 FROM user_account u JOIN agency a ON a.id = u.agency_id"
    " WHERE u.id = ? AND u.agency_id = ? AND CAST(u.roles AS TEXT) = ? AND u.is_active"
    " AND a.is_active AND u.auth_epoch = ? AND (u.totp_secret_enc IS NULL) = ?"
)
_CLIENT_SQL = (
    "SELECT c.agency_id, CAST(c.scopes AS TEXT), c.is_active, c.auth_epoch, a.is_active"
    " FROM api_client c JOIN agency a ON a.id = c.agency_id WHERE c.id = ?"
)
_CLIENT_PROOF = (
    "SELECT 1 FROM api_client c JOIN agency a ON a.id = c.agency_id"
    " WHERE c.id = ? AND c.agency_id = ? AND CAST(c.scopes AS TEXT) = ? AND c.is_active"
    " AND a.is_active AND c.auth_epoch = ?"
)


def load_actor(
    session: Session, claims: AccessClaims, meta: RequestMeta, mfa_roles: frozenset[str]
) -> tuple[Actor, Proof]:
    """The actor behind ``claims``, and the proof it still holds; Unauthorized if the
    principal is gone or disabled."""
    if claims.subject_kind == ActorKind.USER:
        return _load_user(session, claims, meta, mfa_roles)
    return _load_client(session, claims, meta)


def _load_user(
    session: Session, claims: AccessClaims, meta: RequestMeta, mfa_roles: frozenset[str]
) -> tuple[Actor, Proof]:
    raw = Raw(session)
    subject = raw.id(claims.subject_id)
    row = raw.one(_USER_SQL, (subject,))
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
    actor = Actor(
        kind=ActorKind.USER,
        meta=meta,
        id=claims.subject_id,
        agency_id=raw.to_uuid(agency_id),
        roles=frozenset(roles),
        permissions=permissions,
    )
    return actor, Proof(_USER_PROOF, (subject, agency_id, roles_json, epoch, bool(no_factor)))


def _load_client(session: Session, claims: AccessClaims, meta: RequestMeta) -> tuple[Actor, Proof]:
    raw = Raw(session)
    subject = raw.id(claims.subject_id)
    row = raw.one(_CLIENT_SQL, (subject,))
    if row is None:
        raise Unauthorized("The API client behind this token is not active")
    agency_id, scopes_json, active, epoch, agency_active = row
    if not active or not agency_active:
        raise Unauthorized("The API client behind this token is not active")
    if claims.epoch != epoch:
        raise Unauthorized("The token was issued before the client secret was rotated")
    # The token's scope can only narrow what the client is granted now, never widen it.
    granted = set(raw.to_json(scopes_json)).intersection(claims.scope.split())
    actor = Actor(
        kind=ActorKind.API_CLIENT,
        meta=meta,
        id=claims.subject_id,
        agency_id=raw.to_uuid(agency_id),
        scopes=frozenset(granted),
        permissions=client_permissions(sorted(granted)),
    )
    return actor, Proof(_CLIENT_PROOF, (subject, agency_id, scopes_json, epoch))


class Principals:
    """The actors recent tokens' principals gave, with their proofs, by principal, token
    epoch and scope: only ever a starting point, confirmed by the unit that uses one."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._known: dict[tuple[Any, ...], tuple[Actor, Proof]] = {}

    @staticmethod
    def _key(claims: AccessClaims) -> tuple[Any, ...]:
        return (claims.subject_kind, claims.subject_id, claims.epoch, claims.scope)

    def get(self, claims: AccessClaims) -> tuple[Actor, Proof] | None:
        return self._known.get(self._key(claims))

    def put(self, claims: AccessClaims, actor: Actor, proof: Proof) -> None:
        if len(self._known) >= self._size:
            self._known.clear()  # bounded; the next reads look their principals up again
        self._known[self._key(claims)] = (actor, proof)

    def forget(self, claims: AccessClaims) -> None:
        self._known.pop(self._key(claims), None)
