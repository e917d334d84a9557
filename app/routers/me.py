"""/api/v1/me: the caller's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status

from app.deps import Caller, require
from app.models.auth import Me, TotpConfirm, TotpEnrolment
from app.models.user import PasswordChange
from app.openapi import AUTHED, WRITE, problems
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import account

router = IndexedRouter(prefix="/api/v1/me", tags=["me"])

Reader = Annotated[Caller, Depends(require(Permission.SELF_READ))]
Manager = Annotated[Caller, Depends(require(Permission.SELF_MANAGE))]


@router.get("", response_model=Me, responses=problems(*AUTHED))
async def read_me(caller: Reader) -> Me:
    """Who the token belongs to: user or API client, agency, roles, permissions, panels."""
    return await caller(account.me, caller.settings)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses=problems(*WRITE))
async def change_password(caller: Manager, body: PasswordChange) -> Response:
    """Change your password. Every session of the account ends; sign in again."""
    await caller(account.change_password, caller.security, caller.settings, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/mfa/totp",
    response_model=TotpEnrolment,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE),
)
async def start_totp_enrolment(caller: Manager, response: Response) -> TotpEnrolment:
    """Begin enrolling an authenticator app; confirm with a code to finish."""
    response.headers["Cache-Control"] = "no-store"
    return await caller(account.start_totp, caller.security)


@router.post(
    "/mfa/totp/confirm", status_code=status.HTTP_204_NO_CONTENT, responses=problems(*WRITE)
)
async def confirm_totp_enrolment(caller: Manager, body: TotpConfirm) -> Response:
    """Finish enrolment. The current session ends: sign in again with the one-time code."""
    await caller(account.confirm_totp, caller.security, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
