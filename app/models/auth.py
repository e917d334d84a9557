"""Request and response shapes of the OAuth2 token endpoint and the caller's own account."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.permissions import Permission


class GrantType(StrEnum):
    PASSWORD = "password"
    CLIENT_CREDENTIALS = "client_credentials"
    REFRESH_TOKEN = "refresh_token"


Short = Annotated[str, StringConstraints(max_length=256)]
TokenText = Annotated[str, StringConstraints(max_length=2048)]


class TokenForm(BaseModel):
    """RFC 6749 token request, form-encoded."""

    model_config = ConfigDict(extra="forbid")

    grant_type: GrantType
    username: Short | None = None
    password: Short | None = None
    otp: Annotated[str, StringConstraints(max_length=10)] | None = None
    scope: Short | None = None
    client_id: Short | None = None
    client_secret: Short | None = None
    refresh_token: TokenText | None = None


class RevokeForm(BaseModel):
    """RFC 7009 revocation request, form-encoded."""

    model_config = ConfigDict(extra="forbid")

    token: TokenText
    token_type_hint: Literal["refresh_token", "access_token"] | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str | None = None
    scope: str = ""


class AgencyRef(BaseModel):
    id: uuid.UUID
    name: str


class Me(BaseModel):
    kind: Literal["user", "api_client"]
    id: uuid.UUID
    name: str
    email: str | None = None
    agency: AgencyRef
    roles: list[str] = []
    scopes: list[str] = []
    permissions: list[Permission]
    mfa_enabled: bool = False
    mfa_required: bool = False
    panel_memberships: list[dict[str, str]] = Field(
        default_factory=list, description="Panels the caller sits on, with their panel role"
    )


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32 secret, for authenticator apps without QR support")
    otpauth_uri: str


class TotpConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]
