"""Sealing the audit log into an HMAC chain, and verifying that chain.

Events are chained in the order the sealer takes them from the queue, not in id order: on
PostgreSQL a transaction holding id 9 can commit after the one holding id 10, so id order is
not commit order. The queue makes sure every committed event is sealed exactly once, however
late it commits. Each seal is HMAC-SHA256 over (previous hash, chain index, the event's
canonical content), keyed with a secret the database does not hold.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Row, exists, func, select
from sqlalchemy.orm import Session

from app.models.audit import (
    SUBJECT_EPOCH_EVENTS,
    AuditEvent,
    AuditSeal,
    AuditSubject,
    AuditUnsealed,
    AuditVerification,
    ChainBreak,
    subject_epoch,
)
from app.models.base import utcnow
from app.rawsql import Raw, Remembered

GENESIS = "0" * 64
_PG_SEAL_LOCK = 0x5EA1_0001
_VERIFY_BATCH = 5000

_ev = AuditEvent.__table__  # type: ignore[attr-defined]
_seal = AuditSeal.__table__  # type: ignore[attr-defined]
_queue = AuditUnsealed.__table__  # type: ignore[attr-defined]
_subject = AuditSubject.__table__  # type: ignore[attr-defined]

CONTENT_COLUMNS = (
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_agency_id",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "case_id",
    "person_id",
    "purpose",
    "source_ip",
    "request_id",
    "changes",
    "detail",
)
_content = [_ev.c[name] for name in CONTENT_COLUMNS]


def chain_key(secret_key: str, audit_key: str | None) -> bytes:
    """The HMAC key: the configured audit key, or one derived from the service secret."""
    if audit_key:
        return audit_key.encode()
    return hmac.new(
        secret_key.encode(), b"safeguarding-panels/audit-chain", hashlib.sha256
    ).digest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def seal_hash(key: bytes, prev_hash: str, chain_index: int, content: Sequence[Any]) -> str:
    """The seal of one event: ``content`` is its ``CONTENT_COLUMNS`` in canonical form."""
    message = f"{prev_hash}|{chain_index}|".encode() + canonical_json(list(content))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# The canonical text of an event, as the chain has always hashed it: the standard library's
# ``json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in
# UTF-8. orjson writes the same bytes for the same value when it holds no float (it writes
# floats and NaN its own way), 20 times faster: a list read's event names a hundred ids.
_STDLIB = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)
_LEAVES = frozenset({str, int, bool, type(None)})
_JSON_KINDS = _LEAVES | {list, dict}


def canonical_json(content: Any) -> bytes:
    """``content``'s canonical text (above), in UTF-8."""
    if _without_floats(content):
        try:
            return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            pass  # what orjson refuses (an integer past 64 bits, a key not text): as ever
    return _STDLIB.encode(content).encode()


def _without_floats(value: Any) -> bool:
    """Whether ``value`` is made of nothing but text, integers, booleans, nulls, lists and
    dicts: no float, and no other type whose text orjson might write otherwise. Level by
    level, a level of one kind in one C call (an event's fifty [case, person] pairs)."""
    level = [value]
    while level:
        kinds = set(map(type, level))
        if kinds <= _LEAVES:
            return True
        if kinds == {list}:
            level = list(chain.from_iterable(level))
        elif kinds == {dict}:
            level = list(chain.from_iterable(map(dict.values, level)))
        elif kinds <= _JSON_KINDS:
            below: list[Any] = []
            for item in level:
                if item.__class__ is list:
                    below.extend(item)
                elif item.__class__ is dict:
                    below.extend(item.values())
            level = below
        else:
            return False
    return True


def _row_content(row: Row[Any]) -> list[Any]:
    """An event's content as SQLAlchemy reads it (the verification's side)."""
    mapping = row._mapping
    return [_canonical(mapping[name]) for name in CONTENT_COLUMNS]


# The sealer's side reads the same columns through the driver (app.rawsql): it seals every
# event the service writes, and through SQLAlchemy's result processing it cost ~25 µs of
# CPU an event, twice as much. The verification reads them through SQLAlchemy, so a sealer
# that canonicalised a value differently would fail verification (tests/test_audit_log.py).
_PENDING_SQL = (
    "SELECT e."  # noqa: S608 (constants only)
    + ", e.".join(CONTENT_COLUMNS)
    + " FROM audit_event e JOIN audit_unsealed q ON q.event_id = e.id"
    " ORDER BY q.event_id LIMIT ?"
)
_HEAD_SQL = "SELECT chain_index, hash FROM audit_seal ORDER BY chain_index DESC LIMIT 1"
_INSERT_SEAL = (
    "INSERT INTO audit_seal (event_id, chain_index, prev_hash, hash, sealed_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
_UNQUEUE = "DELETE FROM audit_unsealed WHERE event_id = ?"
# On PostgreSQL, one statement per batch, its rows as one JSON array (orjson writes it in C):
# psycopg's ``executemany`` sends and checks each row on its own, and its array parameters
# are dumped element by element in Python (measured on the benchmark machine, the whole
# sealer: ~200 µs of CPU an event with ``executemany``, ~105 µs with this).
_INSERT_SEALS_PG = (
    "INSERT INTO audit_seal (event_id, chain_index, prev_hash, hash, sealed_at)"
    " SELECT e, i, p, h, ? FROM json_to_recordset(?::json) AS t(e bigint, i bigint, p text, h text)"
)
_UNQUEUE_PG = (
    "DELETE FROM audit_unsealed WHERE event_id IN"
    " (SELECT value::bigint FROM json_array_elements_text(?::json))"
)
_TIMESTAMP = CONTENT_COLUMNS.index("occurred_at")
_IDS = tuple(
    CONTENT_COLUMNS.index(name) for name in ("actor_id", "actor_agency_id", "case_id", "person_id")
)
_JSON = tuple(CONTENT_COLUMNS.index(name) for name in ("changes", "detail"))
_DETAIL = CONTENT_COLUMNS.index("detail")


def _driver_content(raw: Raw, row: Sequence[Any]) -> list[Any]:
    """An event's content from the driver's row, in the same canonical form as
    ``_row_content`` gives from SQLAlchemy's."""
    content = list(row)
    occurred = raw.to_timestamp(content[_TIMESTAMP])
    assert occurred is not None
    content[_TIMESTAMP] = occurred.isoformat(timespec="microseconds")
    for i in _IDS:
        content[i] = raw.to_id_text(content[i])
    for i in _JSON:
        content[i] = raw.to_json(content[i])
    return content


def seal_pending(
    session: Session, key: bytes, *, batch: int = 2000, subjects: int | None = None
) -> int:
    """Chain up to ``batch`` queued events onto the head of the chain; return how many."""
    return seal_next(session, key, batch=batch, subjects=subjects)[0]


def seal_next(
    session: Session, key: bytes, *, batch: int, subjects: int | None = None
) -> tuple[int, bool]:
    """Chain up to ``batch`` queued events onto the head of the chain; return how many, and
    whether a limit stopped the batch (so more were waiting).

    ``subjects``: also stop before the events' ``detail["subjects"]`` pass this many in all
    (the first event is always sealed). A list read's event names up to a hundred cases, and
    each is indexed here: the service's sealer bounds a batch's work by them, as on SQLite it
    runs on the event loop between requests."""
    raw = Raw(session)
    # One sealer at a time across all workers on PostgreSQL; the others skip this round.
    # (SQLite's BEGIN IMMEDIATE already admits one writer at a time.)
    if not raw.sqlite:
        locked = raw.one("SELECT pg_try_advisory_xact_lock(?)", (_PG_SEAL_LOCK,))
        if not (locked and locked[0]):
            return 0, False
    head = raw.one(_HEAD_SQL, ())
    index, prev = (head[0] + 1, head[1]) if head else (0, GENESIS)
    events, limited = _pending(raw, batch, subjects)
    if not events:
        return 0, False
    now = raw.timestamp(utcnow())
    seals = []
    for content in events:
        digest = seal_hash(key, prev, index, content)
        seals.append((content[0], index, prev, digest))
        prev, index = digest, index + 1
    ids = [seal[0] for seal in seals]
    if raw.sqlite:
        raw.run_many(_INSERT_SEAL, [(*seal, now) for seal in seals])
    else:
        rows = [{"e": e, "i": i, "p": p, "h": h} for e, i, p, h in seals]
        raw.run(_INSERT_SEALS_PG, (now, orjson.dumps(rows).decode()))
    _index_subjects(raw, ids, events)
    if raw.sqlite:
        raw.run_many(_UNQUEUE, [(event_id,) for event_id in ids])
    else:
        raw.run(_UNQUEUE_PG, (orjson.dumps(ids).decode(),))
    return len(events), limited


def _pending(raw: Raw, batch: int, subjects: int | None) -> tuple[list[list[Any]], bool]:
    """The next queued events, in queue order, up to ``batch`` and, with ``subjects``, up to
    the last one whose subjects stay within that budget (the first is always taken); and
    whether either limit was reached. Rows past the budget are left unread: a list read's
    event is a hundred ids of JSON."""
    events: list[list[Any]] = []
    for row in raw.each(_PENDING_SQL, (batch,)):
        content = _driver_content(raw, row)
        if subjects is not None:
            subjects -= len(_subject_pairs(content[_DETAIL]))
            if subjects < 0 and events:
                return events, True
        events.append(content)
    return events, len(events) == batch


_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The cases of a batch's events' detail["subjects"], indexed from the events as sealed: each
# [case id, ...] pair whose case id is a UUID's text (lower case, as the service writes it),
# once an event. The same choice as _subject_cases makes from the event as read (which
# verify_chain checks the index against); what is no such pair is left out, so verify_chain
# reports the event (its index no longer says what its sealed content says) instead of the
# sealer stopping. On SQLite the pairs are picked from the content the sealer has just
# parsed and hashed, and written in key order: picking them in SQL made SQLite parse every
# pair's text again (measured on a benchmark database, 3.1-3.8 µs a pair indexed that way,
# 2.3 µs this way; the sealer runs on the event loop there).
_SUBJECT_COLUMNS = ("epoch", "case_id", "event_id")


def _case_key(text: str) -> str | None:
    """A subject's case id as SQLite's index stores it (32 hex digits), or None if the text
    is not a UUID's as the service writes it."""
    return text.replace("-", "") if _UUID_TEXT.fullmatch(text) else None


# Remembered: a list read names the same page of cases request after request, and the match
# and the rewrite cost ten times the lookup (the sealer runs on the event loop on SQLite).
_CASE_KEYS = Remembered(_case_key)
_EPOCH_OF_ROW, _CASE_OF_ROW = itemgetter(0), itemgetter(1)
# On PostgreSQL the database picks them from the events as stored, off the service's CPU.
_INDEX_SUBJECTS_PG = (
    "INSERT INTO audit_subject (epoch, case_id, event_id)"
    " SELECT DISTINCT e.id / ?, (s.value->>0)::uuid, e.id"
    " FROM audit_event e,"
    " json_array_elements(CASE WHEN json_typeof(e.detail->'subjects') = 'array'"
    " THEN e.detail->'subjects' ELSE '[]'::json END) s"
    " WHERE e.id IN (SELECT value::bigint FROM json_array_elements_text(?::json))"
    " AND json_typeof(s.value) = 'array' AND json_typeof(s.value->0) = 'string'"
    " AND s.value->>0 ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
    " ORDER BY 1, 2, 3"
)


def _subject_pairs(detail: Any) -> list[Any]:
    """An event's ``detail["subjects"]``, or none if it has no such list."""
    pairs = detail.get("subjects") if isinstance(detail, dict) else None
    return pairs if isinstance(pairs, list) else []


def _subject_cases(detail: Any) -> set[str]:
    """The case ids a sealed event's ``detail["subjects"]`` names, as written there.
    Anything but [case id, ...] comes back as its repr, which no index row can match."""
    return {
        pair[0] if pair.__class__ is list and pair and pair[0].__class__ is str else repr(pair)
        for pair in _subject_pairs(detail)
    }


def _index_subjects(raw: Raw, event_ids: list[int], events: list[list[Any]]) -> None:
    """Index the cases of the events' sealed ``detail["subjects"]`` in ``audit_subject``.

    Written here rather than by each request: a page of fifty random case ids touches fifty
    index pages, on every request if written there, once per batch here, in key order (a
    batch names a few thousand cases).
    """
    if not raw.sqlite:
        raw.run(_INDEX_SUBJECTS_PG, (SUBJECT_EPOCH_EVENTS, orjson.dumps(event_ids).decode()))
        return
    rows: list[tuple[int, str, int]] = []
    for content in events:
        pairs = _subject_pairs(content[_DETAIL])
        if not pairs:
            continue
        event_id = content[0]
        epoch = subject_epoch(event_id)
        cases = {
            key
            for pair in pairs
            if pair.__class__ is list
            and pair
            and pair[0].__class__ is str
            and (key := _CASE_KEYS[pair[0]]) is not None
        }
        rows.extend([(epoch, case, event_id) for case in cases])
    # Key order, (epoch, case, event): two stable sorts on one column each, the events
    # already in id order (the queue's), cost a third of sorting the tuples (~15 µs an
    # event of fifty cases, docs/performance.md, eighteenth round).
    rows.sort(key=_CASE_OF_ROW)
    rows.sort(key=_EPOCH_OF_ROW)
    raw.insert_values("audit_subject", _SUBJECT_COLUMNS, rows)


def verify_chain(session: Session, key: bytes) -> AuditVerification:
    """Walk the whole chain from genesis and report the first event that does not verify."""
    expected, prev = 0, GENESIS
    first_break: ChainBreak | None = None
    while first_break is None:
        rows: Sequence[Row[Any]] = session.execute(
            select(
                _seal.c.chain_index, _seal.c.prev_hash, _seal.c.hash, _seal.c.event_id, *_content
            )
            .select_from(_seal.outerjoin(_ev, _ev.c.id == _seal.c.event_id))
            .where(_seal.c.chain_index >= expected)
            .order_by(_seal.c.chain_index)
            .limit(_VERIFY_BATCH)
        ).all()
        if not rows:
            break
        indexed = _indexed_subjects(session, [row.id for row in rows if row.id is not None])
        for row in rows:
            first_break = _check(row, expected, prev, key) or _check_subjects(row, indexed)
            if first_break is not None:
                break
            expected, prev = expected + 1, row.hash
    unsealed = session.execute(select(func.count()).select_from(_queue)).scalar_one()
    if first_break is None:
        first_break = _orphan_break(session)
    return AuditVerification(
        ok=first_break is None,
        sealed_events=expected,
        unsealed_events=unsealed,
        head_chain_index=expected - 1 if expected else None,
        head_hash=prev if expected else None,
        first_break=first_break,
        verified_at=utcnow(),
    )


def _check(row: Row[Any], expected: int, prev: str, key: bytes) -> ChainBreak | None:
    if row.chain_index != expected:
        return ChainBreak(chain_index=expected, event_id=None, reason=f"seal {expected} is missing")
    if row.id is None:
        return ChainBreak(
            chain_index=expected, event_id=row.event_id, reason="sealed event has been deleted"
        )
    if row.prev_hash != prev:
        return ChainBreak(
            chain_index=expected,
            event_id=row.id,
            reason="seal does not link to the previous seal",
        )
    if not hmac.compare_digest(seal_hash(key, prev, expected, _row_content(row)), row.hash):
        return ChainBreak(
            chain_index=expected,
            event_id=row.id,
            reason="event content does not match its seal (altered after it was recorded)",
        )
    return None


def _indexed_subjects(session: Session, event_ids: list[int]) -> dict[int, set[str]]:
    """The cases ``audit_subject`` holds for these events, read by the epochs their ids give
    (the index's first key; it has no index by event). A row filed under another epoch than
    its event's is not one the sealer wrote: it is not found here, so its event's index reads
    short of its sealed content, and ``_orphan_break`` reports any such row."""
    found: dict[int, set[str]] = {}
    if not event_ids:
        return found
    wanted = set(event_ids)
    epochs = sorted({subject_epoch(event_id) for event_id in wanted})
    for epoch, event_id, case_id in session.execute(
        select(_subject.c.epoch, _subject.c.event_id, _subject.c.case_id).where(
            _subject.c.epoch.in_(epochs)
        )
    ):
        if event_id in wanted and epoch == subject_epoch(event_id):
            found.setdefault(event_id, set()).add(_canonical(case_id))
    return found


def _check_subjects(row: Row[Any], indexed: dict[int, set[str]]) -> ChainBreak | None:
    """The index of who saw what must say what the sealed event says: a row deleted from it
    would hide a read from "who saw this case", one added would invent one."""
    if indexed.get(row.id, set()) == _subject_cases(row.detail):
        return None
    return ChainBreak(
        chain_index=row.chain_index,
        event_id=row.id,
        reason="the index of the cases it showed does not match the event's sealed subjects",
    )


def _orphan_break(session: Session) -> ChainBreak | None:
    """A row written outside the service: an event neither sealed nor queued, a queue or
    index row naming no event (they name it without a foreign key: app.models.audit), or an
    index row filed under another epoch than its event's (which verification, reading each
    event's rows by its own epoch, would not otherwise see)."""
    checks: list[tuple[Any, str]] = [
        (
            select(_ev.c.id)
            .where(~exists().where(_seal.c.event_id == _ev.c.id))
            .where(~exists().where(_queue.c.event_id == _ev.c.id))
            .order_by(_ev.c.id),
            "event is neither sealed nor queued for sealing (written outside the service)",
        ),
        *(
            (
                select(table.c.event_id)
                .where(~exists().where(_ev.c.id == table.c.event_id))
                .order_by(table.c.event_id),
                f"the {what} names an event that does not exist",
            )
            for table, what in ((_queue, "queue"), (_subject, "subject index"))
        ),
        (
            select(_subject.c.event_id)
            .where(_subject.c.epoch != _subject.c.event_id // SUBJECT_EPOCH_EVENTS)
            .order_by(_subject.c.event_id),
            "the subject index files the event under another epoch than its own",
        ),
    ]
    for query, reason in checks:
        found = session.execute(query.limit(1)).scalar()
        if found is not None:
            return ChainBreak(chain_index=None, event_id=found, reason=reason)
    return None
