"""Panels (one per panel type and area), their member agencies, and users' panel roles."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, forbid_nulls, id_field, timestamp_field
from app.panels.base import PanelConfig, PanelConfigUpdate


class PanelRoleName(StrEnum):
    CHAIR = "chair"
    COORDINATOR = "coordinator"
    REPRESENTATIVE = "representative"
    OBSERVER = "observer"


# Roles that run the panel: see every referral and case of it, triage, list, minute.
MANAGING_ROLES = frozenset({PanelRoleName.CHAIR.value, PanelRoleName.COORDINATOR.value})


class Panel(SQLModel, table=True):
    id: uuid.UUID = id_field()
    panel_type: str = Field(max_length=32, index=True)
    name: str = Field(max_length=200, unique=True)
    area: str = Field(max_length=200)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    is_active: bool = Field(default=True)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
    # Changed by the database (triggers of migration 7c41e2a9b053) to a new random value
    # whenever anything this panel's conference agendas show changes: a case, action,
    # listing, conference, exclusion, membership or role of the panel, or the name of a
    # case's subject. app.services.agenda_reads keeps an agenda it built as long as this
    # stays what it was built at. Never shown, never written by the service.
    agenda_token: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


class PanelMember(SQLModel, table=True):
    """A member agency of a panel; ``may_refer`` says whether it may submit referrals."""

    __tablename__ = "panel_member"

    panel_id: uuid.UUID = Field(foreign_key="panel.id", primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", primary_key=True, index=True)
    may_refer: bool = Field(default=True)
    created_at: datetime = created_at_field()


class PanelRole(SQLModel, table=True):
    """A user's role on a panel. Case access comes from this, never from system roles."""

    __tablename__ = "panel_role"

    panel_id: uuid.UUID = Field(foreign_key="panel.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True, index=True)
    role: str = Field(max_length=16)
    created_at: datetime = created_at_field()


Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PanelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    panel_type: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    name: Text200
    area: Text200
    config: PanelConfigUpdate | None = None


class PanelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    area: Text200 | None = None
    config: PanelConfigUpdate | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> PanelUpdate:
        forbid_nulls(self, "name", "area", "config", "is_active")
        return self


class PanelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    panel_type: str
    name: str
    area: str
    config: PanelConfig
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime | None


class MemberAgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_id: uuid.UUID
    may_refer: bool = True


class MemberUserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    role: PanelRoleName


class MemberAgencyPublic(BaseModel):
    agency_id: uuid.UUID
    agency_name: str
    may_refer: bool


class MemberUserPublic(BaseModel):
    user_id: uuid.UUID
    full_name: str
    agency_id: uuid.UUID
    role: PanelRoleName


class PanelMembers(BaseModel):
    agencies: list[MemberAgencyPublic]
    users: list[MemberUserPublic]


class MembersUpdate(BaseModel):
    """Add or change members; ``remove_*`` lists ids to take off the panel."""

    model_config = ConfigDict(extra="forbid")

    agencies: list[MemberAgencyIn] = []
    users: list[MemberUserIn] = []
    remove_agency_ids: list[uuid.UUID] = []
    remove_user_ids: list[uuid.UUID] = []

    @model_validator(mode="after")
    def _bounded(self) -> MembersUpdate:
        for name in ("agencies", "users", "remove_agency_ids", "remove_user_ids"):
            if len(getattr(self, name)) > 200:
                raise ValueError(f"{name}: at most 200 entries per request")
        return self


class PanelTypePublic(BaseModel):
    key: str
    title: str
    reference_prefix: str
    person_roles: list[str]
    requires_screening: bool
    isolated: bool
    stages: list[str]
    default_config: PanelConfig
    referral_form_schema: dict[str, Any]
