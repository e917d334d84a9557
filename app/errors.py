"""Domain errors, and the handlers that turn every error into RFC 9457 problem+json."""

from __future__ import annotations

import sqlite3
import uuid
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.logging import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger("app.errors")


class DomainError(Exception):
    """An expected refusal: raised by services, turned into problem+json and audited."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    outcome = "invalid"
    keep_changes = False

    def __init__(
        self,
        detail: str,
        *,
        resource_type: str | None = None,
        resource_id: uuid.UUID | str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        case_id: uuid.UUID | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.resource_type = resource_type
        self.resource_id = resource_id
        # The case a refusal concerns when the resource is something of it (an action), so
        # the audit event of the refusal can be found by case.
        self.case_id = case_id
        self.headers = headers or {}
        self.extra = extra or {}


class Invalid(DomainError):
    status, slug, title, outcome = 422, "invalid", "Invalid request", "invalid"

    def __init__(self, detail: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        if field is not None:
            self.extra = {
                **self.extra,
                "errors": [{"field": field, "message": detail, "type": self.slug}],
            }


class Unauthorized(DomainError):
    status, slug, title, outcome = 401, "unauthorized", "Authentication required", "failure"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        challenge = 'Bearer realm="api"' + (f', error="{error}"' if error else "")
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(DomainError):
    status, slug, title, outcome = 403, "forbidden", "Not permitted", "denied"


class NotFound(DomainError):
    status, slug, title, outcome = 404, "not-found", "Not found", "not_found"

    def __init__(self, resource_type: str, resource_id: uuid.UUID | str | None) -> None:
        super().__init__(
            f"No {resource_type.replace('_', ' ')} with that id is visible to you",
            resource_type=resource_type,
            resource_id=resource_id,
        )


class Conflict(DomainError):
    status, slug, title, outcome = 409, "conflict", "Conflict", "conflict"


class PreconditionFailed(DomainError):
    status, slug, title, outcome = 412, "precondition-failed", "Precondition failed", "conflict"


class OAuthError(DomainError):
    """RFC 6749 section 5.2 error, carried inside a problem document.

    The service has already recorded the failure (and, for a password, counted it toward the
    lockout), so those writes are committed rather than rolled back.
    """

    slug, title, outcome = "oauth", "Token request refused", "failure"
    keep_changes = True

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="api"'} if status == 401 else None
        super().__init__(
            description, headers=headers, extra={"error": error, "error_description": description}
        )
        self.status = status
        self.error = error


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ValidationProblem(Problem):
    errors: list[FieldError]


# SQLSTATE classes and codes of a database that could not do the work just now: a deadlock
# or serialization failure (40), a lock or statement timeout (55P03, 57014), the server
# going away or refusing connections (08, 57P0x), or out of connections (53).
_TRANSIENT_SQLSTATES = ("40", "55P03", "57014", "08", "57P0", "53")
_SQLITE_BUSY = ("database is locked", "database table is locked")


def transient(exc: BaseException) -> bool:
    """Whether this database error means "busy or unavailable, try again", not a fault."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, psycopg.Error):
        return (orig.sqlstate or "").startswith(_TRANSIENT_SQLSTATES)
    if isinstance(orig, sqlite3.OperationalError):
        return str(orig).startswith(_SQLITE_BUSY)
    return False


def problem_response(
    request: Request,
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:safeguarding-panels:problem:{slug}" if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request.scope.get("state", {}).get("request_id"),
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    # Never echo pydantic's "input": it may hold a password or a victim's address.
    return [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "message": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors()
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app answers on this request's path."""
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        extra = exc.extra
        if exc.status == 422:
            # Every 422 is documented as a ValidationProblem, whose `errors` list is required.
            extra = {"errors": [], **extra}
        return problem_response(
            request,
            exc.status,
            slug=exc.slug,
            title=exc.title,
            detail=exc.detail,
            headers=exc.headers,
            extra=extra,
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # A value that passed validation but that the database cannot store (a NUL character
        # in text on PostgreSQL, a number out of range): bad input, so a 422, not a 500.
        log.warning("unstorable_value", error_type=type(exc.orig).__name__, path=request.url.path)
        return problem_response(
            request,
            422,
            slug="invalid",
            title="Invalid request",
            detail="The request contains a value that cannot be stored",
            extra={"errors": []},
        )

    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        if not transient(exc):
            return await _unexpected(request, exc)
        # The unit of work rolled back, or lost its connection: a creation retried with the
        # same Idempotency-Key is never made twice.
        log.warning("database_busy", error_type=type(exc).__name__, path=request.url.path)
        return problem_response(
            request,
            503,
            slug="busy",
            title="Service busy",
            detail="The database was busy or unavailable and the request did not complete; "
            "send it again (a creation with the same Idempotency-Key)",
            headers={"Retry-After": "1"},
        )

    for operational in (
        SQLAlchemyOperationalError,
        psycopg.OperationalError,
        sqlite3.OperationalError,
    ):
        app.add_exception_handler(operational, _database_busy)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        fields = ", ".join(e["field"] for e in errors[:5])
        return problem_response(
            request,
            422,
            slug="validation",
            title="Validation failed",
            detail=f"The request has invalid or unknown fields: {fields}",
            extra={"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # The router names only the first route that matched the path (GET of a GET + POST
            # collection); RFC 9110 wants every method the resource supports.
            headers["Allow"] = ", ".join(_allowed_methods(request)) or headers.get("Allow", "")
        return problem_response(request, exc.status_code, detail=detail, headers=headers)

    app.add_exception_handler(Exception, _unexpected)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error_type=type(exc).__name__, path=request.url.path)
    return problem_response(
        request, 500, detail="An unexpected error occurred; it has been logged."
    )
