"""Opaque refresh tokens, stored as hashes, rotated on every use, grouped in families."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, created_at_field, id_field, timestamp_field


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=64, unique=True)
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    scope: str = Field(default="", max_length=200)
    issued_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()
