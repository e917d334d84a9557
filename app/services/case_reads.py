"""Reading a case and listing cases: the hot reads, as prepared statements (``app.prepared``).

The statements are built from the same visibility filter as every other case query
(``app.policies.visible_cases``), compiled once per kind of actor, and run through the
driver on the unit's connection; the audit event goes into the same transaction, as always.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, select, tuple_
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import NotFound
from app.models.case import (
    Case,
    CasePerson,
    CaseStatus,
)
from app.models.panel import Panel
from app.models.person import Person
from app.pagination import cut_page, decode_cursor, fetch_size, literal_limit
from app.policies import visible_cases
from app.prepared import Prepared, Query
from app.rawsql import Raw


def visible_case(
    session: Session, actor: Actor, case_id: uuid.UUID, *, for_update: bool = False
) -> Case:
    """A case the caller may see, as an ORM object (for the services that change it); to
    anyone else it does not exist (404)."""
    stmt = select(Case).where(col(Case.id) == case_id, visible_cases(actor))
    case = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if case is None:
        raise NotFound("case", case_id)
    return case


# Request values: named parameters, never values baked into a cached statement.
_CASE_ID: BindParameter[Any] = bindparam("case_id", required=False)
_CURSOR_KINDS: list[type] = [datetime, uuid.UUID]


def _build_read(actor: Actor, _variant: Hashable) -> Query:
    """The case, if visible, with its people (one row each; one row of NULLs for none): one
    statement, one round trip, where a case and then its people took two."""
    return (
        select(
            col(Case.id),
            col(Case.panel_id),
            col(Panel.panel_type),
            col(Case.reference),
            col(Case.status),
            col(Case.stage),
            col(Case.risk_level),
            col(Case.lead_agency_id),
            col(Case.keyworker_user_id),
            col(Case.subject_person_id),
            col(Case.is_repeat),
            col(Case.repeat_of_case_id),
            col(Case.opened_at),
            col(Case.last_heard_at),
            col(Case.closed_at),
            col(Case.close_reason),
            col(Case.version),
            col(CasePerson.person_id),
            col(CasePerson.role),
            col(Person.given_name),
            col(Person.family_name),
        )
        .join(Panel, col(Panel.id) == col(Case.panel_id))
        .outerjoin(CasePerson, col(CasePerson.case_id) == col(Case.id))
        .outerjoin(Person, col(Person.id) == col(CasePerson.person_id))
        .where(col(Case.id) == _CASE_ID, visible_cases(actor))
        .order_by(col(CasePerson.role), col(Person.family_name))
    )


def people_query(case_id: Any) -> Query:
    """A case's people with their names, in the order every view of a case lists them (the
    prepared read, ``_build_read``, joins them in the same order)."""
    return (
        select(
            col(CasePerson.person_id),
            col(CasePerson.role),
            col(Person.given_name),
            col(Person.family_name),
        )
        .join(Person, col(Person.id) == col(CasePerson.person_id))
        .where(col(CasePerson.case_id) == case_id)
        .order_by(col(CasePerson.role), col(Person.family_name))
    )


def _build_list(actor: Actor, variant: Hashable) -> Query:
    """``variant``: which of panel, status, risk level and cursor the request filters on, and
    the rows to fetch (``app.pagination.fetch_size``)."""
    assert isinstance(variant, tuple)
    by_panel, by_status, by_risk, after, fetch = variant
    stmt = select(
        col(Case.id),
        col(Case.panel_id),
        col(Case.reference),
        col(Case.status),
        col(Case.stage),
        col(Case.risk_level),
        col(Case.is_repeat),
        col(Case.opened_at),
        col(Case.version),
        col(Case.created_at),
        col(Case.subject_person_id),
    ).where(visible_cases(actor))
    if by_panel:
        stmt = stmt.where(col(Case.panel_id) == bindparam("panel_id", required=False))
    if by_status:
        stmt = stmt.where(col(Case.status) == bindparam("status", required=False))
    if by_risk:
        stmt = stmt.where(col(Case.risk_level) == bindparam("risk_level", required=False))
    position = tuple_(col(Case.created_at), col(Case.id))
    if after:
        bound = tuple_(
            bindparam("after_created_at", required=False, type_=Case.__table__.c.created_at.type),  # type: ignore[attr-defined]
            bindparam("after_id", required=False, type_=Case.__table__.c.id.type),  # type: ignore[attr-defined]
        )
        stmt = stmt.where(position > bound)
    return stmt.order_by(col(Case.created_at), col(Case.id)).limit(literal_limit(fetch))


_READ = Prepared(_build_read)
_LIST = Prepared(_build_list)


def get_case(session: Session, actor: Actor, case_id: uuid.UUID) -> dict[str, Any]:
    """One case with its people, if the caller may see it: ``CasePublic`` as a plain dict for
    ``app.json_body``."""
    raw = Raw(session)
    rows = _READ.rows(raw, actor, {"case_id": case_id})
    if not rows:
        raise NotFound("case", case_id)
    row = rows[0]
    audit.record(
        session,
        actor,
        AuditAction.CASE_READ,
        resource_type="case",
        resource_id=case_id,
        case_id=case_id,
        person_id=raw.to_uuid(row[9]),
    )
    json_id, json_timestamp = raw.to_json_id, raw.to_json_timestamp
    return {
        "id": case_id,
        "panel_id": json_id(row[1]),
        "panel_type": row[2],
        "reference": row[3],
        "status": row[4],
        "stage": row[5],
        "risk_level": row[6],
        "lead_agency_id": json_id(row[7]),
        "keyworker_user_id": json_id(row[8]),
        "subject_person_id": json_id(row[9]),
        "people": [
            {"person_id": json_id(p), "role": r, "given_name": g, "family_name": f}
            for p, r, g, f in (person[17:] for person in rows)
            if p is not None
        ],
        "is_repeat": bool(row[10]),
        "repeat_of_case_id": json_id(row[11]),
        "opened_at": json_timestamp(row[12]),
        "last_heard_at": json_timestamp(row[13]),
        "closed_at": json_timestamp(row[14]),
        "close_reason": row[15],
        "version": row[16],
    }


def list_cases(
    session: Session,
    actor: Actor,
    panel_id: uuid.UUID | None,
    status: CaseStatus | None,
    risk_level: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Cases the caller may see, oldest first: ``CaseSummary`` rows, as plain dicts for
    ``app.json_body``."""
    params: dict[str, Any] = {
        "panel_id": panel_id,
        "status": status.value if status is not None else None,
        "risk_level": risk_level,
    }
    if cursor:
        params["after_created_at"], params["after_id"] = decode_cursor(cursor, _CURSOR_KINDS)
    variant = (
        panel_id is not None,
        status is not None,
        risk_level is not None,
        bool(cursor),
        fetch_size(limit),
    )
    raw = Raw(session)
    rows = _LIST.rows(raw, actor, params, variant)
    rows, next_cursor = cut_page(rows, limit, lambda r: [raw.to_timestamp(r[9]), raw.to_uuid(r[0])])
    # Rows as CaseSummary writes them, for app.json_body: no model per row.
    items = [
        {
            "id": raw.to_json_id(r[0]),
            "panel_id": raw.to_json_id(r[1]),
            "reference": r[2],
            "status": r[3],
            "stage": r[4],
            "risk_level": r[5],
            "is_repeat": bool(r[6]),
            "opened_at": raw.to_json_timestamp(r[7]),
            "version": r[8],
        }
        for r in rows
    ]
    audit.record(
        session,
        actor,
        AuditAction.CASE_LIST,
        resource_type="case",
        detail={"returned": len(items)},
        subjects=[(item["id"], r[10]) for item, r in zip(items, rows, strict=True)],
    )
    return items, next_cursor
