"""Cases: a person's file on one panel, opened from an accepted referral."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, created_at_field, forbid_nulls, id_field, timestamp_field
from app.pagination import DEFAULT_LIMIT, PageCursor, PageLimit
from app.panels.base import ConsentGiver, ConsentStatus, LawfulBasis


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class RiskLevel(StrEnum):
    STANDARD = "standard"
    MEDIUM = "medium"
    HIGH = "high"


class Case(SQLModel, table=True):
    # "case" is an SQL keyword; the table is case_record.
    __tablename__ = "case_record"
    __table_args__ = (
        Index("ix_case_record_panel_id_created_at_id", "panel_id", "created_at", "id"),
        # Lists across several panels walk this in order and filter by panel.
        Index("ix_case_record_created_at_id", "created_at", "id"),
        # Agenda suggestions: a panel's cases heard before (with overdue actions to review).
        Index("ix_case_record_panel_id_last_heard_at", "panel_id", "last_heard_at"),
    )

    id: uuid.UUID = id_field()
    panel_id: uuid.UUID = Field(foreign_key="panel.id")
    reference: str = Field(max_length=32, unique=True)
    status: str = Field(default=CaseStatus.OPEN.value, max_length=16)
    stage: str = Field(max_length=32)
    risk_level: str | None = Field(default=None, max_length=16)
    lead_agency_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id")
    keyworker_user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    subject_person_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    is_repeat: bool = Field(default=False)
    repeat_of_case_id: uuid.UUID | None = Field(default=None, foreign_key="case_record.id")
    opened_at: datetime = created_at_field()
    last_heard_at: datetime | None = timestamp_field()
    closed_at: datetime | None = timestamp_field()
    close_reason: str | None = Field(default=None, max_length=4000)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class CasePerson(SQLModel, table=True):
    __tablename__ = "case_person"

    case_id: uuid.UUID = Field(foreign_key="case_record.id", primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, index=True)
    role: str = Field(max_length=32, primary_key=True)


class CaseExclusion(SQLModel, table=True):
    """An agency kept out of one case (for example, the perpetrator's employer)."""

    __tablename__ = "case_exclusion"

    case_id: uuid.UUID = Field(foreign_key="case_record.id", primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", primary_key=True, index=True)
    reason: str = Field(max_length=4000)
    created_by_id: uuid.UUID
    created_at: datetime = created_at_field()


class Consent(SQLModel, table=True):
    """Consent per person and purpose, with who recorded it; or the basis for sharing without."""

    id: uuid.UUID = id_field()
    case_id: uuid.UUID = Field(foreign_key="case_record.id", index=True)
    person_id: uuid.UUID = Field(foreign_key="person.id")
    purpose: str = Field(max_length=64)
    status: str = Field(max_length=16)
    given_by: str | None = Field(default=None, max_length=32)
    lawful_basis: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=4000)
    recorded_by_kind: str = Field(max_length=16)
    recorded_by_id: uuid.UUID
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class CaseCounter(SQLModel, table=True):
    """The last reference number issued per panel and year (DVM-2026-0007)."""

    __tablename__ = "case_counter"

    panel_id: uuid.UUID = Field(foreign_key="panel.id", primary_key=True)
    year: int = Field(primary_key=True)
    last: int = Field(default=0)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class CaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CaseStatus | None = None
    stage: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    risk_level: RiskLevel | None = None
    lead_agency_id: uuid.UUID | None = None
    keyworker_user_id: uuid.UUID | None = None
    close_reason: Text | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> CaseUpdate:
        forbid_nulls(self, "status", "stage", "risk_level")
        return self


class CasePersonPublic(BaseModel):
    person_id: uuid.UUID
    role: str
    given_name: str
    family_name: str


class CasePublic(BaseModel):
    id: uuid.UUID
    panel_id: uuid.UUID
    panel_type: str
    reference: str
    status: CaseStatus
    stage: str
    risk_level: RiskLevel | None
    lead_agency_id: uuid.UUID | None
    keyworker_user_id: uuid.UUID | None
    subject_person_id: uuid.UUID
    people: list[CasePersonPublic]
    is_repeat: bool
    repeat_of_case_id: uuid.UUID | None
    opened_at: datetime
    last_heard_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    version: int


class CaseSummary(BaseModel):
    """A row of the case list."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    panel_id: uuid.UUID
    reference: str
    status: CaseStatus
    stage: str
    risk_level: RiskLevel | None
    is_repeat: bool
    opened_at: datetime
    version: int


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: uuid.UUID
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
    status: ConsentStatus
    given_by: ConsentGiver | None = None
    lawful_basis: LawfulBasis | None = None
    reason: Text | None = None


class ConsentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_id: uuid.UUID
    person_id: uuid.UUID
    purpose: str
    status: ConsentStatus
    given_by: str | None
    lawful_basis: str | None
    reason: str | None
    recorded_by_kind: str
    recorded_by_id: uuid.UUID
    recorded_at: datetime


class ExclusionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_id: uuid.UUID
    reason: Text


class ExclusionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    case_id: uuid.UUID
    agency_id: uuid.UUID
    reason: str
    created_by_id: uuid.UUID
    created_at: datetime


class CaseListQuery(BaseModel):
    """``GET /cases``' query string, read in one call (``app.query_params``)."""

    model_config = ConfigDict(extra="ignore")

    panel_id: uuid.UUID | None = None
    status: CaseStatus | None = None
    risk_level: RiskLevel | None = None
    limit: PageLimit = DEFAULT_LIMIT
    cursor: PageCursor = None
