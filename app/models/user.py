"""People who log in. Each belongs to one agency; system roles are few and explicit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, forbid_nulls, id_field, timestamp_field
from app.models.email import Email
from app.permissions import Role


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: uuid.UUID = id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    email: str = Field(max_length=254, unique=True)
    full_name: str = Field(max_length=200)
    job_title: str | None = Field(default=None, max_length=200)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    password_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    failed_login_count: int = Field(default=0)
    locked_until: datetime | None = timestamp_field()
    # TOTP secrets are stored encrypted (see app.security); the pending one awaits confirmation.
    totp_secret_enc: str | None = Field(default=None, max_length=512)
    totp_pending_enc: str | None = Field(default=None, max_length=512)
    totp_last_step: int | None = Field(default=None)
    password_changed_at: datetime | None = timestamp_field()
    # Bumped when a password is reset or MFA removed: tokens from an older epoch stop working.
    auth_epoch: int = Field(default=0)
    last_login_at: datetime | None = timestamp_field()
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_secret_enc is not None


FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
JobTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    agency_id: uuid.UUID
    password: Password
    job_title: JobTitle | None = None
    roles: list[Role] = PydField(default_factory=list, max_length=len(Role))


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: FullName | None = None
    job_title: JobTitle | None = None
    roles: list[Role] | None = PydField(default=None, max_length=len(Role))
    is_active: bool | None = None
    password: Password | None = None
    unlock: bool | None = PydField(default=None, description="Clear a login lockout")
    reset_mfa: bool | None = PydField(default=None, description="Remove the user's TOTP factor")

    @model_validator(mode="after")
    def _no_nulls(self) -> UserUpdate:
        forbid_nulls(self, "full_name", "roles", "is_active", "password", "unlock", "reset_mfa")
        return self


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    email: str
    full_name: str
    job_title: str | None
    roles: list[Role]
    is_active: bool
    mfa_enabled: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime | None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password
