"""Partner agencies: the organisations that sit on panels."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import String
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, forbid_nulls, id_field, timestamp_field
from app.models.email import Email


class AgencyKind(StrEnum):
    POLICE = "police"
    LOCAL_AUTHORITY = "local_authority"
    PROBATION = "probation"
    HEALTH = "health"
    FIRE = "fire"
    HOUSING = "housing"
    IDVA_SERVICE = "idva_service"
    EDUCATION = "education"
    VOLUNTARY = "voluntary"
    OTHER = "other"


class Agency(SQLModel, table=True):
    id: uuid.UUID = id_field()
    name: str = Field(max_length=200, unique=True)
    short_name: str | None = Field(default=None, max_length=30)
    kind: str = Field(sa_type=String(32), index=True)
    contact_email: str | None = Field(default=None, max_length=254)
    is_active: bool = Field(default=True)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]


class AgencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: AgencyKind
    short_name: ShortName | None = None
    contact_email: Email | None = None


class AgencyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: AgencyKind | None = None
    short_name: ShortName | None = None
    contact_email: Email | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> AgencyUpdate:
        forbid_nulls(self, "name", "kind", "is_active")
        return self


class AgencyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    short_name: str | None
    kind: AgencyKind
    contact_email: str | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime | None
