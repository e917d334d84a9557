"""Visibility filters: which rows a principal may see. List and get share the same filter."""

from __future__ import annotations

from typing import Any

from sqlalchemy import true

from app.actor import Actor
from app.models.api_client import ApiClient
from app.models.user import User
from app.permissions import Role

_PARTNERSHIP_WIDE = {Role.ADMIN, Role.AUDITOR}


def _partnership_wide(actor: Actor) -> bool:
    return bool(_PARTNERSHIP_WIDE.intersection(actor.roles))


def visible_users(actor: Actor) -> Any:
    """Admins and auditors see every user; an agency admin sees their own agency's."""
    if _partnership_wide(actor):
        return true()
    return User.agency_id == actor.agency_id


def visible_api_clients(actor: Actor) -> Any:
    """Only the partnership-wide roles hold API-client permissions; kept explicit for later."""
    if _partnership_wide(actor):
        return true()
    return ApiClient.agency_id == actor.agency_id
