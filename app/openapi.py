"""What the routers share: problem responses, common headers, the 201 answer of a create."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, status
from fastapi.responses import JSONResponse

from app.errors import Problem, ValidationProblem
from app.etags import etag

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

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retries with the same key and body return the first response",
    ),
]


def created(payload: dict[str, Any], location: str, replayed: bool) -> JSONResponse:
    """201 with the stored (or first) representation; says so when it is a replay."""
    headers = {"Location": location}
    if "version" in payload:
        headers["ETag"] = etag(int(payload["version"]))
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(payload, status_code=status.HTTP_201_CREATED, headers=headers)
