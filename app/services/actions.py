"""Actions: set for a case by the panel's managers (in a conference or between meetings),
carried out and reported on by the owning agency, every change kept as history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor, ActorKind
from app.audit import AuditAction
from app.clock import EARLIEST_YEAR, LATEST_YEAR, plausible, today
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.action import (
    Action,
    ActionCreate,
    ActionPatch,
    ActionPublic,
    ActionStatus,
    ActionSummary,
    ActionUpdate,
    ActionUpdatePublic,
    NotDoneReason,
)
from app.models.base import utcnow
from app.models.case import Case, CaseExclusion, CaseStatus
from app.models.conference import Conference, ConferenceStatus, Listing
from app.models.panel import MANAGING_ROLES, PanelMember, PanelRoleName
from app.models.user import User
from app.policies import visible_actions, visible_cases, visible_conferences
from app.services.case_reads import visible_case
from app.services.panels import panel_role_of

# A conference sets actions while it sits and until its minutes are finalised.
SETTING = frozenset({ConferenceStatus.IN_PROGRESS.value, ConferenceStatus.CONCLUDED.value})
_TERMS = ("description", "owner_agency_id", "owner_user_id", "due_date", "priority")


def overdue_clause(on: date | ColumnElement[Any]) -> Any:
    """Open and past due on ``on``: a date, or a bound parameter (a prepared statement's)."""
    return and_(col(Action.status) == ActionStatus.OPEN.value, col(Action.due_date) < on)


def summaries(session: Session, actions: Sequence[Action]) -> list[ActionSummary]:
    references = dict(
        session.execute(
            select(col(Case.id), col(Case.reference)).where(
                col(Case.id).in_({a.case_id for a in actions})
            )
        ).all()
    )
    now = today()
    return [
        ActionSummary.model_validate(
            {
                **a.model_dump(),
                "case_reference": references[a.case_id],
                "is_overdue": a.status == ActionStatus.OPEN.value and a.due_date < now,
            }
        )
        for a in actions
    ]


def _public(session: Session, action: Action) -> ActionPublic:
    history = session.scalars(
        select(ActionUpdate)
        .where(col(ActionUpdate.action_id) == action.id)
        .order_by(col(ActionUpdate.created_at), col(ActionUpdate.id))
    ).all()
    (summary,) = summaries(session, [action])
    return ActionPublic.model_validate(
        {
            **summary.model_dump(),
            "created_by_id": action.created_by_id,
            "created_at": action.created_at,
            "updated_at": action.updated_at,
            "history": [ActionUpdatePublic.model_validate(h) for h in history],
        }
    )


def _audit(session: Session, actor: Actor, action: Action, what: AuditAction, **extra: Any) -> None:
    person_id = session.scalar(
        select(col(Case.subject_person_id)).where(col(Case.id) == action.case_id)
    )
    audit.record(
        session,
        actor,
        what,
        resource_type="action",
        resource_id=action.id,
        case_id=action.case_id,
        person_id=person_id,
        **extra,
    )


def _history(
    session: Session,
    actor: Actor,
    action: Action,
    *,
    note: str | None = None,
    status_from: str | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    session.add(
        ActionUpdate(
            action_id=action.id,
            note=note,
            status_from=status_from,
            status_to=action.status if status_from != action.status else None,
            not_done_reason=action.not_done_reason if status_from != action.status else None,
            changes=changes or None,
            actor_kind=actor.kind.value,
            actor_id=actor.required_id,
            actor_agency_id=actor.agency_id,
        )
    )


def _check_owner(
    session: Session, case: Case, agency_id: uuid.UUID, user_id: uuid.UUID | None
) -> None:
    """An action's owner is a member agency of the panel that the case does not exclude;
    its named person, if any, an active user of that agency."""
    if session.get(PanelMember, (case.panel_id, agency_id)) is None:
        raise Invalid(
            "owner_agency_id must be a member agency of the panel", field="owner_agency_id"
        )
    if session.get(CaseExclusion, (case.id, agency_id)) is not None:
        raise Invalid(
            "owner_agency_id names an agency excluded from this case", field="owner_agency_id"
        )
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or user.agency_id != agency_id or not user.is_active:
            raise Invalid(
                "owner_user_id must be an active user of the owning agency", field="owner_user_id"
            )


def _check_due(due: date) -> None:
    if not plausible(due):
        raise Invalid(
            f"due_date must fall between {EARLIEST_YEAR} and {LATEST_YEAR}", field="due_date"
        )


def create_action(
    session: Session, actor: Actor, case_id: uuid.UUID, data: ActionCreate
) -> ActionPublic:
    """Set an action for a case: in a conference it is listed on, or between meetings."""
    case = visible_case(session, actor, case_id, for_update=True)
    if panel_role_of(session, actor, case.panel_id) not in MANAGING_ROLES:
        raise Forbidden(
            "Only the panel's coordinator or chair may set actions",
            resource_type="case",
            resource_id=case.id,
        )
    if case.status != CaseStatus.OPEN.value:
        raise Conflict("The case is closed", resource_type="case", resource_id=case.id)
    if data.conference_id is not None:
        conference = session.scalars(
            select(Conference).where(
                col(Conference.id) == data.conference_id, visible_conferences(actor)
            )
        ).first()
        if conference is None or conference.panel_id != case.panel_id:
            raise Invalid(
                "conference_id names no conference of this case's panel", field="conference_id"
            )
        if conference.status not in SETTING:
            raise Conflict(
                f"A conference that is {conference.status} sets no actions",
                resource_type="conference",
                resource_id=conference.id,
            )
        if (
            session.scalar(
                select(col(Listing.id)).where(
                    col(Listing.conference_id) == conference.id, col(Listing.case_id) == case.id
                )
            )
            is None
        ):
            raise Invalid("The case is not listed on that conference", field="conference_id")
    _check_due(data.due_date)
    if data.due_date < today():
        raise Invalid("due_date is in the past", field="due_date")
    _check_owner(session, case, data.owner_agency_id, data.owner_user_id)
    action = Action(
        case_id=case.id,
        panel_id=case.panel_id,
        conference_id=data.conference_id,
        description=data.description,
        owner_agency_id=data.owner_agency_id,
        owner_user_id=data.owner_user_id,
        due_date=data.due_date,
        priority=data.priority.value,
        created_by_id=actor.required_id,
    )
    session.add(action)
    session.flush()
    _history(session, actor, action, note="Action set")
    session.flush()
    _audit(
        session,
        actor,
        action,
        AuditAction.ACTION_CREATE,
        changes={"owner_agency_id": str(action.owner_agency_id), "due_date": str(action.due_date)},
    )
    return _public(session, action)


def case_actions(
    session: Session, actor: Actor, case_id: uuid.UUID, status: ActionStatus | None
) -> list[ActionSummary]:
    """Every action of a case the caller may see: its action plan."""
    case = visible_case(session, actor, case_id)
    stmt = select(Action).where(col(Action.case_id) == case.id)
    if status is not None:
        stmt = stmt.where(col(Action.status) == status.value)
    rows = session.scalars(stmt.order_by(col(Action.due_date), col(Action.id))).all()
    audit.record(
        session,
        actor,
        AuditAction.ACTION_LIST,
        resource_type="case",
        resource_id=case.id,
        case_id=case.id,
        person_id=case.subject_person_id,
    )
    return summaries(session, rows)


def _readable(session: Session, actor: Actor, action_id: uuid.UUID, *, lock: bool) -> Action:
    """One's own agency's actions and those of panels one runs; and any action of a case one
    may see (its action plan is part of the case)."""
    stmt = select(Action).where(
        col(Action.id) == action_id,
        or_(
            visible_actions(session, actor),
            col(Action.case_id).in_(select(col(Case.id)).where(visible_cases(actor))),
        ),
    )
    action = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if action is None:
        raise NotFound("action", action_id)
    return action


def get_action(session: Session, actor: Actor, action_id: uuid.UUID) -> ActionPublic:
    action = _readable(session, actor, action_id, lock=False)
    _audit(session, actor, action, AuditAction.ACTION_READ)
    return _public(session, action)


def _who_may_update(session: Session, actor: Actor, action: Action) -> tuple[bool, bool]:
    """(manages the panel, speaks for the owning agency). Observers do not write."""
    if actor.kind is ActorKind.API_CLIENT:
        return False, actor.agency_id == action.owner_agency_id
    role = panel_role_of(session, actor, action.panel_id)
    owner = actor.agency_id == action.owner_agency_id and role not in (
        None,
        PanelRoleName.OBSERVER.value,
    )
    return role in MANAGING_ROLES, owner


def _apply_terms(session: Session, action: Action, data: ActionPatch, case: Case) -> dict[str, Any]:
    wanted = {f: getattr(data, f) for f in _TERMS if f in data.model_fields_set}
    if "priority" in wanted:
        wanted["priority"] = wanted["priority"].value
    changed = {f: v for f, v in wanted.items() if getattr(action, f) != v}
    if not changed:
        return {}
    if "due_date" in changed:
        _check_due(changed["due_date"])
    if "owner_agency_id" in changed or "owner_user_id" in changed:
        agency = changed.get("owner_agency_id", action.owner_agency_id)
        user = changed.get("owner_user_id", action.owner_user_id)
        if "owner_agency_id" in changed and "owner_user_id" not in wanted:
            user = changed["owner_user_id"] = None
        _check_owner(session, case, agency, user)
    before = {f: getattr(action, f) for f in changed}
    for field, value in changed.items():
        setattr(action, field, value)
    return audit.diff(before, changed)


def _apply_status(action: Action, data: ActionPatch, manages: bool) -> None:
    if data.status is None or (data.status.value == action.status and data.not_done_reason is None):
        return
    if action.status != ActionStatus.OPEN.value and not manages:
        raise Conflict(
            f"The action is already {action.status}; the panel's coordinator may reopen it",
            resource_type="action",
            resource_id=action.id,
            case_id=action.case_id,
        )
    action.status = data.status.value
    if data.status is ActionStatus.NOT_DONE:
        assert data.not_done_reason is not None
        action.not_done_reason = data.not_done_reason.value
        action.not_done_detail = data.not_done_detail
    else:
        action.not_done_reason = action.not_done_detail = None
    action.resolved_at = None if data.status is ActionStatus.OPEN else utcnow()


def update_action(
    session: Session,
    actor: Actor,
    action_id: uuid.UUID,
    data: ActionPatch,
    if_match: str | None,
) -> ActionPublic:
    """A progress note, done, or not done with a reason (the owning agency, or the panel's
    managers); a change of terms or a reopening (the managers only)."""
    action = _readable(session, actor, action_id, lock=True)
    manages, owns = _who_may_update(session, actor, action)
    if not (manages or owns):
        raise Forbidden(
            "Only the owning agency or the panel's coordinator or chair may update this action",
            resource_type="action",
            resource_id=action.id,
            case_id=action.case_id,
        )
    if not manages and any(f in data.model_fields_set for f in _TERMS):
        raise Forbidden(
            "Only the panel's coordinator or chair may change an action's terms",
            resource_type="action",
            resource_id=action.id,
            case_id=action.case_id,
        )
    check_if_match(if_match, action.version, "action", action.id)
    case = session.get(Case, action.case_id)
    assert case is not None
    if case.status != CaseStatus.OPEN.value:
        raise Conflict(
            "The case is closed",
            resource_type="action",
            resource_id=action.id,
            case_id=action.case_id,
        )
    if action.status != ActionStatus.OPEN.value and not manages:
        raise Conflict(
            f"The action is already {action.status}",
            resource_type="action",
            resource_id=action.id,
            case_id=action.case_id,
        )
    status_from = action.status
    outcome = (action.not_done_reason, action.not_done_detail)
    changes = _apply_terms(session, action, data, case)
    _apply_status(action, data, manages)
    if (action.not_done_reason, action.not_done_detail) != outcome:
        # A coordinator correcting why an action was not done: a change like any other.
        changes["not_done"] = [list(outcome), [action.not_done_reason, action.not_done_detail]]
    if changes or action.status != status_from or data.note:
        _history(session, actor, action, note=data.note, status_from=status_from, changes=changes)
        action.version += 1
        action.updated_at = utcnow()
        session.flush()
    if action.status != status_from:
        changes["status"] = [status_from, action.status]
    _audit(session, actor, action, AuditAction.ACTION_UPDATE, changes=changes)
    return _public(session, action)


def open_count(session: Session, case_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Action)
            .where(col(Action.case_id) == case_id, col(Action.status) == ActionStatus.OPEN.value)
        )
        or 0
    )


def close_with_case(session: Session, actor: Actor, case: Case, reason: str) -> int:
    """The chair closed the case with actions still open: each becomes not done ("other"),
    with the chair's reason, in its history. Returns how many."""
    actions = session.scalars(
        select(Action)
        .where(col(Action.case_id) == case.id, col(Action.status) == ActionStatus.OPEN.value)
        .with_for_update()
    ).all()
    for action in actions:
        action.status = ActionStatus.NOT_DONE.value
        action.not_done_reason = NotDoneReason.OTHER.value
        action.not_done_detail = f"Case closed by the chair: {reason}"[:4000]
        action.resolved_at = utcnow()
        action.version += 1
        action.updated_at = utcnow()
        _history(session, actor, action, status_from=ActionStatus.OPEN.value)
    session.flush()
    return len(actions)
