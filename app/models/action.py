"""Actions: what an agency takes on for a case, with its due date and every update kept."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, forbid_nulls, id_field, timestamp_field
from app.pagination import DEFAULT_LIMIT, PageCursor, PageLimit


class ActionStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    NOT_DONE = "not_done"


class NotDoneReason(StrEnum):
    OVERTAKEN_BY_EVENTS = "overtaken_by_events"
    AGENCY_DID_NOT_ACT = "agency_did_not_act"
    OTHER = "other"


class ActionPriority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Action(SQLModel, table=True):
    # "action" reads badly in SQL and clashes with ON DELETE/UPDATE ACTION wording.
    __tablename__ = "case_action"
    __table_args__ = (
        # Overdue lists: open actions of an agency (or a panel) by due date.
        Index("ix_case_action_owner_status_due", "owner_agency_id", "status", "due_date", "id"),
        Index("ix_case_action_panel_status_due", "panel_id", "status", "due_date", "id"),
    )

    id: uuid.UUID = id_field()
    case_id: uuid.UUID = Field(foreign_key="case_record.id", index=True)
    panel_id: uuid.UUID = Field(foreign_key="panel.id")
    conference_id: uuid.UUID | None = Field(default=None, foreign_key="conference.id", index=True)
    description: str = Field(max_length=4000)
    owner_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    owner_user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    due_date: date
    priority: str = Field(max_length=16)
    status: str = Field(default=ActionStatus.OPEN.value, max_length=16)
    not_done_reason: str | None = Field(default=None, max_length=32)
    not_done_detail: str | None = Field(default=None, max_length=4000)
    resolved_at: datetime | None = timestamp_field()
    created_by_id: uuid.UUID = Field(foreign_key="user_account.id")
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class ActionUpdate(SQLModel, table=True):
    """One entry of an action's history: a progress note, a change of status or of terms."""

    __tablename__ = "action_update"

    id: uuid.UUID = id_field()
    action_id: uuid.UUID = Field(foreign_key="case_action.id", index=True)
    note: str | None = Field(default=None, max_length=4000)
    status_from: str | None = Field(default=None, max_length=16)
    status_to: str | None = Field(default=None, max_length=16)
    not_done_reason: str | None = Field(default=None, max_length=32)
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    actor_kind: str = Field(max_length=16)
    actor_id: uuid.UUID
    actor_agency_id: uuid.UUID | None = None
    created_at: datetime = created_at_field()


# API schemas ---------------------------------------------------------------------------------

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conference_id: uuid.UUID | None = PydanticField(
        default=None,
        description="The conference that set it (the case must be listed on it); "
        "omitted for an action set between meetings",
    )
    description: Text
    owner_agency_id: uuid.UUID
    owner_user_id: uuid.UUID | None = None
    due_date: date
    priority: ActionPriority = ActionPriority.MEDIUM


class ActionPatch(BaseModel):
    """The owning agency: a progress note, done, or not done with a reason. The panel's
    coordinator or chair may also change its terms (description, owner, due date, priority)."""

    model_config = ConfigDict(extra="forbid")

    note: Text | None = None
    status: ActionStatus | None = None
    not_done_reason: NotDoneReason | None = None
    not_done_detail: Text | None = None
    description: Text | None = None
    owner_agency_id: uuid.UUID | None = None
    owner_user_id: uuid.UUID | None = None
    due_date: date | None = None
    priority: ActionPriority | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ActionPatch:
        forbid_nulls(
            self, "note", "status", "description", "owner_agency_id", "due_date", "priority"
        )
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        if self.status is ActionStatus.NOT_DONE and self.not_done_reason is None:
            raise ValueError("status not_done needs a not_done_reason")
        if self.not_done_reason is not None and self.status is not ActionStatus.NOT_DONE:
            raise ValueError("not_done_reason goes with status not_done")
        if self.not_done_reason is NotDoneReason.OTHER and not self.not_done_detail:
            raise ValueError("not_done_reason 'other' needs not_done_detail")
        if self.not_done_detail is not None and self.not_done_reason is None:
            raise ValueError("not_done_detail goes with a not_done_reason")
        return self


class ActionUpdatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    note: str | None
    status_from: ActionStatus | None
    status_to: ActionStatus | None
    not_done_reason: NotDoneReason | None
    changes: dict[str, Any] | None
    actor_kind: str
    actor_id: uuid.UUID
    actor_agency_id: uuid.UUID | None
    created_at: datetime


class ActionSummary(BaseModel):
    """A row of an action list."""

    id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str
    panel_id: uuid.UUID
    conference_id: uuid.UUID | None
    description: str
    owner_agency_id: uuid.UUID
    owner_user_id: uuid.UUID | None
    due_date: date
    priority: ActionPriority
    status: ActionStatus
    is_overdue: bool
    not_done_reason: NotDoneReason | None
    not_done_detail: str | None
    resolved_at: datetime | None
    version: int


class ActionPublic(ActionSummary):
    created_by_id: uuid.UUID
    created_at: datetime
    updated_at: datetime | None
    history: list[ActionUpdatePublic]


class ActionListQuery(BaseModel):
    """``GET /actions``' query string, read in one call (``app.query_params``)."""

    model_config = ConfigDict(extra="ignore")

    agency_id: uuid.UUID | None = None
    panel_id: uuid.UUID | None = None
    status: ActionStatus | None = None
    overdue: bool | None = None
    limit: PageLimit = DEFAULT_LIMIT
    cursor: PageCursor = None
