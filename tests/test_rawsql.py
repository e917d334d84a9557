"""Rows written through the driver (app.rawsql) read back through the ORM as they were
given: ids, dates, timestamps, booleans and JSON encoded as SQLAlchemy stores them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from app.models.audit import AuditSubject
from app.models.person import Person
from app.rawsql import Raw


def _person(n: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "given_name": "Jane",
        "family_name": f"Roe{n}",
        "aliases": [f"Janie Roe{n}"] if n % 2 else [],
        "date_of_birth": date(1990, 1, 1 + n % 28) if n % 3 else None,
        "disability": bool(n % 2),
        "postcode": "DA6 7AT",
        "safe_contact": {"phone": "07700 900123"} if n % 2 else None,
        "family_key": f"roe{n}",
        "given_key": "jane",
        "version": 1,
        "created_at": datetime(2026, 11, 20, 9, n // 60, n % 60, 1000 * n, tzinfo=UTC),
    }


# One statement up to 8 rows; then on SQLite statements of many rows (powers of two, at most
# 64 of person's twelve columns), on PostgreSQL a pipeline.
@pytest.mark.parametrize("count", [1, 3, 10, 64, 65, 200])
def test_inserted_rows_read_back_through_the_orm(session: Session, count: int) -> None:
    rows = [_person(n) for n in range(count)]
    Raw(session).insert("person", rows)
    stored = {
        p.id: p
        for p in session.scalars(select(Person).where(col(Person.id).in_([r["id"] for r in rows])))
    }
    assert len(stored) == count
    for row in rows:
        person = stored[row["id"]]
        assert {name: getattr(person, name) for name in row} == row


@pytest.mark.parametrize("count", [1, 2, 255, 256, 257, 700])
def test_rows_of_values_are_all_inserted_whatever_their_number(
    session: Session, count: int
) -> None:
    """``insert_values`` cuts the rows into statements of a few sizes: every row is written
    once, and what it wrote reads back as given."""
    base = 10**9 + count * 1000
    rows = [(base + n, uuid.uuid4().hex, base + n) for n in range(count)]
    raw = Raw(session)
    values = [
        (epoch, case if raw.sqlite else uuid.UUID(case), event) for epoch, case, event in rows
    ]
    raw.insert_values("audit_subject", ("epoch", "case_id", "event_id"), values)
    stored = session.execute(
        select(AuditSubject.epoch, AuditSubject.case_id, AuditSubject.event_id).where(
            col(AuditSubject.epoch) >= base, col(AuditSubject.epoch) < base + count
        )
    ).all()
    assert sorted((e, c.hex, i) for e, c, i in stored) == rows
