"""People: one record per real person, matched on name, date of birth and postcode."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, id_field, timestamp_field
from app.models.email import Email


class Person(SQLModel, table=True):
    __table_args__ = (
        Index("ix_person_family_key_date_of_birth", "family_key", "date_of_birth"),
        Index("ix_person_date_of_birth", "date_of_birth"),
        Index("ix_person_postcode_key", "postcode_key"),
    )

    id: uuid.UUID = id_field()
    given_name: str = Field(max_length=100)
    family_name: str = Field(max_length=100)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    date_of_birth: date | None = Field(default=None)
    gender: str | None = Field(default=None, max_length=32)
    ethnicity: str | None = Field(default=None, max_length=64)
    disability: bool | None = Field(default=None)
    lgbt: bool | None = Field(default=None)
    address: str | None = Field(default=None, max_length=400)
    postcode: str | None = Field(default=None, max_length=10)
    # A victim's safe contact details: shown only to those who need them (see app.policies).
    safe_contact: dict[str, str] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    # Normalised keys for matching (app.services.matching).
    family_key: str = Field(max_length=100)
    given_key: str = Field(max_length=100)
    postcode_key: str | None = Field(default=None, max_length=10)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class PersonIdentifier(SQLModel, table=True):
    """An agency's own identifier for a person (police PNC id, NHS number, ...)."""

    __tablename__ = "person_identifier"
    __table_args__ = (UniqueConstraint("agency_id", "identifier"),)

    id: uuid.UUID = id_field()
    person_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    identifier: str = Field(max_length=64)


class PersonDuplicate(SQLModel, table=True):
    """A suspicion that two records are one person: surfaced to coordinators, never merged."""

    __tablename__ = "person_duplicate"

    person_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True)
    candidate_id: uuid.UUID = Field(foreign_key="person.id", primary_key=True, index=True)
    score: float
    status: str = Field(default="open", max_length=16)
    created_at: datetime = created_at_field()


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Postcode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=10, pattern=r"^[A-Za-z0-9 ]+$"
    ),
]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class SafeContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    email: Email | None = None
    safe_times: Annotated[str, StringConstraints(max_length=200)] | None = None
    notes: Annotated[str, StringConstraints(max_length=1000)] | None = None


class AgencyIdentifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_id: uuid.UUID
    identifier: Short


class PersonIn(BaseModel):
    """A person as described by a referral: matched to an existing record or created."""

    model_config = ConfigDict(extra="forbid")

    given_name: Name
    family_name: Name
    aliases: list[Name] = PydField(default_factory=list, max_length=20)
    date_of_birth: date | None = None
    gender: Short | None = None
    ethnicity: Short | None = None
    disability: bool | None = None
    lgbt: bool | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=400)] | None = None
    postcode: Postcode | None = None
    safe_contact: SafeContact | None = None
    agency_identifiers: list[AgencyIdentifierIn] = PydField(default_factory=list, max_length=10)


class PersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    given_name: str
    family_name: str
    aliases: list[str]
    date_of_birth: date | None
    gender: str | None
    ethnicity: str | None
    disability: bool | None
    lgbt: bool | None
    address: str | None
    postcode: str | None
    safe_contact: SafeContact | None = PydField(
        default=None, description="Only for those who need it; otherwise null"
    )


class PersonCandidate(BaseModel):
    person: PersonPublic
    score: float = PydField(ge=0, le=1)
    matched_on: list[str]
