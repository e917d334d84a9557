"""Reading a conference's agenda: the cases listed on it, in order, with their outstanding
actions for review, and (for the panel's managers) suggestions of what to list next.

Every coordinator opens the agenda many times a day, so its statements are prepared
(``app.prepared``): built from the same visibility rules as every other query
(``app.policies``), compiled once per kind of actor and run through the driver. Building and
compiling them on each request cost ten times what the database spent answering them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, exists, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit, json_body
from app.actor import Actor
from app.audit import AuditAction
from app.clock import today
from app.errors import NotFound
from app.models.action import Action, ActionStatus
from app.models.agenda import AgendaPublic, SuggestionReason
from app.models.case import Case, CaseStatus
from app.models.conference import UPCOMING, Conference, Listing
from app.models.panel import MANAGING_ROLES, Panel
from app.models.person import Person
from app.policies import not_excluded, visible_cases, visible_conferences
from app.prepared import Prepared, Query
from app.rawsql import Raw
from app.services import action_lists, actions
from app.services.panels import role_query

SUGGESTIONS_SHOWN = 50

_CONFERENCE_ID: BindParameter[Any] = bindparam("conference_id", required=False)
_PANEL_ID: BindParameter[Any] = bindparam("panel_id", required=False)
# Today's date is a request value too: a date baked into a cached statement goes stale.
_TODAY: BindParameter[Any] = bindparam(
    "today",
    required=False,
    type_=Action.__table__.c.due_date.type,  # type: ignore[attr-defined]
)
_OPEN_ACTION = ActionStatus.OPEN.value
# A suggestion's reasons, as written: an enum member's ``.value`` costs a descriptor call.
_AWAITING = [SuggestionReason.AWAITING_LISTING.value]
_OVERDUE = [SuggestionReason.OVERDUE_ACTIONS.value]
_BOTH = _AWAITING + _OVERDUE


def _build_conference(actor: Actor, _variant: Hashable) -> Query:
    """The conference, if the caller may see it, with the caller's role on its panel and the
    panel's agenda token (one statement where three took three round trips on PostgreSQL)."""
    return select(
        col(Conference.id),
        col(Conference.panel_id),
        col(Conference.status),
        col(Conference.agenda_published_at),
        col(Conference.version),
        role_query(actor, col(Conference.panel_id)).scalar_subquery(),
        select(col(Panel.agenda_token))
        .where(col(Panel.id) == col(Conference.panel_id))
        .scalar_subquery(),
    ).where(col(Conference.id) == _CONFERENCE_ID, visible_conferences(actor))


def _listed() -> Any:
    return select(col(Listing.case_id)).where(col(Listing.conference_id) == _CONFERENCE_ID)


def _build_listings(actor: Actor, manages: Hashable) -> Query:
    """The listings the caller may see: the panel's managers see every case of it but those
    excluding their agency; other members, the cases visible to them."""
    shown = not_excluded(col(Case.id), actor) if manages else visible_cases(actor)
    return (
        select(
            col(Listing.id),
            col(Listing.position),
            col(Listing.created_at),
            col(Case.id),
            col(Case.reference),
            col(Case.status),
            col(Case.risk_level),
            col(Case.is_repeat),
            col(Case.subject_person_id),
            col(Person.given_name),
            col(Person.family_name),
        )
        .join(Case, col(Case.id) == col(Listing.case_id))
        .join(Person, col(Person.id) == col(Case.subject_person_id))
        .where(
            col(Listing.conference_id) == _CONFERENCE_ID,
            col(Case.id).in_(select(col(Case.id)).where(col(Case.id).in_(_listed()), shown)),
        )
        .order_by(col(Listing.position), col(Listing.id))
    )


def _build_outstanding(_actor: Actor, _variant: Hashable) -> Query:
    """The open actions of every listed case; those of cases the caller may not see are
    fetched but never shown."""
    return (
        select(*action_lists.SUMMARY_COLUMNS)
        .join(Case, col(Case.id) == col(Action.case_id))
        .where(col(Action.case_id).in_(_listed()), col(Action.status) == _OPEN_ACTION)
        .order_by(col(Action.due_date), col(Action.id))
    )


def _late(case_id: Any) -> Any:
    """The case's open actions past their due date."""
    return and_(col(Action.case_id) == case_id, actions.overdue_clause(_TODAY))


def _build_suggestions(actor: Actor, heard: Hashable) -> Query:
    """The panel's open cases not listed on an upcoming conference that await their first
    hearing (``heard`` False) or, heard before, have overdue actions (``heard`` True); each
    row with its count of overdue actions. Open cases heard before are few next to those
    awaiting a first hearing: found on the (panel_id, last_heard_at) index."""
    upcoming = (
        select(col(Listing.case_id))
        .join(Conference, col(Conference.id) == col(Listing.conference_id))
        .where(col(Conference.panel_id) == _PANEL_ID, col(Conference.status).in_(UPCOMING))
    )
    overdue_count = select(func.count()).where(_late(col(Case.id))).scalar_subquery()
    stmt = select(
        col(Case.id),
        col(Case.reference),
        col(Case.risk_level),
        col(Case.is_repeat),
        col(Case.opened_at),
        col(Case.created_at),
        col(Case.last_heard_at),
        col(Case.subject_person_id),
        overdue_count,
    ).where(
        col(Case.panel_id) == _PANEL_ID,
        col(Case.status) == CaseStatus.OPEN.value,
        not_excluded(col(Case.id), actor),
        col(Case.id).not_in(upcoming),
    )
    if heard:
        # The same condition twice, for two planners: SQLite drives from the IN list (found
        # on the (panel_id, last_heard_at) index), and PostgreSQL, seeing only the IN,
        # walked every open case in creation order looking for the few (11 ms against
        # 0.5 ms with the condition on the case itself, at 10,000 cases).
        late = Case.__table__.alias("heard")  # type: ignore[attr-defined]
        stmt = stmt.where(
            col(Case.last_heard_at).is_not(None),
            col(Case.id).in_(
                select(late.c.id).where(
                    late.c.panel_id == _PANEL_ID,
                    late.c.last_heard_at.is_not(None),
                    late.c.status == CaseStatus.OPEN.value,
                    exists().where(_late(late.c.id)),
                )
            ),
        )
    else:
        stmt = stmt.where(col(Case.last_heard_at).is_(None))
    return stmt.order_by(col(Case.created_at), col(Case.id)).limit(SUGGESTIONS_SHOWN)


_CONFERENCE = Prepared(_build_conference)
_LISTINGS = Prepared(_build_listings)
_OUTSTANDING = Prepared(_build_outstanding)
_SUGGESTIONS = Prepared(_build_suggestions)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What of the agenda the caller is shown, as the conference's row decides."""

    panel_id: Any
    manages: bool  # the panel's coordinator or chair
    items: bool  # the listings: to its managers always, to other members once published
    suggests: bool  # to its managers while the conference is upcoming


def _plan(actor: Actor, conference: tuple[Any, ...]) -> _Plan:
    _, panel_id, status, published_at, _, role, _ = conference
    # A role is a user's, held while their agency is a member (as panel_role_of says).
    manages = actor.id is not None and actor.agency_id is not None and role in MANAGING_ROLES
    return _Plan(
        panel_id,
        manages,
        items=manages or published_at is not None,
        suggests=manages and status in UPCOMING,
    )


@dataclass(frozen=True, slots=True)
class _Built:
    """An agenda as built for one caller, and what it was built from."""

    # The conference's row (its panel's agenda token among its values) and the day.
    stamp: tuple[Any, ...]
    body: dict[str, Any]  # shared by every read that reuses it: never changed
    json: bytes  # the body as the route sends it
    subjects: list[list[str | None]]  # the audit event's, as its text writes them


# The last agenda built for each caller and conference (at most _BUILT_KEPT). It is shown
# again, without a statement more, while the conference's row and its panel's agenda token
# read as they did when it was built, on the same day: the database changes the token
# whenever anything an agenda of the panel shows changes (the triggers of migration
# 7c41e2a9b053), in the transaction that changes it. Kept per caller, as who may see what
# differs by caller; the read is audited, naming every case it shows, each time.
_BUILT: dict[tuple[Any, ...], _Built] = {}
_BUILT_KEPT = 256


def _keep(key: tuple[Any, ...], built: _Built) -> None:
    if len(_BUILT) >= _BUILT_KEPT and key not in _BUILT:
        del _BUILT[next(iter(_BUILT))]
    _BUILT[key] = built


def _statements(
    raw: Raw, actor: Actor, conference_id: uuid.UUID, plan: _Plan
) -> list[tuple[str, list[Any]]]:
    """The plan's statements: listings and their outstanding actions, then suggestions (of
    cases awaiting a first hearing, then of cases heard with overdue actions)."""
    out = []
    if plan.items:
        params: dict[str, Any] = {"conference_id": conference_id}
        out += [
            _LISTINGS.statement(raw, actor, params, plan.manages),
            _OUTSTANDING.statement(raw, actor, params),
        ]
    if plan.suggests:
        params = {"panel_id": plan.panel_id, "today": today()}
        out += [
            _SUGGESTIONS.statement(raw, actor, params, False),
            _SUGGESTIONS.statement(raw, actor, params, True),
        ]
    return out


def _listings(
    raw: Raw, conference_id: uuid.UUID, rows: list[tuple[Any, ...]], actions: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    outstanding: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    if rows:
        for action, row in zip(action_lists.summaries(raw, actions, today()), actions, strict=True):
            outstanding[row[1]].append(action)
    return [
        {
            "id": raw.to_json_id(r[0]),
            "conference_id": conference_id,
            "position": r[1],
            "case_id": raw.to_json_id(r[3]),
            "case_reference": r[4],
            "case_status": r[5],
            "risk_level": r[6],
            "is_repeat": bool(r[7]),
            "subject_person_id": raw.to_json_id(r[8]),
            "subject_name": f"{r[9]} {r[10]}",
            "outstanding_actions": outstanding[r[3]],
            "created_at": raw.to_json_timestamp(r[2]),
        }
        for r in rows
    ]


def _reasons(heard_at: Any, overdue: int) -> list[str]:
    if heard_at is None:
        return list(_BOTH if overdue else _AWAITING)
    return list(_OVERDUE) if overdue else []


def _suggestions(
    raw: Raw, awaiting: list[tuple[Any, ...]], heard: list[tuple[Any, ...]]
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """For the panel's managers: the cases to consider listing, oldest first, and their rows
    (for the audit event's subjects)."""
    rows = [*awaiting, *heard]
    rows.sort(key=lambda r: (r[5], r[0]))
    rows = rows[:SUGGESTIONS_SHOWN]
    out = [
        {
            "case_id": raw.to_json_id(r[0]),
            "case_reference": r[1],
            "reasons": _reasons(heard_at=r[6], overdue=r[8]),
            "risk_level": r[2],
            "is_repeat": bool(r[3]),
            "opened_at": raw.to_json_timestamp(r[4]),
            "overdue_actions": r[8],
        }
        for r in rows
    ]
    return out, rows


def agenda_body(session: Session, actor: Actor, conference_id: uuid.UUID) -> dict[str, Any]:
    """The agenda as the caller may see it (to the panel's managers always, with suggestions
    while the conference is upcoming; to other members once published), audited in one event
    naming every case it shows. A conference the caller may not see does not exist (404).

    As ``AgendaPublic`` writes it: plain dicts for ``app.json_body``, no model per row."""
    return _agenda(session, actor, conference_id).body


def agenda_json(session: Session, actor: Actor, conference_id: uuid.UUID) -> tuple[bytes, int]:
    """``agenda_body`` as JSON (``app.json_body.dumps``), and the conference's version."""
    built = _agenda(session, actor, conference_id)
    return built.json, built.body["version"]


def _agenda(session: Session, actor: Actor, conference_id: uuid.UUID) -> _Built:
    session.flush()  # a service that changed the agenda through the ORM reads it back here
    raw = Raw(session)
    conference = _CONFERENCE.row(raw, actor, {"conference_id": conference_id})
    if conference is None:
        raise NotFound("conference", conference_id)
    key = (conference_id, actor.kind, actor.id, actor.agency_id, actor.roles, actor.scopes)
    stamp = (*conference, today())
    built = _BUILT.get(key)
    if built is None or built.stamp != stamp:
        built = _build(raw, actor, conference_id, conference, stamp)
        _keep(key, built)
    audit.record(
        session,
        actor,
        AuditAction.AGENDA_READ,
        resource_type="conference",
        resource_id=conference_id,
        subject_texts=built.subjects,
    )
    return built


def _build(
    raw: Raw,
    actor: Actor,
    conference_id: uuid.UUID,
    conference: tuple[Any, ...],
    stamp: tuple[Any, ...],
) -> _Built:
    plan = _plan(actor, conference)
    rest = iter(raw.all_each(_statements(raw, actor, conference_id, plan), generic_plans=True))
    items = _listings(raw, conference_id, next(rest), next(rest)) if plan.items else []
    suggestions, suggested = (
        _suggestions(raw, next(rest), next(rest)) if plan.suggests else (None, [])
    )
    _, _, status, published_at, version, _, _ = conference
    body = {
        "conference_id": conference_id,
        "status": status,
        "agenda_published_at": raw.to_json_timestamp(published_at),
        "items": items,
        "suggestions": suggestions,
        "version": version,
    }
    shown = [
        *((item["case_id"], item["subject_person_id"]) for item in items),
        *((s["case_id"], r[7]) for s, r in zip(suggestions or [], suggested, strict=True)),
    ]
    subjects = [[raw.to_id_text(case), raw.to_id_text(person)] for case, person in shown]
    return _Built(stamp, body, json_body.dumps(body), subjects)


def agenda(session: Session, actor: Actor, conference_id: uuid.UUID) -> AgendaPublic:
    """``agenda_body`` as a model, for the services that change the agenda and answer with it."""
    return AgendaPublic.model_validate(agenda_body(session, actor, conference_id))
