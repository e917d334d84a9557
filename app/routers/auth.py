"""/api/v1/auth: the OAuth2 token and revocation endpoints (RFC 6749, RFC 7009)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Form, Request, Response

from app.deps import PublicUnit
from app.errors import OAuthError
from app.models.auth import GrantType, RevokeForm, TokenForm, TokenResponse
from app.openapi import problems
from app.routing import IndexedRouter
from app.services import auth

router = IndexedRouter(prefix="/api/v1/auth", tags=["auth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client_credentials(request: Request, form: TokenForm) -> tuple[str, str]:
    """Client authentication by HTTP Basic (preferred) or by form fields."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials", status=401) from None
        client_id, sep, secret = decoded.partition(":")
        if sep:
            return unquote_plus(client_id), unquote_plus(secret)
    if form.client_id and form.client_secret:
        return form.client_id, form.client_secret
    raise OAuthError("invalid_client", "Client authentication is required", status=401)


@router.post(
    "/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=problems(400, 401, 413),
)
async def issue_token(
    uow: PublicUnit,
    request: Request,
    response: Response,
    form: Annotated[TokenForm, Form()],
) -> TokenResponse:
    """Exchange credentials for tokens: password (+ otp), client_credentials, refresh_token."""
    response.headers.update(NO_STORE)
    if form.grant_type is GrantType.PASSWORD:
        if not form.username or not form.password:
            raise OAuthError("invalid_request", "username and password are required")
        return await uow(
            auth.password_grant,
            uow.security,
            uow.settings,
            form.username,
            form.password,
            form.otp,
        )
    if form.grant_type is GrantType.CLIENT_CREDENTIALS:
        client_id, secret = _client_credentials(request, form)
        return await uow(
            auth.client_credentials_grant,
            uow.security,
            uow.settings,
            client_id,
            secret,
            form.scope,
        )
    if not form.refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required")
    return await uow(auth.refresh_grant, uow.security, uow.settings, form.refresh_token)


@router.post("/revoke", status_code=200, response_class=Response, responses=problems(400, 413))
async def revoke_token(uow: PublicUnit, form: Annotated[RevokeForm, Form()]) -> Response:
    """Revoke a refresh token and every token rotated from the same login (logout)."""
    await uow(auth.revoke, uow.security, form.token)
    return Response(status_code=200, headers=NO_STORE)
