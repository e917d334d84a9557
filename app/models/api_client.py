"""Partner systems' credentials for the client-credentials grant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, forbid_nulls, id_field, timestamp_field
from app.permissions import Scope


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    id: uuid.UUID = id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    name: str = Field(max_length=200)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    secret_rotated_at: datetime | None = timestamp_field()
    # Bumped on secret rotation: tokens from an older epoch stop working.
    auth_epoch: int = Field(default=0)
    last_used_at: datetime | None = timestamp_field()
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


ClientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ApiClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ClientName
    agency_id: uuid.UUID
    scopes: list[Scope] = PydField(default_factory=list, max_length=len(Scope))


class ApiClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ClientName | None = None
    scopes: list[Scope] | None = PydField(default=None, max_length=len(Scope))
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ApiClientUpdate:
        forbid_nulls(self, "name", "scopes", "is_active")
        return self


class ApiClientPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = PydField(description="Also the OAuth2 client_id")
    agency_id: uuid.UUID
    name: str
    scopes: list[Scope]
    is_active: bool
    secret_rotated_at: datetime | None
    last_used_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime | None


class ApiClientWithSecret(ApiClientPublic):
    client_secret: str = PydField(description="Shown once; store it now, it cannot be read again")
