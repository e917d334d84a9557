"""Referrals: a request to list a person at a panel, triaged into a case or refused."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, created_at_field, id_field, timestamp_field
from app.models.email import Email
from app.models.person import PersonIn
from app.panels.base import ConsentRecord


class ReferralStatus(StrEnum):
    SUBMITTED = "submitted"
    SCREENED = "screened"  # passed a panel's screening (Channel's police gateway)
    INFORMATION_REQUESTED = "information_requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Decision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    REQUEST_INFORMATION = "request_information"


class Referral(SQLModel, table=True):
    __table_args__ = (
        Index("ix_referral_panel_id_created_at_id", "panel_id", "created_at", "id"),
        Index("ix_referral_submitted_by_id", "submitted_by_id"),
    )

    id: uuid.UUID = id_field()
    panel_id: uuid.UUID = Field(foreign_key="panel.id")
    status: str = Field(max_length=24)
    # The user or API client who submitted it, and their agency.
    submitted_by_kind: str = Field(max_length=16)
    submitted_by_id: uuid.UUID
    referring_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    referrer_name: str = Field(max_length=200)
    referrer_email: str | None = Field(default=None, max_length=254)
    referrer_phone: str | None = Field(default=None, max_length=32)
    referral_date: date
    crime_reference: str | None = Field(default=None, max_length=64)
    form: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    assessment: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    risk_level: str | None = Field(default=None, max_length=16)
    consent: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    is_repeat: bool = Field(default=False)
    repeat_of_case_id: uuid.UUID | None = Field(default=None, foreign_key="case_record.id")
    possible_duplicates: int = Field(default=0)
    screening_outcome: str | None = Field(default=None, max_length=24)
    screening_note: str | None = Field(default=None, max_length=4000)
    screened_by_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    decision: str | None = Field(default=None, max_length=24)
    decision_reason: str | None = Field(default=None, max_length=4000)
    decided_by_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case_record.id", index=True)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class ReferralPerson(SQLModel, table=True):
    __tablename__ = "referral_person"

    referral_id: uuid.UUID = Field(foreign_key="referral.id", primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, index=True)
    role: str = Field(max_length=32, primary_key=True)


Role = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class ReferralPersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    person_id: uuid.UUID | None = PydField(
        default=None, description="An existing person (from GET /people); else describe them"
    )
    details: PersonIn | None = None


class ReferrerContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    email: Email | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None


class ReferralCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    panel_id: uuid.UUID
    referral_date: date
    referrer: ReferrerContact
    people: list[ReferralPersonIn] = PydField(min_length=1, max_length=20)
    form: dict[str, Any] = PydField(
        description="The panel type's referral form (schemas: GET /api/v1/panel-types)"
    )
    consent: ConsentRecord
    crime_reference: Annotated[str, StringConstraints(max_length=64)] | None = None


class ReferralAmend(BaseModel):
    """The referrer's answer to a request for information: a corrected form, resubmitted."""

    model_config = ConfigDict(extra="forbid")

    form: dict[str, Any] | None = None
    consent: ConsentRecord | None = None
    crime_reference: Annotated[str, StringConstraints(max_length=64)] | None = None
    note: Text | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reason: Text | None = None


class ScreeningIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Annotated[
        str, StringConstraints(pattern="^(suitable|more_information|not_appropriate)$")
    ]
    note: Text | None = None


class ReferralPersonPublic(BaseModel):
    person_id: uuid.UUID | None = PydField(description="Withheld from a referrer off the panel")
    role: str


class ReferralPublic(BaseModel):
    id: uuid.UUID
    panel_id: uuid.UUID
    status: ReferralStatus
    referring_agency_id: uuid.UUID
    referrer_name: str
    referral_date: date
    crime_reference: str | None
    people: list[ReferralPersonPublic]
    form: dict[str, Any]
    assessment: dict[str, Any]
    risk_level: str | None
    consent: dict[str, Any]
    is_repeat: bool | None = PydField(description="Withheld from a referrer off the panel")
    repeat_of_case_id: uuid.UUID | None
    possible_duplicates: int | None
    screening_outcome: str | None
    decision: str | None
    decision_reason: str | None
    decided_at: datetime | None
    case_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime | None
