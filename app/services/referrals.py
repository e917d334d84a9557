"""Referrals: submitted by partner agencies, screened where the panel type says so, triaged
by the panel's coordinator or chair into a case (new, or the person's open one), or refused."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.agency import Agency, AgencyKind
from app.models.base import new_id, utcnow
from app.models.case import Case
from app.models.panel import MANAGING_ROLES, Panel, PanelMember
from app.models.referral import (
    Decision,
    DecisionIn,
    Referral,
    ReferralAmend,
    ReferralCreate,
    ReferralPerson,
    ReferralPersonPublic,
    ReferralPublic,
    ReferralStatus,
    ScreeningIn,
)
from app.pagination import paginate
from app.panels import PANEL_TYPES
from app.panels.base import ConsentRecord, PanelConfig, PanelType, PersonFacts
from app.policies import managed_panel_ids, visible_referrals
from app.prepared import Prepared
from app.prepared import Query as PreparedQuery
from app.rawsql import Raw
from app.services import cases, people
from app.services.panels import config_of, configured, panel_role_of, role_query

OPEN_FOR_DECISION = {ReferralStatus.SUBMITTED.value, ReferralStatus.SCREENED.value}


def _form_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(["body", "form", *(str(p) for p in err["loc"])]),
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors()
    ]


def _validated_form(panel_type: PanelType, raw: dict[str, object]) -> BaseModel:
    try:
        return panel_type.form.model_validate({"panel_type": panel_type.key, **raw})
    except ValidationError as exc:
        raise Invalid(
            f"The form does not match the {panel_type.title} referral form",
            extra={"errors": _form_errors(exc)},
        ) from None


def _assess(panel_type: PanelType, form: BaseModel, config: PanelConfig) -> dict[str, object]:
    assessment = panel_type.assess(form, config)
    if not assessment.eligible:
        raise Invalid(
            "The referral does not meet the panel's criteria: " + "; ".join(assessment.reasons),
            extra={"reasons": assessment.reasons, "assessment": assessment.computed},
        )
    return {**assessment.computed, "risk_level": assessment.risk_level}


def _risk(assessment: dict[str, object]) -> str | None:
    risk = assessment.get("risk_level")
    return str(risk) if risk is not None else None


def _check_consent(
    panel_type: PanelType, consent: ConsentRecord, facts: list[PersonFacts], on: date
) -> None:
    problems = panel_type.consent_problems(consent, facts, on)
    if problems:
        raise Invalid("Consent: " + "; ".join(problems), extra={"reasons": problems})


def _build_repeat_of(_actor: Actor, _variant: Hashable) -> PreparedQuery:
    """The most recent case on the panel about the person (as its subject: a repeat MARAC
    is a further incident for the same victim) heard, or opened, since the given time."""
    heard = func.coalesce(col(Case.last_heard_at), col(Case.opened_at))
    opened_at = Case.__table__.c.opened_at  # type: ignore[attr-defined]
    since = bindparam("since", required=False, type_=opened_at.type)
    return (
        select(col(Case.id))
        .where(
            col(Case.panel_id) == bindparam("panel_id", required=False),
            col(Case.subject_person_id) == bindparam("person_id", required=False),
            heard >= since,
        )
        .order_by(heard.desc())
        .limit(1)
    )


def _build_panel(actor: Actor, _variant: Hashable) -> PreparedQuery:
    """What a submission needs of the panel, in one statement: whether it is active, its
    type and configuration, whether the caller's agency may refer to it, and the caller's
    role on it (which decides what the answer shows them)."""
    panel_id = col(Panel.id)
    may_refer = select(col(PanelMember.may_refer)).where(
        col(PanelMember.panel_id) == panel_id, col(PanelMember.agency_id) == actor.agency_id
    )
    return select(
        col(Panel.is_active),
        col(Panel.panel_type),
        col(Panel.config),
        may_refer.scalar_subquery(),
        role_query(actor, panel_id).scalar_subquery(),
    ).where(panel_id == bindparam("panel_id", required=False))


# Every submission runs these: prepared (app.prepared).
_PANEL = Prepared(_build_panel)
_REPEAT_OF = Prepared(_build_repeat_of)


def _referring_panel(
    raw: Raw, actor: Actor, panel_id: uuid.UUID, found: list[tuple[Any, ...]]
) -> tuple[PanelType, PanelConfig, bool]:
    """The type and configuration of the active panel the actor's agency may refer to, and
    whether the actor runs it, from ``_PANEL``'s rows."""
    panel = found[0] if found else None
    if panel is None or not panel[0]:
        raise Invalid("panel_id does not name an active panel")
    if not panel[3]:
        raise Forbidden(
            "Your agency is not permitted to refer to this panel",
            resource_type="panel",
            resource_id=panel_id,
        )
    runs_panel = actor.id is not None and actor.agency_id is not None and panel[4] in MANAGING_ROLES
    return PANEL_TYPES[panel[1]], configured(panel[1], raw.to_json(panel[2])), runs_panel


def _repeat_of(
    session: Session, actor: Actor, panel_id: uuid.UUID, person_id: uuid.UUID, window_days: int
) -> uuid.UUID | None:
    """A case on this panel about the person heard, or opened, within the repeat window."""
    raw = Raw(session)
    params = {
        "panel_id": panel_id,
        "person_id": person_id,
        "since": utcnow() - timedelta(days=window_days),
    }
    found = _REPEAT_OF.row(raw, actor, params)
    return None if found is None else raw.to_uuid(found[0])


def submit(session: Session, actor: Actor, data: ReferralCreate) -> ReferralPublic:
    """Validate against the panel type, match the people, flag repeats, and record it."""
    raw = Raw(session)
    panel_id = data.panel_id
    entries = [(p.person_id, p.details) for p in data.people]
    # The panel and the people's matching, read together: one message on PostgreSQL.
    ahead = people.lookups(raw, actor, entries)
    panel, *rows = raw.all_each(
        [_PANEL.statement(raw, actor, {"panel_id": panel_id}), *(s for _, s in ahead)]
    )
    panel_type, config, runs_panel = _referring_panel(raw, actor, panel_id, panel)
    form = _validated_form(panel_type, data.form)
    assessment = _assess(panel_type, form, config)
    subject_role = panel_type.person_roles[0]
    roles = [p.role for p in data.people]
    unknown = sorted(set(roles) - set(panel_type.person_roles))
    if unknown:
        raise Invalid(
            f"Unknown person roles {unknown}; this panel uses {list(panel_type.person_roles)}"
        )
    if roles.count(subject_role) != 1:
        raise Invalid(f"A referral names exactly one {subject_role}")
    facts = [
        PersonFacts(p.role, p.details.date_of_birth if p.details else None) for p in data.people
    ]
    _check_consent(panel_type, data.consent, facts, data.referral_date)
    subject_id: uuid.UUID | None = None
    subject_is_new = False
    duplicates = 0
    linked: dict[tuple[uuid.UUID, str], None] = {}
    looked_up = {i: found for (i, _), found in zip(ahead, rows, strict=True)}
    everyone = people.resolve_all(session, actor, entries, looked_up)
    for entry, resolved in zip(data.people, everyone, strict=True):
        duplicates += resolved.duplicates
        if (resolved.person_id, entry.role) in linked:
            raise Invalid("The same person appears twice with the same role")
        linked[(resolved.person_id, entry.role)] = None
        if entry.role == subject_role:
            subject_id, subject_is_new = resolved.person_id, resolved.created
    assert subject_id is not None
    # Someone recorded just now has no earlier case.
    repeat_of = (
        None
        if subject_is_new
        else _repeat_of(session, actor, panel_id, subject_id, config.repeat_window_days)
    )
    # Written through the driver (app.rawsql), once its people are known: the ORM's unit of
    # work (an object, a flush to insert it, another to update it) cost most of a submission.
    referral_id = new_id()
    referral: dict[str, Any] = {
        **_NEW_REFERRAL,
        "id": referral_id,
        "panel_id": panel_id,
        "status": ReferralStatus.SUBMITTED.value,
        "submitted_by_kind": actor.kind.value,
        "submitted_by_id": actor.required_id,
        "referring_agency_id": actor.required_agency_id,
        "referrer_name": data.referrer.name,
        "referrer_email": data.referrer.email,
        "referrer_phone": data.referrer.phone,
        "referral_date": data.referral_date,
        "crime_reference": data.crime_reference,
        "form": form.model_dump(mode="json"),
        "assessment": assessment,
        "risk_level": _risk(assessment),
        "consent": data.consent.model_dump(mode="json"),
        "is_repeat": repeat_of is not None,
        "repeat_of_case_id": repeat_of,
        "possible_duplicates": duplicates,
        "created_at": utcnow(),
    }
    # Nothing below waits on them: they go with the unit's COMMIT (app.pending).
    raw.insert("referral", [referral], later=True)
    raw.insert(
        "referral_person",
        [{"referral_id": referral_id, "person_id": p, "role": r} for p, r in linked],
        later=True,
    )
    audit.record(
        session,
        actor,
        AuditAction.REFERRAL_SUBMIT,
        resource_type="referral",
        resource_id=referral_id,
        person_id=subject_id,
        detail={"panel_id": str(panel_id), "is_repeat": referral["is_repeat"]},
    )
    shown = [ReferralPersonPublic(person_id=p, role=r) for p, r in linked]
    # The submitter is the referrer: what they may see of it is what to_public shows them.
    out = ReferralPublic.model_validate({**referral, "people": shown})
    return _shown_to(actor, out, actor.required_id, runs_panel)


# A new referral's columns with a default in the model (submit() sets the others and some of
# these): read off the model once, so a column added later gets its default here too.
_NEW_REFERRAL = {
    name: field.default
    for name, field in Referral.model_fields.items()
    if not field.is_required() and field.default_factory is None
}


def _people(session: Session, referral_id: uuid.UUID) -> list[ReferralPersonPublic]:
    rows = session.execute(
        select(col(ReferralPerson.person_id), col(ReferralPerson.role)).where(
            col(ReferralPerson.referral_id) == referral_id
        )
    ).all()
    return [ReferralPersonPublic(person_id=p, role=r) for p, r in rows]


def _subject_id(session: Session, referral: Referral) -> uuid.UUID | None:
    panel = session.get(Panel, referral.panel_id)
    assert panel is not None  # foreign key
    role = PANEL_TYPES[panel.panel_type].person_roles[0]
    for person in _people(session, referral.id):
        if person.role == role:
            return person.person_id
    return None


def to_public(
    session: Session,
    actor: Actor,
    referral: Referral,
    *,
    people_: list[ReferralPersonPublic] | None = None,
    runs_panel: bool | None = None,
) -> ReferralPublic:
    """The referral as this actor may see it. A referrer who does not run the panel sees
    their own referral's status and content, but nothing that would reveal a case.

    A list passes ``people_`` and ``runs_panel`` it looked up once for the whole page."""
    if people_ is None:
        people_ = _people(session, referral.id)
    out = ReferralPublic.model_validate({**referral.model_dump(), "people": people_})
    if runs_panel is None:
        runs_panel = panel_role_of(session, actor, referral.panel_id) in MANAGING_ROLES
    return _shown_to(actor, out, referral.submitted_by_id, runs_panel)


def _shown_to(
    actor: Actor, out: ReferralPublic, submitted_by_id: uuid.UUID, runs_panel: bool
) -> ReferralPublic:
    """A referrer who does not run the panel sees their own referral's status and content,
    but nothing that would reveal a case."""
    if not runs_panel and submitted_by_id == actor.id:
        out.is_repeat = None
        out.repeat_of_case_id = None
        out.case_id = None
        out.possible_duplicates = None
        out.people = [ReferralPersonPublic(person_id=None, role=p.role) for p in out.people]
    return out


def _visible(
    session: Session, actor: Actor, referral_id: uuid.UUID, *, for_update: bool = False
) -> Referral:
    stmt = select(Referral).where(col(Referral.id) == referral_id, visible_referrals(actor))
    referral = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if referral is None:
        raise NotFound("referral", referral_id)
    return referral


def list_referrals(
    session: Session,
    actor: Actor,
    panel_id: uuid.UUID | None,
    status: ReferralStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReferralPublic], str | None]:
    """Referrals the caller may see, oldest first."""
    stmt = select(Referral).where(visible_referrals(actor))
    if panel_id is not None:
        stmt = stmt.where(col(Referral.panel_id) == panel_id)
    if status is not None:
        stmt = stmt.where(col(Referral.status) == status.value)
    keys = [(col(Referral.created_at), datetime), (col(Referral.id), uuid.UUID)]
    rows, next_cursor = paginate(session, stmt, keys, cursor, limit)
    audit.record(
        session,
        actor,
        AuditAction.REFERRAL_LIST,
        resource_type="referral",
        detail={"returned": len(rows)},
    )
    # Two queries for the page, not two per referral.
    managed = set(session.scalars(managed_panel_ids(actor)))
    people_by_referral: dict[uuid.UUID, list[ReferralPersonPublic]] = {r.id: [] for r in rows}
    for referral_id, person_id, role in session.execute(
        select(
            col(ReferralPerson.referral_id),
            col(ReferralPerson.person_id),
            col(ReferralPerson.role),
        ).where(col(ReferralPerson.referral_id).in_(list(people_by_referral)))
    ):
        people_by_referral[referral_id].append(ReferralPersonPublic(person_id=person_id, role=role))
    items = [
        to_public(
            session,
            actor,
            r,
            people_=people_by_referral[r.id],
            runs_panel=r.panel_id in managed,
        )
        for r in rows
    ]
    return items, next_cursor


def get_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> ReferralPublic:
    """One referral, if visible."""
    referral = _visible(session, actor, referral_id)
    audit.record(
        session,
        actor,
        AuditAction.REFERRAL_READ,
        resource_type="referral",
        resource_id=referral.id,
        case_id=referral.case_id,
        person_id=_subject_id(session, referral),
    )
    return to_public(session, actor, referral)


def _require_manager(session: Session, actor: Actor, referral: Referral) -> None:
    if panel_role_of(session, actor, referral.panel_id) not in MANAGING_ROLES:
        raise Forbidden(
            "Only the panel's coordinator or chair may triage its referrals",
            resource_type="referral",
            resource_id=referral.id,
        )


def decide(
    session: Session, actor: Actor, referral_id: uuid.UUID, data: DecisionIn, if_match: str | None
) -> ReferralPublic:
    """Accept (opening or reopening a case), reject, or ask the referrer for more."""
    referral = _visible(session, actor, referral_id, for_update=True)
    _require_manager(session, actor, referral)
    check_if_match(if_match, referral.version, "referral", referral.id)
    panel = session.get(Panel, referral.panel_id)
    assert panel is not None
    panel_type = PANEL_TYPES[panel.panel_type]
    if referral.status not in OPEN_FOR_DECISION:
        raise Conflict(
            f"The referral is {referral.status}; it is not awaiting a decision",
            resource_type="referral",
            resource_id=referral.id,
        )
    if panel_type.requires_screening and referral.status != ReferralStatus.SCREENED.value:
        raise Conflict(
            "This panel's referrals are screened before a decision",
            resource_type="referral",
            resource_id=referral.id,
        )
    if data.decision is not Decision.ACCEPT and not data.reason:
        raise Invalid("A reason is required to reject or to request information")
    subject_id = _subject_id(session, referral)
    assert subject_id is not None
    if data.decision is Decision.ACCEPT:
        case = cases.open_from_referral(
            session, actor, panel, referral, subject_id, _people(session, referral.id)
        )
        referral.case_id = case.id
        referral.status = ReferralStatus.ACCEPTED.value
    elif data.decision is Decision.REJECT:
        referral.status = ReferralStatus.REJECTED.value
    else:
        referral.status = ReferralStatus.INFORMATION_REQUESTED.value
    referral.decision = data.decision.value
    referral.decision_reason = data.reason
    referral.decided_by_id = actor.id
    referral.decided_at = utcnow()
    referral.version += 1
    referral.updated_at = referral.decided_at
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.REFERRAL_DECIDE,
        resource_type="referral",
        resource_id=referral.id,
        case_id=referral.case_id,
        person_id=subject_id,
        changes={"status": referral.status, "decision": referral.decision},
    )
    return to_public(session, actor, referral)


def screen(
    session: Session, actor: Actor, referral_id: uuid.UUID, data: ScreeningIn, if_match: str | None
) -> ReferralPublic:
    """The police gateway of a screened panel (Channel): suitable, more information, or not."""
    referral = _visible(session, actor, referral_id, for_update=True)
    check_if_match(if_match, referral.version, "referral", referral.id)
    panel = session.get(Panel, referral.panel_id)
    assert panel is not None
    if not PANEL_TYPES[panel.panel_type].requires_screening:
        raise Conflict(
            "This panel does not screen referrals",
            resource_type="referral",
            resource_id=referral.id,
        )
    agency_kind = session.scalar(select(col(Agency.kind)).where(col(Agency.id) == actor.agency_id))
    if panel_role_of(session, actor, panel.id) is None or agency_kind != AgencyKind.POLICE.value:
        raise Forbidden(
            "Screening is done by the police practitioner on the panel",
            resource_type="referral",
            resource_id=referral.id,
        )
    if referral.status != ReferralStatus.SUBMITTED.value:
        raise Conflict(
            f"The referral is {referral.status}; only a submitted one is screened",
            resource_type="referral",
            resource_id=referral.id,
        )
    referral.status = {
        "suitable": ReferralStatus.SCREENED,
        "more_information": ReferralStatus.INFORMATION_REQUESTED,
        "not_appropriate": ReferralStatus.REJECTED,
    }[data.outcome].value
    referral.screening_outcome = data.outcome
    referral.screening_note = data.note
    referral.screened_by_id = actor.id
    referral.version += 1
    referral.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.REFERRAL_SCREEN,
        resource_type="referral",
        resource_id=referral.id,
        person_id=_subject_id(session, referral),
        changes={"status": referral.status, "screening_outcome": data.outcome},
    )
    return to_public(session, actor, referral)


def amend(
    session: Session,
    actor: Actor,
    referral_id: uuid.UUID,
    data: ReferralAmend,
    if_match: str | None,
) -> ReferralPublic:
    """The referrer answers a request for information; the referral is submitted again."""
    referral = _visible(session, actor, referral_id, for_update=True)
    if referral.submitted_by_id != actor.id or actor.kind.value != referral.submitted_by_kind:
        raise Forbidden(
            "Only the referrer may amend a referral",
            resource_type="referral",
            resource_id=referral.id,
        )
    check_if_match(if_match, referral.version, "referral", referral.id)
    if referral.status != ReferralStatus.INFORMATION_REQUESTED.value:
        raise Conflict(
            "Only a referral awaiting more information can be amended",
            resource_type="referral",
            resource_id=referral.id,
        )
    panel = session.get(Panel, referral.panel_id)
    assert panel is not None
    panel_type = PANEL_TYPES[panel.panel_type]
    if data.form is not None:
        form = _validated_form(panel_type, data.form)
        referral.assessment = _assess(panel_type, form, config_of(panel))
        referral.form = form.model_dump(mode="json")
        referral.risk_level = _risk(referral.assessment)
    if data.consent is not None:
        _check_consent(panel_type, data.consent, [], referral.referral_date)
        referral.consent = data.consent.model_dump(mode="json")
    if data.crime_reference is not None:
        referral.crime_reference = data.crime_reference
    referral.status = ReferralStatus.SUBMITTED.value
    referral.screening_outcome = None
    referral.version += 1
    referral.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.REFERRAL_AMEND,
        resource_type="referral",
        resource_id=referral.id,
        person_id=_subject_id(session, referral),
        detail={"note": bool(data.note)},
    )
    return to_public(session, actor, referral)
