"""Dependencies as Annotated aliases, and the per-request unit of work.

A protected route declares ``caller: Annotated[Caller, Depends(require(Permission.X))]`` and
does ``return await caller(service_function, *args)``. The caller runs the service in one
transaction after loading the principal and checking the permission; a refusal (401, 403,
404, 409, 412, 422 from a service) rolls back the work and commits an audit event saying so.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Query, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.actor import Actor, RequestMeta
from app.audit import AuditAction, Outcome
from app.config import Settings
from app.db import Database, UnitTransaction
from app.errors import Conflict, DomainError, Forbidden, Unauthorized
from app.permissions import Permission
from app.security import AccessClaims, Security, TokenInvalid
from app.services.principals import PROOF, PrincipalUnconfirmed, load_actor

P = ParamSpec("P")
T = TypeVar("T")
TOKEN_URL = "/api/v1/auth/token"
PURPOSE_HEADER = "x-purpose"

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        password=OAuthFlowPassword(tokenUrl=TOKEN_URL, refreshUrl=TOKEN_URL),
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL),
    ),
    scheme_name="OAuth2",
    description="Users: password grant (add `otp` when a second factor is enrolled). "
    "Partner systems: client credentials.",
    auto_error=False,
)
# The dependencies that read the bearer token themselves (one level of dependency solving
# less on every request than a sub-dependency on ``oauth2_scheme``); ``app.openapi``
# documents the scheme on every route that uses one.
BEARER: set[Callable[..., Any]] = set()


# Plain accessors, and async dependencies around them: FastAPI runs a sync dependency in the
# thread pool, a round trip every request would pay for.
def app_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def app_security(request: Request) -> Security:
    security: Security = request.app.state.security
    return security


async def get_db(request: Request) -> Database:
    return app_db(request)


DatabaseDep = Annotated[Database, Depends(get_db)]


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's full path template (``/api/v1/agencies/{agency_id}``), if any.

    FastAPI 0.16x keeps included routers nested: ``scope["route"].path`` is relative to the
    router, and the full template lives on the effective route context it records.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str):
        return template
    route = scope.get("route")
    return getattr(route, "path", None)


def meta_of(request: Request) -> RequestMeta:
    purpose = request.headers.get(PURPOSE_HEADER)
    return RequestMeta(
        request_id=request.scope.get("state", {}).get("request_id"),
        source_ip=request.client.host if request.client else None,
        purpose=purpose[:200] if purpose else None,
    )


class UnitOfWork:
    """Runs one service call in one transaction, auditing any refusal it ends in."""

    def __init__(self, request: Request, meta: RequestMeta) -> None:
        self.db = app_db(request)
        self.settings = app_settings(request)
        self.security = app_security(request)
        self.meta = meta
        self.route = f"{request.method} {route_template(request.scope) or request.url.path}"
        self.path_params = dict(request.path_params)
        # A read writes only its audit events: they wait for its commit, and on PostgreSQL it
        # runs in autocommit mode (app.audit.write_deferred).
        self.read = request.method in ("GET", "HEAD")

    def refusal_detail(self) -> dict[str, Any]:
        return {"route": self.route}

    def _subject_id(self, err: DomainError, kind: str) -> uuid.UUID | None:
        """The case (or person) a refused request was about, so auditors can find it by id."""
        value = err.resource_id if err.resource_type == kind else None
        if kind == "case":
            value = value or err.case_id
        value = value or self.path_params.get(f"{kind}_id")
        try:
            return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        except ValueError:
            return None

    def _identify(self, session: Session) -> Actor:
        return Actor.anonymous(self.meta)

    def _authorize(self, actor: Actor) -> None:
        return None

    def _execute(self, fn: Callable[..., T], args: tuple[Any, ...], connection: Connection) -> T:
        # The transaction is the connection's (Core); the service's Session joins it only if
        # the service uses the ORM, so a unit that does not pays none of its bookkeeping.
        session = self.db.unit_session(connection, read=self.read)
        actor = Actor.anonymous(self.meta)
        transaction = self.db.begin(connection)
        try:
            try:
                try:
                    actor = self._identify(session)
                    self._authorize(actor)
                    result = fn(session, actor, *args)
                    self._commit(session, connection, transaction)
                    return result
                except IntegrityError as exc:
                    # A unique or foreign-key race lost to another transaction: a conflict,
                    # not a 500.
                    raise Conflict("The change conflicts with data saved meanwhile") from exc
            except DomainError as err:
                if err.keep_changes:
                    self._commit(session, connection, transaction)
                    raise
                session.close()
                # A failed flush has already rolled the unit back through the Session.
                self.db.rollback(connection, transaction)
                audit.discard_deferred(session)
                transaction = self.db.begin(connection)
                audit.record(
                    session,
                    actor,
                    AuditAction.ACCESS_REFUSED,
                    outcome=Outcome(err.outcome),
                    resource_type=err.resource_type,
                    resource_id=err.resource_id,
                    case_id=self._subject_id(err, "case"),
                    person_id=self._subject_id(err, "person"),
                    detail={**self.refusal_detail(), "status": err.status},
                )
                audit.write_deferred(session)
                self.db.commit(connection, transaction)
                raise
        finally:
            _close(session)
            self.db.rollback(connection, transaction)
            self.db.release_held(connection)

    def _commit(
        self, session: Session, connection: Connection, transaction: UnitTransaction
    ) -> None:
        """Flush what the service left in its Session, if it used one, then commit the unit."""
        if session.in_transaction() or session.new or session.dirty or session.deleted:
            session.commit()
        audit.write_deferred(session)
        self.db.commit(connection, transaction)

    async def __call__(self, fn: Callable[Concatenate[Session, Actor, P], T], *args: Any) -> T:
        return await self.db.run_unit(partial(self._execute, fn, args))


class Caller(UnitOfWork):
    """A unit of work on behalf of an authenticated principal holding one permission."""

    def __init__(
        self, request: Request, meta: RequestMeta, claims: AccessClaims, permission: Permission
    ) -> None:
        super().__init__(request, meta)
        self.claims = claims
        self.permission = permission
        self.mfa_roles = frozenset(self.settings.mfa_required_roles)
        # On a database server a unit may start from the actor the principal gave a moment
        # ago, confirmed before it commits (app.services.principals).
        self.principals = self.db.principals
        self.remembered = self.principals is not None

    def refusal_detail(self) -> dict[str, Any]:
        return {"route": self.route, "permission": self.permission.value}

    def _identify(self, session: Session) -> Actor:
        known = self.principals.get(self.claims) if self.remembered and self.principals else None
        if known is not None:
            actor, session.info[PROOF] = known
            return replace(actor, meta=self.meta)
        actor, proof = load_actor(session, self.claims, self.meta, self.mfa_roles)
        if self.principals is not None:
            self.principals.put(self.claims, actor, proof)
        return actor

    async def __call__(self, fn: Callable[Concatenate[Session, Actor, P], T], *args: Any) -> T:
        if not self.remembered:
            return await super().__call__(fn, *args)
        try:
            return await super().__call__(fn, *args)
        except PrincipalUnconfirmed:
            # Nothing of the first run was kept or answered: run it again, from a fresh
            # lookup of the principal.
            self.remembered = False
            if self.principals is not None:
                self.principals.forget(self.claims)
            return await super().__call__(fn, *args)

    def _authorize(self, actor: Actor) -> None:
        if not actor.can(self.permission):
            raise _forbidden(self.permission)


def _close(session: Session) -> None:
    """Close the unit's Session, unless the unit never used it (most reads run on the driver
    alone): closing an unused Session still costs a few percent of a cheap read."""
    if session.in_transaction() or session.identity_map or session.new or session.deleted:
        session.close()


def _forbidden(permission: Permission) -> DomainError:
    return Forbidden(f"This needs the '{permission.value}' permission, which you do not hold")


def _record_rejected_token(session: Session, actor: Actor, reason: str, route: str) -> None:
    audit.record(
        session,
        actor,
        AuditAction.AUTH_TOKEN_REJECTED,
        outcome=Outcome.FAILURE,
        detail={"reason": reason, "route": route},
    )


def require(permission: Permission) -> Callable[..., Any]:
    """Dependency: authenticate the bearer token and bind the permission the route needs."""

    async def dependency(request: Request) -> Caller:
        authorization = request.headers.get("authorization")
        meta = meta_of(request)
        security = app_security(request)
        scheme, _, token = (authorization or "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise TokenInvalid("missing bearer token")
            claims = security.decode_access_token(token.strip())
        except TokenInvalid as exc:
            uow = UnitOfWork(request, meta)
            await uow(_record_rejected_token, str(exc)[:200], uow.route)
            raise Unauthorized(
                "A valid bearer token is required",
                error="invalid_token" if authorization else None,
            ) from None
        return Caller(request, meta, claims, permission)

    dependency.__name__ = f"require_{permission.name.lower()}"
    BEARER.add(dependency)
    return dependency


FeedToken = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="Instead of a bearer token: the link from POST .../calendar-feed, for "
        "calendar clients that cannot send headers",
    ),
]


def require_or_feed(permission: Permission) -> Callable[..., Any]:
    """Like ``require``, but a panel's calendar feed token (``?feed_token=``) may stand in for
    the bearer token: the feed's user is then loaded and checked as for any request."""
    bearer = require(permission)

    async def dependency(
        request: Request,
        panel_id: uuid.UUID,
        feed_token: FeedToken = None,
    ) -> Caller:
        if feed_token is None:
            caller: Caller = await bearer(request)
            return caller
        meta = meta_of(request)
        try:
            claims = app_security(request).decode_feed_token(feed_token, panel_id)
        except TokenInvalid as exc:
            uow = UnitOfWork(request, meta)
            await uow(_record_rejected_token, f"feed: {exc}"[:200], uow.route)
            raise Unauthorized(
                "The calendar feed link is not valid (or no longer): ask for a new one",
                error="invalid_token",
            ) from None
        return Caller(request, meta, claims, permission)

    dependency.__name__ = f"require_{permission.name.lower()}_or_feed"
    BEARER.add(dependency)
    return dependency


async def public_unit(request: Request) -> UnitOfWork:
    return UnitOfWork(request, meta_of(request))


PublicUnit = Annotated[UnitOfWork, Depends(public_unit)]
