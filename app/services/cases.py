"""Cases: opened from accepted referrals; read by the panel's members, run by its managers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.etags import check_if_match
from app.models.base import utcnow
from app.models.case import (
    Case,
    CaseCounter,
    CaseExclusion,
    CasePerson,
    CasePersonPublic,
    CasePublic,
    CaseStatus,
    CaseUpdate,
    Consent,
    ConsentIn,
    ExclusionIn,
)
from app.models.panel import MANAGING_ROLES, Panel, PanelMember, PanelRole, PanelRoleName
from app.models.person import Person
from app.models.referral import Referral
from app.models.user import User
from app.panels import PANEL_TYPES
from app.panels.base import ConsentRecord
from app.panels.channel import support_consent_problems
from app.services import actions
from app.services.case_reads import get_case as get_case
from app.services.case_reads import list_cases as list_cases
from app.services.case_reads import people_query, visible_case
from app.services.panels import panel_role_of

REFERRAL_PURPOSE = "referral_sharing"
SUPPORT_PURPOSE = "support_plan"


class _PersonRole(Protocol):
    person_id: uuid.UUID | None
    role: str


def _reference_prefix(session: Session, panel: Panel) -> str:
    """The panel type's prefix (DVM); a second panel of the same type gets DVM2, and so on.

    References are unique across the partnership, but numbered per panel: without telling
    panels of one type apart, two DV MARACs would both issue DVM-2026-0001. The ordinal is
    the panel's place among its type's panels in creation order; panels are deactivated, never
    deleted, so it does not change.
    """
    prefix = PANEL_TYPES[panel.panel_type].reference_prefix
    earlier = session.scalar(
        select(func.count())
        .select_from(Panel)
        .where(
            col(Panel.panel_type) == panel.panel_type,
            tuple_(col(Panel.created_at), col(Panel.id)) < tuple_(panel.created_at, panel.id),
        )
    )
    return prefix if not earlier else f"{prefix}{earlier + 1}"


def _next_reference(session: Session, panel: Panel) -> str:
    """DVM-2026-0007: per panel and year, issued under a row lock so none repeats."""
    year = utcnow().year
    counter = session.get(CaseCounter, (panel.id, year), with_for_update=True)
    if counter is None:
        counter = CaseCounter(panel_id=panel.id, year=year, last=0)
        session.add(counter)
    counter.last += 1
    session.flush()
    return f"{_reference_prefix(session, panel)}-{year}-{counter.last:04d}"


def open_from_referral(
    session: Session,
    actor: Actor,
    panel: Panel,
    referral: Referral,
    subject_id: uuid.UUID,
    people: Sequence[_PersonRole],
) -> Case:
    """Open a case for an accepted referral, or add it to the person's open case here."""
    case = session.scalars(
        select(Case)
        .join(CasePerson, col(CasePerson.case_id) == col(Case.id))
        .where(
            col(Case.panel_id) == panel.id,
            col(Case.subject_person_id) == subject_id,
            col(Case.status) == CaseStatus.OPEN.value,
        )
        .with_for_update()
    ).first()
    if case is not None:
        # The referral joins the person's open case: it is a repeat of it, whether or not the
        # case was already open when the referral was submitted.
        referral.is_repeat = True
        referral.repeat_of_case_id = case.id
        case.is_repeat = True
        case.version += 1
        case.updated_at = utcnow()
    else:
        panel_type = PANEL_TYPES[panel.panel_type]
        case = Case(
            panel_id=panel.id,
            reference=_next_reference(session, panel),
            stage=panel_type.stages[0],
            risk_level=referral.risk_level,
            subject_person_id=subject_id,
            is_repeat=referral.is_repeat,
            repeat_of_case_id=referral.repeat_of_case_id,
        )
        session.add(case)
        session.flush()
    existing = {
        (person_id, role)
        for person_id, role in session.execute(
            select(col(CasePerson.person_id), col(CasePerson.role)).where(
                col(CasePerson.case_id) == case.id
            )
        )
    }
    for person in people:
        assert person.person_id is not None
        if (person.person_id, person.role) not in existing:
            session.add(CasePerson(case_id=case.id, person_id=person.person_id, role=person.role))
    consent = ConsentRecord.model_validate(referral.consent)
    session.add(
        Consent(
            case_id=case.id,
            person_id=subject_id,
            purpose=REFERRAL_PURPOSE,
            status=consent.status.value,
            given_by=consent.given_by.value if consent.given_by else None,
            lawful_basis=consent.lawful_basis.value if consent.lawful_basis else None,
            reason=consent.reason,
            recorded_by_kind=referral.submitted_by_kind,
            recorded_by_id=referral.submitted_by_id,
            recorded_at=referral.created_at,
        )
    )
    session.flush()
    _audit(
        session,
        actor,
        case,
        AuditAction.CASE_OPEN,
        detail={"reference": case.reference, "referral_id": str(referral.id)},
    )
    return case


def _audit(session: Session, actor: Actor, case: Case, action: AuditAction, **extra: Any) -> None:
    """An audit event about this case: always with its id and its subject's."""
    audit.record(
        session,
        actor,
        action,
        resource_type="case",
        resource_id=case.id,
        case_id=case.id,
        person_id=case.subject_person_id,
        **extra,
    )


def _public(session: Session, case: Case) -> CasePublic:
    rows = session.execute(people_query(case.id)).all()
    panel_type = session.scalar(select(col(Panel.panel_type)).where(col(Panel.id) == case.panel_id))
    return CasePublic.model_validate(
        {
            **case.model_dump(),
            "panel_type": panel_type,
            "people": [
                CasePersonPublic(person_id=p, role=r, given_name=g, family_name=f)
                for p, r, g, f in rows
            ],
        }
    )


def _require_role(
    session: Session, actor: Actor, case: Case, allowed: frozenset[str], what: str
) -> str:
    role = panel_role_of(session, actor, case.panel_id)
    if role not in allowed:
        raise Forbidden(
            f"Only the panel's {what} may do this", resource_type="case", resource_id=case.id
        )
    assert role is not None
    return role


def _support_consent_given(session: Session, case: Case) -> list[str]:
    consent = session.scalars(
        select(Consent)
        .where(
            col(Consent.case_id) == case.id,
            col(Consent.person_id) == case.subject_person_id,
            col(Consent.purpose) == SUPPORT_PURPOSE,
        )
        .order_by(col(Consent.recorded_at).desc())
    ).first()
    if consent is None:
        return ["a support plan cannot start without consent (purpose 'support_plan')"]
    subject = session.get(Person, case.subject_person_id)
    record = ConsentRecord(status=consent.status, given_by=consent.given_by)
    return support_consent_problems(
        record, subject.date_of_birth if subject else None, utcnow().date()
    )


def _is_excluded(session: Session, case: Case, agency_id: uuid.UUID) -> bool:
    return session.get(CaseExclusion, (case.id, agency_id)) is not None


def _check_keyworker(session: Session, case: Case, user_id: uuid.UUID) -> None:
    """A keyworker holds a role on the panel, through a member agency not excluded here."""
    agency_id = session.scalar(
        select(col(User.agency_id))
        .join(PanelRole, col(PanelRole.user_id) == col(User.id))
        .join(
            PanelMember,
            (col(PanelMember.panel_id) == col(PanelRole.panel_id))
            & (col(PanelMember.agency_id) == col(User.agency_id)),
        )
        .where(col(PanelRole.panel_id) == case.panel_id, col(User.id) == user_id)
    )
    if agency_id is None:
        raise Invalid("keyworker_user_id must hold a role on the panel")
    if _is_excluded(session, case, agency_id):
        raise Invalid("keyworker_user_id belongs to an agency excluded from this case")


def _close_actions(session: Session, actor: Actor, case: Case, role: str, reason: str) -> None:
    """A case closes once its actions are resolved; the chair may close it before, with a
    reason, which then resolves each open action as not done."""
    pending = actions.open_count(session, case.id)
    if not pending:
        return
    if role != PanelRoleName.CHAIR.value:
        raise Conflict(
            f"{pending} action(s) on this case are still open: resolve them first, or the "
            "panel's chair closes the case with a reason",
            resource_type="case",
            resource_id=case.id,
        )
    actions.close_with_case(session, actor, case, reason)


def update_case(
    session: Session, actor: Actor, case_id: uuid.UUID, data: CaseUpdate, if_match: str | None
) -> CasePublic:
    """Status, stage, risk level, lead agency, keyworker: the panel's managers only."""
    case = visible_case(session, actor, case_id, for_update=True)
    role = _require_role(session, actor, case, MANAGING_ROLES, "coordinator or chair")
    check_if_match(if_match, case.version, "case", case.id)
    panel = session.get(Panel, case.panel_id)
    assert panel is not None
    panel_type = PANEL_TYPES[panel.panel_type]
    before: dict[str, Any] = case.model_dump()
    if data.stage is not None and data.stage != case.stage:
        if data.stage not in panel_type.stages:
            raise Invalid(f"stage must be one of {list(panel_type.stages)}")
        if data.stage in panel_type.consent_gated_stages:
            problems = _support_consent_given(session, case)
            if problems:
                raise Conflict("; ".join(problems), resource_type="case", resource_id=case.id)
        case.stage = data.stage
    if data.risk_level is not None:
        case.risk_level = data.risk_level.value
    if "lead_agency_id" in data.model_fields_set:
        if data.lead_agency_id is not None and not session.get(
            PanelMember, (case.panel_id, data.lead_agency_id)
        ):
            raise Invalid("lead_agency_id must be a member agency of the panel")
        if data.lead_agency_id is not None and _is_excluded(session, case, data.lead_agency_id):
            raise Invalid("lead_agency_id names an agency excluded from this case")
        case.lead_agency_id = data.lead_agency_id
    if "keyworker_user_id" in data.model_fields_set:
        if data.keyworker_user_id is not None:
            _check_keyworker(session, case, data.keyworker_user_id)
        case.keyworker_user_id = data.keyworker_user_id
    if data.status is not None and data.status.value != case.status:
        if data.status is CaseStatus.CLOSED:
            if not data.close_reason:
                raise Invalid("Closing a case needs a close_reason")
            _close_actions(session, actor, case, role, data.close_reason)
            case.closed_at = utcnow()
            case.close_reason = data.close_reason
        else:
            case.closed_at = None
            case.close_reason = None
        case.status = data.status.value
    fields = (
        "status",
        "stage",
        "risk_level",
        "lead_agency_id",
        "keyworker_user_id",
        "close_reason",
    )
    delta = audit.diff({f: before[f] for f in fields}, {f: getattr(case, f) for f in fields})
    if delta:
        case.version += 1
        case.updated_at = utcnow()
        session.flush()
    _audit(session, actor, case, AuditAction.CASE_UPDATE, changes=delta)
    return _public(session, case)


def version_of(session: Session, case_id: uuid.UUID) -> int:
    return int(session.scalar(select(col(Case.version)).where(col(Case.id) == case_id)) or 0)


# consents -----------------------------------------------------------------------------------


def list_consents(session: Session, actor: Actor, case_id: uuid.UUID) -> list[Consent]:
    """Consent records of the case, newest first."""
    case = visible_case(session, actor, case_id)
    rows = list(
        session.scalars(
            select(Consent)
            .where(col(Consent.case_id) == case.id)
            .order_by(col(Consent.recorded_at).desc())
        )
    )
    _audit(session, actor, case, AuditAction.CONSENT_LIST)
    return rows


CONSENT_RECORDERS = frozenset({*MANAGING_ROLES, PanelRoleName.REPRESENTATIVE.value})


def record_consent(session: Session, actor: Actor, case_id: uuid.UUID, data: ConsentIn) -> Consent:
    """Record consent (or the basis for sharing without it) for one person and purpose."""
    case = visible_case(session, actor, case_id)
    _require_role(session, actor, case, CONSENT_RECORDERS, "coordinator, chair or representatives")
    on_case = session.scalar(
        select(col(CasePerson.person_id)).where(
            col(CasePerson.case_id) == case.id, col(CasePerson.person_id) == data.person_id
        )
    )
    if on_case is None:
        raise Invalid("person_id is not a person on this case")
    if data.status.value != "given" and (data.lawful_basis is None or data.reason is None):
        raise Invalid("Without consent, record the lawful basis for sharing and the reason")
    consent = Consent(
        case_id=case.id,
        person_id=data.person_id,
        purpose=data.purpose,
        status=data.status.value,
        given_by=data.given_by.value if data.given_by else None,
        lawful_basis=data.lawful_basis.value if data.lawful_basis else None,
        reason=data.reason,
        recorded_by_kind=actor.kind.value,
        recorded_by_id=actor.required_id,
        recorded_at=utcnow(),
    )
    session.add(consent)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.CONSENT_RECORD,
        resource_type="consent",
        resource_id=consent.id,
        case_id=case.id,
        person_id=data.person_id,
        changes={"purpose": data.purpose, "status": data.status.value},
    )
    return consent


# exclusions ---------------------------------------------------------------------------------


def list_exclusions(session: Session, actor: Actor, case_id: uuid.UUID) -> list[CaseExclusion]:
    """Agencies kept out of this case (the panel's managers only)."""
    case = visible_case(session, actor, case_id)
    _require_role(session, actor, case, MANAGING_ROLES, "coordinator or chair")
    rows = list(session.scalars(select(CaseExclusion).where(col(CaseExclusion.case_id) == case.id)))
    _audit(session, actor, case, AuditAction.EXCLUSION_LIST)
    return rows


def add_exclusion(
    session: Session, actor: Actor, case_id: uuid.UUID, data: ExclusionIn
) -> CaseExclusion:
    """Keep an agency out of one case; from the next request it cannot see it at all."""
    case = visible_case(session, actor, case_id, for_update=True)
    _require_role(session, actor, case, MANAGING_ROLES, "coordinator or chair")
    if data.agency_id == actor.agency_id:
        raise Conflict(
            "You cannot exclude your own agency", resource_type="case", resource_id=case.id
        )
    if session.get(PanelMember, (case.panel_id, data.agency_id)) is None:
        raise Invalid("agency_id is not a member agency of the panel")
    if session.get(CaseExclusion, (case.id, data.agency_id)) is not None:
        raise Conflict("That agency is already excluded", resource_type="case", resource_id=case.id)
    exclusion = CaseExclusion(
        case_id=case.id,
        agency_id=data.agency_id,
        reason=data.reason,
        created_by_id=actor.required_id,
    )
    session.add(exclusion)
    if case.lead_agency_id == data.agency_id:
        case.lead_agency_id = None
    if case.keyworker_user_id is not None:
        keyworker_agency = session.scalar(
            select(col(User.agency_id)).where(col(User.id) == case.keyworker_user_id)
        )
        if keyworker_agency == data.agency_id:
            case.keyworker_user_id = None
    case.updated_at = utcnow()
    case.version += 1
    session.flush()
    _audit(
        session,
        actor,
        case,
        AuditAction.EXCLUSION_ADD,
        changes={"excluded_agency_id": str(data.agency_id)},
    )
    return exclusion


def remove_exclusion(
    session: Session, actor: Actor, case_id: uuid.UUID, agency_id: uuid.UUID
) -> None:
    """Let an excluded agency back into the case."""
    case = visible_case(session, actor, case_id, for_update=True)
    _require_role(session, actor, case, MANAGING_ROLES, "coordinator or chair")
    exclusion = session.get(CaseExclusion, (case.id, agency_id))
    if exclusion is None:
        raise NotFound("exclusion", agency_id)
    session.delete(exclusion)
    case.version += 1
    case.updated_at = utcnow()
    session.flush()
    _audit(
        session,
        actor,
        case,
        AuditAction.EXCLUSION_REMOVE,
        changes={"readmitted_agency_id": str(agency_id)},
    )
