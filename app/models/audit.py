"""The audit log: append-only events, sealed into an HMAC chain in commit order.

``audit_event`` rows are written in the transaction of the access they record, with a plain
sequence number and no hash, so audited requests never queue behind one "last hash" row.
``audit_unsealed`` is the queue of events not yet chained. The sealer (app.services.audit_chain)
takes queued events in batches, links each to the previous seal and writes ``audit_seal``.
Database triggers refuse UPDATE and DELETE on the event and seal tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Sequence = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_actor_id_id", "actor_id", "id"),
        Index("ix_audit_event_actor_agency_id_id", "actor_agency_id", "id"),
        Index("ix_audit_event_case_id_id", "case_id", "id"),
        Index("ix_audit_event_person_id_id", "person_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(Sequence, primary_key=True))
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor_type: str = Field(max_length=16)
    actor_id: uuid.UUID | None = Field(default=None)
    actor_agency_id: uuid.UUID | None = Field(default=None)
    action: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    resource_type: str | None = Field(default=None, max_length=32)
    resource_id: str | None = Field(default=None, max_length=64)
    case_id: uuid.UUID | None = Field(default=None)
    person_id: uuid.UUID | None = Field(default=None)
    purpose: str | None = Field(default=None, max_length=200)
    source_ip: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=128)
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))


# The queue, the seals and the subject index name their event by id without a foreign key.
# Events are never deleted (append-only, enforced by triggers), and these rows are written only
# with their event (the queue) or from it (the sealer), so the key cannot dangle; checking it
# cost PostgreSQL an index search and a row lock on the event for every row written, the
# most of inserting a list read's fifty subjects (~5 µs each, half the insert). The chain's
# verification reports a seal, a queue row or an index row whose event is missing.
class AuditUnsealed(SQLModel, table=True):
    __tablename__ = "audit_unsealed"

    event_id: int = Field(sa_column=Column(Sequence, primary_key=True))


# Events a subject-index epoch spans: the index is keyed by the epoch of the event first.
SUBJECT_EPOCH_EVENTS = 512


def subject_epoch(event_id: int) -> int:
    """The subject-index epoch of an event."""
    return event_id // SUBJECT_EPOCH_EVENTS


class AuditSubject(SQLModel, table=True):
    """The cases one event's read showed, a row each, so that "who saw this case" (and, by
    the case's subject, "who saw this person") finds a list read as readily as a single read.

    The (case, subject) pairs are in the event's sealed ``detail["subjects"]``; this table
    is their index, written by the sealer, and verification checks the two agree. Keyed by
    the event's epoch (``subject_epoch``: its id // SUBJECT_EPOCH_EVENTS), then the case:
    keyed by case alone, each row went to a random place in the whole index, and writing a
    row cost more the larger the index grew (bench.subject_index: 9 µs a row at the start of
    600,000, 22 µs at the end); an epoch's rows are written together, into pages still in
    the cache (4 µs, flat). "Who saw this case" searches the key once per epoch
    (app.services.audit_log). A case's subject never changes, so the person filter goes
    through the case rather than a second index.
    """

    __tablename__ = "audit_subject"
    # On SQLite the primary key is the table itself: one B-tree fewer per row written. No
    # other index: an event's rows are found by its epoch (app.services.audit_chain).
    __table_args__ = ({"sqlite_with_rowid": False},)

    epoch: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    case_id: uuid.UUID = Field(primary_key=True)
    event_id: int = Field(sa_column=Column(Sequence, primary_key=True, autoincrement=False))


class AuditSeal(SQLModel, table=True):
    __tablename__ = "audit_seal"

    event_id: int = Field(sa_column=Column(Sequence, primary_key=True))
    chain_index: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    sealed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    actor_agency_id: uuid.UUID | None
    action: str
    outcome: str
    resource_type: str | None
    resource_id: str | None
    case_id: uuid.UUID | None
    person_id: uuid.UUID | None
    purpose: str | None
    source_ip: str | None
    request_id: str | None
    changes: dict[str, Any] | None
    detail: dict[str, Any] | None


class ChainBreak(BaseModel):
    chain_index: int | None
    event_id: int | None
    reason: str


class AuditVerification(BaseModel):
    ok: bool
    sealed_events: int
    unsealed_events: int
    head_chain_index: int | None
    head_hash: str | None
    first_break: ChainBreak | None
    verified_at: datetime
