"""The baseline: the least a FastAPI service doing the same JWT check can do per request.

An async route behind an ``async def`` dependency that decodes the bearer token with
python-jose, HS256 pinned, issuer and expiry required (as app.security does), and returns a
fixed body about the size of an agency. Served exactly like the service (one uvicorn worker,
uvloop, httptools); the benchmark reports the service's figures as ratios to these.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from jose import JWTError, jwt

ALGORITHM = "HS256"
SECRET_KEY = os.environ.get("PANELS_SECRET_KEY", "")
ISSUER = os.environ.get("PANELS_TOKEN_ISSUER", "safeguarding-panels")

BODY: dict[str, Any] = {
    "id": "0b5f3c4e-8a7d-4c51-9b2e-6f0d1a2b3c4d",
    "name": "St Giles Trust",
    "short_name": "St Giles",
    "kind": "voluntary",
    "contact_email": "bench@example.org",
    "is_active": True,
    "version": 1,
    "created_at": "2026-01-01T00:00:00.000000Z",
    "updated_at": None,
}

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


async def claims(request: Request) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "A valid bearer token is required")
    try:
        if jwt.get_unverified_header(token).get("alg") != ALGORITHM:
            raise HTTPException(401, "A valid bearer token is required")
        decoded: dict[str, Any] = jwt.decode(
            token.strip(),
            SECRET_KEY,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
    except JWTError:
        raise HTTPException(401, "A valid bearer token is required") from None
    return decoded


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.api_route("/api/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def fixed(request: Request, _claims: Annotated[dict[str, Any], Depends(claims)]) -> Any:
    if request.method != "GET":
        await request.body()
    return BODY
