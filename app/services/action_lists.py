"""The action list (``GET /actions``), the overdue report every agency runs: a prepared
statement (``app.prepared``) built from the same visibility rule as every other action
query (``app.policies.actions_of_panels``), with the case reference and subject in the
same statement, and one audit event naming every case shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, not_, select, tuple_
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.clock import today
from app.models.action import Action, ActionStatus
from app.models.case import Case
from app.pagination import cut_page, decode_cursor
from app.permissions import Permission
from app.policies import actions_of_panels, managed_panel_ids, member_panel_ids
from app.prepared import Prepared, Query
from app.rawsql import Raw

_CURSOR_KINDS: list[type] = [date, uuid.UUID]
_OPEN = ActionStatus.OPEN.value
_ACTION = Action.__table__.c  # type: ignore[attr-defined]


def _param(name: str, column: str | None = None) -> Any:
    return bindparam(name, required=False, type_=None if column is None else _ACTION[column].type)


# An action list's row: the action, its case's reference and the case's subject (for the
# audit event), joined on the case. ``summary`` turns one into an ActionSummary.
SUMMARY_COLUMNS = (
    col(Action.id),
    col(Action.case_id),
    col(Action.panel_id),
    col(Action.conference_id),
    col(Action.description),
    col(Action.owner_agency_id),
    col(Action.owner_user_id),
    col(Action.due_date),
    col(Action.priority),
    col(Action.status),
    col(Action.not_done_reason),
    col(Action.not_done_detail),
    col(Action.resolved_at),
    col(Action.version),
    col(Case.reference),
    col(Case.subject_person_id),
)


def summaries(raw: Raw, rows: Sequence[Sequence[Any]], now: date) -> list[dict[str, Any]]:
    """Rows of SUMMARY_COLUMNS, as the driver returned them, as ``ActionSummary`` writes
    them: plain dicts for ``app.json_body``, no model per row. A due date stays as the
    driver gave it (SQLite's ISO text is what pydantic writes, and orders as dates do).
    One comprehension, no call per row or per id: an overdue list turns 51 rows and 300 ids
    a request (37 -> 26 µs, docs/performance.md, eighteenth round)."""
    today: date | str = now.isoformat() if raw.sqlite else now
    ident = raw.json_id_writer()
    stamp = raw.to_json_timestamp
    return [
        {
            "id": ident(r[0]),
            "case_id": ident(r[1]),
            "case_reference": r[14],
            "panel_id": ident(r[2]),
            "conference_id": r[3] and ident(r[3]),
            "description": r[4],
            "owner_agency_id": ident(r[5]),
            "owner_user_id": r[6] and ident(r[6]),
            "due_date": r[7],
            "priority": r[8],
            "status": r[9],
            "is_overdue": r[9] == _OPEN and r[7] < today,
            "not_done_reason": r[10],
            "not_done_detail": r[11],
            "resolved_at": r[12] and stamp(r[12]),
            "version": r[13],
        }
        for r in rows
    ]


def _build(actor: Actor, variant: Hashable) -> Query:
    """``variant``: how many managed and member-only panels, which filters, whether a cursor."""
    assert isinstance(variant, tuple)
    managed, member_only, by_agency, by_panel, by_status, overdue, after = variant
    visible = actions_of_panels(
        actor,
        [_param(f"managed_{i}", "panel_id") for i in range(managed)],
        [_param(f"member_{i}", "panel_id") for i in range(member_only)],
    )
    stmt = select(*SUMMARY_COLUMNS).join(Case, col(Case.id) == col(Action.case_id)).where(visible)
    if by_agency:
        stmt = stmt.where(col(Action.owner_agency_id) == _param("agency_id", "owner_agency_id"))
    if by_panel:
        stmt = stmt.where(col(Action.panel_id) == _param("panel_id", "panel_id"))
    if by_status:
        stmt = stmt.where(col(Action.status) == _param("status"))
    if overdue is not None:
        late = and_(col(Action.status) == _OPEN, col(Action.due_date) < _param("today", "due_date"))
        stmt = stmt.where(late if overdue else not_(late))
    if after:
        position = tuple_(col(Action.due_date), col(Action.id))
        stmt = stmt.where(
            position > tuple_(_param("after_due", "due_date"), _param("after_id", "id"))
        )
    return stmt.order_by(col(Action.due_date), col(Action.id)).limit(_param("limit"))


def _build_panels(actor: Actor, _variant: Hashable) -> Query:
    """The panels the actor takes part in, each with whether they run it: one statement
    (one round trip on PostgreSQL) where the two lists took two."""
    member = member_panel_ids(actor).subquery()
    return select(member.c.panel_id, member.c.panel_id.in_(managed_panel_ids(actor)))


_PANELS = Prepared(_build_panels)
_LIST = Prepared(_build)


def list_actions(
    session: Session,
    actor: Actor,
    agency_id: uuid.UUID | None,
    panel_id: uuid.UUID | None,
    status: ActionStatus | None,
    overdue: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """An agency's own actions; every action of the panels one runs. Soonest due first:
    ``ActionSummary`` rows, as plain dicts for ``app.json_body``."""
    raw = Raw(session)
    managed: list[Any] = []
    member_only: list[Any] = []
    if actor.can(Permission.ACTION_READ):
        panels = _PANELS.rows(raw, actor, {})
        managed = sorted({panel for panel, runs in panels if runs})
        member_only = sorted({panel for panel, runs in panels if not runs}.difference(managed))
    now = today()
    params: dict[str, Any] = {
        "agency_id": agency_id,
        "panel_id": panel_id,
        "status": None if status is None else status.value,
        "today": now,
        "limit": limit + 1,
        **{f"managed_{i}": p for i, p in enumerate(managed)},
        **{f"member_{i}": p for i, p in enumerate(member_only)},
    }
    if cursor:
        params["after_due"], params["after_id"] = decode_cursor(cursor, _CURSOR_KINDS)
    variant = (
        len(managed),
        len(member_only),
        agency_id is not None,
        panel_id is not None,
        status is not None,
        overdue,
        bool(cursor),
    )
    rows = _LIST.rows(raw, actor, params, variant) if managed or member_only else []
    # The cursor's due date as the driver gave it (SQLite's ISO text is what a date writes).
    rows, next_cursor = cut_page(rows, limit, lambda r: [r[7], raw.to_id_text(r[0])])
    items = summaries(raw, rows, now)
    shown: dict[Any, Any] = {}
    for item, r in zip(items, rows, strict=True):
        shown.setdefault(item["case_id"], r[15])
    audit.record(
        session,
        actor,
        AuditAction.ACTION_LIST,
        resource_type="action",
        detail={"returned": len(items)},
        subjects=list(shown.items()),
    )
    return items, next_cursor
