"""What the agenda read returns: the listed cases in order, with the actions to review."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from app.models.action import ActionSummary


class ListingPublic(BaseModel):
    id: uuid.UUID
    conference_id: uuid.UUID
    position: int
    case_id: uuid.UUID
    case_reference: str
    case_status: str
    risk_level: str | None
    is_repeat: bool
    subject_person_id: uuid.UUID
    subject_name: str
    outstanding_actions: list[ActionSummary]
    created_at: datetime


class SuggestionReason(StrEnum):
    AWAITING_LISTING = "awaiting_listing"
    OVERDUE_ACTIONS = "overdue_actions"


class Suggestion(BaseModel):
    case_id: uuid.UUID
    case_reference: str
    reasons: list[SuggestionReason]
    risk_level: str | None
    is_repeat: bool
    opened_at: datetime
    overdue_actions: int


class AgendaPublic(BaseModel):
    conference_id: uuid.UUID
    status: str
    agenda_published_at: datetime | None
    items: list[ListingPublic]
    suggestions: list[Suggestion] | None = None
    version: int
