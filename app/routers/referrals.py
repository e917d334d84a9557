"""/api/v1/referrals: submit, list, read, amend; screening and triage decisions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.actor import Actor
from app.deps import Caller, require
from app.etags import etag
from app.models.referral import (
    DecisionIn,
    ReferralAmend,
    ReferralCreate,
    ReferralPublic,
    ReferralStatus,
    ScreeningIn,
)
from app.openapi import (
    AUTHED,
    IDEMPOTENT,
    READ_ONE,
    UPDATE,
    WRITE,
    IfMatch,
    created,
    idempotency_key,
    problems,
)
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import idempotency, referrals

router = IndexedRouter(prefix="/api/v1/referrals", tags=["referrals"])

Submitter = Annotated[Caller, Depends(require(Permission.REFERRAL_SUBMIT))]
Reader = Annotated[Caller, Depends(require(Permission.REFERRAL_READ))]
Triager = Annotated[Caller, Depends(require(Permission.REFERRAL_TRIAGE))]


def _submit_once(
    session: Session, actor: Actor, body: ReferralCreate, key: str | None
) -> tuple[dict[str, object], bool]:
    return idempotency.once(
        session,
        actor,
        "referral.submit",
        key,
        body,
        lambda: referrals.submit(session, actor, body),
    )


@router.post(
    "",
    response_model=ReferralPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*WRITE),
    openapi_extra=IDEMPOTENT,
)
async def submit_referral(
    caller: Submitter, body: ReferralCreate, request: Request
) -> JSONResponse:
    """Refer a person to a panel with its type's form (schemas: GET /api/v1/panel-types)."""
    payload, replayed = await caller(_submit_once, body, idempotency_key(request))
    return created(payload, f"/api/v1/referrals/{payload['id']}", replayed)


@router.get("", response_model=Page[ReferralPublic], responses=problems(*AUTHED))
async def list_referrals(
    caller: Reader,
    panel_id: uuid.UUID | None = None,
    status: ReferralStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ReferralPublic]:
    """Your own referrals; every referral of a panel you coordinate or chair."""
    items, next_cursor = await caller(referrals.list_referrals, panel_id, status, cursor, limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{referral_id}", response_model=ReferralPublic, responses=problems(*READ_ONE))
async def get_referral(
    caller: Reader, referral_id: uuid.UUID, response: Response
) -> ReferralPublic:
    referral = await caller(referrals.get_referral, referral_id)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.patch("/{referral_id}", response_model=ReferralPublic, responses=problems(*UPDATE))
async def amend_referral(
    caller: Submitter,
    referral_id: uuid.UUID,
    body: ReferralAmend,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralPublic:
    """The referrer answers a request for information; the referral is submitted again."""
    referral = await caller(referrals.amend, referral_id, body, if_match)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.post("/{referral_id}/decision", response_model=ReferralPublic, responses=problems(*UPDATE))
async def decide_referral(
    caller: Triager,
    referral_id: uuid.UUID,
    body: DecisionIn,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralPublic:
    """Accept (opens a case, or adds to the person's open one), reject, or request information."""
    referral = await caller(referrals.decide, referral_id, body, if_match)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.post("/{referral_id}/screening", response_model=ReferralPublic, responses=problems(*UPDATE))
async def screen_referral(
    caller: Reader,
    referral_id: uuid.UUID,
    body: ScreeningIn,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralPublic:
    """Channel's police gateway: suitable, more_information or not_appropriate."""
    referral = await caller(referrals.screen, referral_id, body, if_match)
    response.headers["ETag"] = etag(referral.version)
    return referral
