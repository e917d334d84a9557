"""What the routers share: problem responses, common headers, the 201 answer of a create."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import StringConstraints, TypeAdapter, ValidationError

from app.deps import BEARER, oauth2_scheme
from app.errors import Problem, ValidationProblem
from app.etags import etag
from app.json_body import JSONBody

_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, invalid or expired bearer token",
    403: "Authenticated, but not permitted",
    404: "No such resource, or not visible to the caller",
    409: "Conflicts with the current state",
    412: "If-Match names a version that is no longer current",
    413: "Request body too large",
    422: "Validation failed",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the problem+json errors a route can answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 422}):
        model = ValidationProblem if code == 422 else Problem
        out[code] = {
            "model": model,
            "description": _DESCRIPTIONS[code],
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                }
            },
        }
    return out


AUTHED = (401, 403)
READ_ONE = (*AUTHED, 404)
WRITE = (*AUTHED, 409, 413)
UPDATE = (*AUTHED, 404, 409, 412, 413)

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The ETag you last read; the update is refused with 412 if it is stale",
    ),
]

# A create's Idempotency-Key, read by the route (``idempotency_key``) rather than declared as a
# FastAPI header parameter: FastAPI looks a declared parameter's model, aliases and validator
# up on every request, a twentieth of a referral's CPU for this one header (docs/performance.md,
# sixteenth round). The route documents it with ``openapi_extra=IDEMPOTENT``, as FastAPI did.
_IDEMPOTENCY_KEY = "Idempotency-Key"
_IDEMPOTENCY_DESCRIPTION = "Retries with the same key and body return the first response"
_IDEMPOTENCY_BOUNDS = TypeAdapter(Annotated[str, StringConstraints(min_length=1, max_length=200)])
IDEMPOTENT: dict[str, Any] = {
    "parameters": [
        {
            "name": _IDEMPOTENCY_KEY,
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "null"}],
                "description": _IDEMPOTENCY_DESCRIPTION,
                "title": _IDEMPOTENCY_KEY,
            },
            "description": _IDEMPOTENCY_DESCRIPTION,
        }
    ]
}


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (1 to 200 characters), or None; out of bounds, FastAPI's
    own 422 (``loc`` ``["header", "Idempotency-Key"]``), as for a declared header."""
    value = request.headers.get(_IDEMPOTENCY_KEY)
    if value is None:
        return None
    try:
        return _IDEMPOTENCY_BOUNDS.validate_python(value)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("header", _IDEMPOTENCY_KEY)} for err in exc.errors(include_url=False)]
        ) from None


def created(payload: dict[str, Any], location: str, replayed: bool) -> JSONBody:
    """201 with the stored (or first) representation; says so when it is a replay."""
    headers = {"Location": location}
    if "version" in payload:
        headers["ETag"] = etag(int(payload["version"]))
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBody(payload, status_code=status.HTTP_201_CREATED, headers=headers)


def document_bearer_security(app: FastAPI) -> None:
    """Declare the OAuth2 scheme on every operation whose route reads the bearer token.

    The routes' dependencies read the ``Authorization`` header themselves (``app.deps``)
    rather than through a sub-dependency on the scheme, which FastAPI would solve on every
    request for the document's sake alone; the document says what that sub-dependency said.
    """
    generate = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        spec = generate()
        if not documented or documented[0] is not spec:
            _declare(spec, app)
            documented[:] = [spec]
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(spec: dict[str, Any], app: FastAPI) -> None:
    name = oauth2_scheme.scheme_name
    schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[name] = jsonable_encoder(oauth2_scheme.model, by_alias=True, exclude_none=True)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not _reads_bearer(route.dependant):
            continue
        for method in route.methods or ():
            operation = spec["paths"].get(context.path_format or route.path_format, {})
            if method.lower() in operation:
                operation[method.lower()].setdefault("security", []).append({name: []})


def _reads_bearer(dependant: Dependant) -> bool:
    return dependant.call in BEARER or any(_reads_bearer(d) for d in dependant.dependencies)
