"""Case conferences: the dated meetings of a panel, their agendas and who attended."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, created_at_field, id_field, timestamp_field


class ConferenceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    CONCLUDED = "concluded"
    MINUTES_FINALISED = "minutes_finalised"
    CANCELLED = "cancelled"


# A case is listed on one of these at a time.
UPCOMING = frozenset({ConferenceStatus.SCHEDULED.value, ConferenceStatus.IN_PROGRESS.value})

# The moves PATCH may make; finalising has its own endpoint (the chair's).
TRANSITIONS: dict[str, frozenset[str]] = {
    ConferenceStatus.SCHEDULED.value: frozenset(
        {ConferenceStatus.IN_PROGRESS.value, ConferenceStatus.CANCELLED.value}
    ),
    ConferenceStatus.IN_PROGRESS.value: frozenset({ConferenceStatus.CONCLUDED.value}),
    ConferenceStatus.CONCLUDED.value: frozenset(),
    ConferenceStatus.MINUTES_FINALISED.value: frozenset(),
    ConferenceStatus.CANCELLED.value: frozenset(),
}


class Conference(SQLModel, table=True):
    __table_args__ = (Index("ix_conference_panel_id_starts_at_id", "panel_id", "starts_at", "id"),)

    id: uuid.UUID = id_field()
    panel_id: uuid.UUID = Field(foreign_key="panel.id")
    status: str = Field(default=ConferenceStatus.SCHEDULED.value, max_length=24)
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    duration_minutes: int
    location: str | None = Field(default=None, max_length=500)
    online_link: str | None = Field(default=None, max_length=2000)
    chair_user_id: uuid.UUID = Field(foreign_key="user_account.id")
    agenda_published_at: datetime | None = timestamp_field()
    started_at: datetime | None = timestamp_field()
    concluded_at: datetime | None = timestamp_field()
    finalised_at: datetime | None = timestamp_field()
    finalised_by_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    cancelled_at: datetime | None = timestamp_field()
    cancel_reason: str | None = Field(default=None, max_length=4000)
    created_by_id: uuid.UUID = Field(foreign_key="user_account.id")
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class ScheduleChange(SQLModel, table=True):
    """A reschedule or move of a conference: what it was, what it became, who, why."""

    __tablename__ = "conference_schedule_change"

    id: uuid.UUID = id_field()
    conference_id: uuid.UUID = Field(foreign_key="conference.id", index=True)
    previous_starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    previous_duration_minutes: int
    previous_location: str | None = Field(default=None, max_length=500)
    previous_online_link: str | None = Field(default=None, max_length=2000)
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    duration_minutes: int
    location: str | None = Field(default=None, max_length=500)
    online_link: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=4000)
    changed_by_id: uuid.UUID = Field(foreign_key="user_account.id")
    changed_at: datetime = created_at_field()


class Listing(SQLModel, table=True):
    """A case on a conference's agenda, in order."""

    __tablename__ = "listing"
    # The unique constraint's index also serves "the listings of a conference".
    __table_args__ = (UniqueConstraint("conference_id", "case_id"),)

    id: uuid.UUID = id_field()
    conference_id: uuid.UUID = Field(foreign_key="conference.id")
    case_id: uuid.UUID = Field(foreign_key="case_record.id", index=True)
    position: int
    added_by_id: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()


class AttendanceStatus(StrEnum):
    PRESENT = "present"
    APOLOGIES = "apologies"
    ABSENT = "absent"


class Attendance(SQLModel, table=True):
    """Who came for which agency, and when they acknowledged the confidentiality statement."""

    # The unique constraint's index also serves "the attendance of a conference".
    __table_args__ = (UniqueConstraint("conference_id", "agency_id", "attendee_name"),)

    id: uuid.UUID = id_field()
    conference_id: uuid.UUID = Field(foreign_key="conference.id")
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    attendee_name: str = Field(max_length=200)
    role: str = Field(max_length=64)
    status: str = Field(max_length=16)
    information_sent_in_advance: bool = Field(default=False)
    confidentiality_acknowledged_at: datetime | None = timestamp_field()
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


# API schemas ---------------------------------------------------------------------------------

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Location = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Link = Annotated[AnyHttpUrl, PydanticField(max_length=2000)]
Duration = Annotated[int, PydanticField(ge=15, le=600, description="Minutes")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
RoleText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00]*$"),
]


class ConferenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    panel_id: uuid.UUID
    starts_at: AwareDatetime = PydanticField(description="With its offset, e.g. +00:00")
    duration_minutes: Duration = 120
    location: Location | None = None
    online_link: Link | None = None
    chair_user_id: uuid.UUID = PydanticField(
        description="A user holding the chair or coordinator role on the panel"
    )


class ConferenceUpdate(BaseModel):
    """Reschedule, move, change the chair, or move the status along."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime | None = None
    duration_minutes: Duration | None = None
    location: Location | None = None
    online_link: Link | None = None
    chair_user_id: uuid.UUID | None = None
    reschedule_reason: Text | None = None
    status: ConferenceStatus | None = None
    cancel_reason: Text | None = None


class ScheduleChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    previous_starts_at: datetime
    previous_duration_minutes: int
    previous_location: str | None
    previous_online_link: str | None
    starts_at: datetime
    duration_minutes: int
    location: str | None
    online_link: str | None
    reason: str | None
    changed_by_id: uuid.UUID
    changed_at: datetime


class ConferenceSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    panel_id: uuid.UUID
    status: ConferenceStatus
    starts_at: datetime
    duration_minutes: int
    location: str | None
    online_link: str | None
    chair_user_id: uuid.UUID
    agenda_published_at: datetime | None
    version: int


class ConferencePublic(ConferenceSummary):
    panel_type: str
    started_at: datetime | None
    concluded_at: datetime | None
    finalised_at: datetime | None
    finalised_by_id: uuid.UUID | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    listed_cases: int
    schedule_history: list[ScheduleChangePublic]


class ListingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: uuid.UUID
    position: int | None = PydanticField(
        default=None, ge=1, le=1000, description="1-based; omitted, the case goes last"
    )


class AgendaOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listing_ids: list[uuid.UUID] = PydanticField(
        max_length=1000, description="Every listing of the agenda, in the new order"
    )


class AttendanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_id: uuid.UUID
    user_id: uuid.UUID | None = None
    attendee_name: Name | None = PydanticField(
        default=None, description="Required when the attendee is not a user; else the user's name"
    )
    role: RoleText
    status: AttendanceStatus
    information_sent_in_advance: bool = False


class AttendanceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleText | None = None
    status: AttendanceStatus | None = None
    information_sent_in_advance: bool | None = None
    confidentiality_acknowledged: bool | None = PydanticField(
        default=None,
        description="true records now as the time the attendee acknowledged the statement",
    )


class AttendancePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    conference_id: uuid.UUID
    agency_id: uuid.UUID
    user_id: uuid.UUID | None
    attendee_name: str
    role: str
    status: AttendanceStatus
    information_sent_in_advance: bool
    confidentiality_acknowledged_at: datetime | None
    version: int


class CalendarFeed(BaseModel):
    path: str = PydanticField(
        description="GET it (prefixed with the service's address) from a calendar client"
    )
    expires_at: datetime
