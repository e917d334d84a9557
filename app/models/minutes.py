"""Minutes: per listed case what was shared and decided; after finalising, only amendments."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.models.action import ActionSummary
from app.models.base import created_at_field, forbid_nulls, id_field, timestamp_field

LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class MinutesField(StrEnum):
    DISCUSSION_SUMMARY = "discussion_summary"
    RISKS_IDENTIFIED = "risks_identified"
    DECISIONS = "decisions"
    ACTIONS_REVIEWED = "actions_reviewed"


class MinutesEntry(SQLModel, table=True):
    """The minutes of one listed case (one row per listing)."""

    __tablename__ = "minutes_entry"

    id: uuid.UUID = id_field()
    listing_id: uuid.UUID = Field(foreign_key="listing.id", unique=True)
    conference_id: uuid.UUID = Field(foreign_key="conference.id", index=True)
    case_id: uuid.UUID = Field(foreign_key="case_record.id", index=True)
    discussion_summary: str | None = Field(default=None, max_length=20000)
    risks_identified: str | None = Field(default=None, max_length=20000)
    decisions: str | None = Field(default=None, max_length=20000)
    actions_reviewed: str | None = Field(default=None, max_length=20000)
    recorded_by_id: uuid.UUID = Field(foreign_key="user_account.id")
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class MinutesAmendment(SQLModel, table=True):
    """A correction to finalised minutes: the original text stays, the amendment is added."""

    __tablename__ = "minutes_amendment"

    id: uuid.UUID = id_field()
    entry_id: uuid.UUID = Field(foreign_key="minutes_entry.id", index=True)
    conference_id: uuid.UUID = Field(foreign_key="conference.id", index=True)
    field: str = Field(max_length=32)
    previous_text: str | None = Field(default=None, max_length=20000)
    text: str = Field(max_length=20000)
    reason: str = Field(max_length=4000)
    amended_by_id: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()


class MinutesEntryIn(BaseModel):
    """PUT: the case's minutes as they now stand (a field left out keeps its text)."""

    model_config = ConfigDict(extra="forbid")

    discussion_summary: LongText | None = None
    risks_identified: LongText | None = None
    decisions: LongText | None = None
    actions_reviewed: LongText | None = None

    @model_validator(mode="after")
    def _something(self) -> MinutesEntryIn:
        forbid_nulls(self, *[f.value for f in MinutesField])
        if not self.model_fields_set:
            raise ValueError("give at least one of " + ", ".join(f.value for f in MinutesField))
        return self


class AmendmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: MinutesField
    text: LongText
    reason: Text


class AmendmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    field: MinutesField
    previous_text: str | None
    text: str
    reason: str
    amended_by_id: uuid.UUID
    created_at: datetime


class MinutesEntryPublic(BaseModel):
    listing_id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str
    position: int
    discussion_summary: str | None
    risks_identified: str | None
    decisions: str | None
    actions_reviewed: str | None
    recorded_by_id: uuid.UUID | None
    version: int | None
    updated_at: datetime | None
    amendments: list[AmendmentPublic]
    actions_set: list[ActionSummary] = PydanticField(
        description="The actions this conference set for the case, as they stand now"
    )


class MinutesPublic(BaseModel):
    conference_id: uuid.UUID
    status: str
    finalised: bool
    finalised_at: datetime | None
    entries: list[MinutesEntryPublic]
