"""OpenAPI declarations shared by the routers: problem responses and common headers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header

from app.errors import Problem, ValidationProblem

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
