"""Keyset (cursor) pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, bindparam, literal_column, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import Invalid

T = TypeVar("T")
DEFAULT_LIMIT, MAX_LIMIT = 50, 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
# Text filters: any characters but NUL, which PostgreSQL cannot compare (it would be a 500).
NO_NUL = r"^[^\x00]*$"
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` from the previous page")
]
# The same, as fields of a route's query model (app.query_params).
PageLimit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Page size")]
PageCursor = Annotated[
    str | None, Field(max_length=512, description="`next_cursor` from the previous page")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, date) else v for v in values]
    plain = [str(v) if isinstance(v, uuid.UUID) else v for v in plain]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


_INT64 = 2**63


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The key values a cursor names; Invalid (422) for anything this service did not issue.

    A cursor comes from the caller, so every value is checked to be of the type its key column
    holds before it reaches the database: a wrong type there would be a 500, not a 422.
    """
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("shape")
        out: list[Any] = []
        for value, kind in zip(raw, kinds, strict=True):
            if kind is datetime and isinstance(value, str):
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    raise ValueError("naive timestamp")
                out.append(moment)
            elif kind is date and isinstance(value, str):
                out.append(date.fromisoformat(value))
            elif kind is uuid.UUID and isinstance(value, str):
                out.append(uuid.UUID(value))
            elif (
                kind is int
                and isinstance(value, int)
                and not isinstance(value, bool)
                and -_INT64 <= value < _INT64
            ) or (kind is str and isinstance(value, str)):
                out.append(value)
            else:
                raise ValueError("type")
        return out
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid("The cursor is not one this service issued", field="query.cursor") from exc


# The page sizes the case list's prepared statement (``app.services.case_reads``) is written
# for: the request's rounded up to one of these, plus the row that tells whether another page
# follows, as a literal LIMIT. As a parameter, PostgreSQL never settled on a generic plan for
# that statement (its estimate for an unknown LIMIT looked worse than any custom plan's) and
# planned it again on every request: 0.4 ms of server CPU, three times its execution. Not a
# rule for every list: the action list's statement goes the other way (a bound LIMIT gets
# the generic plan, a literal one is planned every time), so each is measured. A few sizes
# keep the statements (and the server's prepared ones) few.
_FETCH_SIZES = (10, 25, 50, 100, MAX_LIMIT)


def fetch_size(limit: int) -> int:
    """The rows to fetch for a page of ``limit`` (``cut_page`` cuts them to the page)."""
    return next((size for size in _FETCH_SIZES if size >= limit), limit) + 1


def literal_limit(rows: int) -> ColumnElement[Any]:
    """``rows`` as a LIMIT written into the statement, not bound (see ``fetch_size``)."""
    return literal_column(str(int(rows)))


def cut_page(
    rows: list[T], limit: int, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """A page from ``limit + 1`` or more fetched rows, and the cursor after it if there are
    more (``key``: the row's key values, for the cursor)."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(key(rows[limit - 1]))


def paginate(
    session: Session,
    stmt: Select[Any],
    keys: Sequence[tuple[InstrumentedAttribute[Any] | Any, type]],
    cursor: str | None,
    limit: int,
    *,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """Run ``stmt`` ordered by ``keys`` from after ``cursor``; return rows and the next cursor.

    ``keys`` are (column, python type) pairs that together identify a row uniquely.
    """
    columns = [column for column, _ in keys]
    if cursor:
        after = decode_cursor(cursor, [kind for _, kind in keys])
        position = tuple_(*columns)
        # Bind each value with its column's type, so timestamps and UUIDs compare as stored.
        bound = tuple_(
            *[bindparam(None, v, type_=c.type) for c, v in zip(columns, after, strict=True)]
        )
        stmt = stmt.where(position < bound if descending else position > bound)
    order = [c.desc() for c in columns] if descending else columns
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, column.key) for column in columns])
