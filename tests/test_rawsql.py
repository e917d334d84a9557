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
        "created_at": datetime(2026, 11, 20, 9, 30, n, 1000 * n, tzinfo=UTC),
    }


@pytest.mark.parametrize("count", [1, 3, 10])  # one statement up to 8 rows, then executemany
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
