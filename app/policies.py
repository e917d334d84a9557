"""Visibility filters: which rows a principal may see. List and get share the same filter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, false, or_, select, true
from sqlalchemy.orm import Session
from sqlmodel import col

from app.actor import Actor, ActorKind
from app.models.action import Action
from app.models.agency import Agency, AgencyKind
from app.models.api_client import ApiClient
from app.models.case import Case, CaseExclusion, CasePerson
from app.models.conference import Conference, ConferenceStatus, Listing
from app.models.panel import MANAGING_ROLES, Panel, PanelMember, PanelRole
from app.models.person import Person
from app.models.referral import Referral, ReferralPerson
from app.models.user import User
from app.panels import PANEL_TYPES
from app.permissions import Permission, Role

ISOLATED = sorted(key for key, panel_type in PANEL_TYPES.items() if panel_type.isolated)
SCREENED = sorted(key for key, panel_type in PANEL_TYPES.items() if panel_type.requires_screening)

_PARTNERSHIP_WIDE = {Role.ADMIN, Role.AUDITOR}


def _partnership_wide(actor: Actor) -> bool:
    return bool(_PARTNERSHIP_WIDE.intersection(actor.roles))


def visible_users(actor: Actor) -> Any:
    """Admins and auditors see every user; an agency admin sees their own agency's."""
    if _partnership_wide(actor):
        return true()
    return User.agency_id == actor.agency_id


def visible_api_clients(actor: Actor) -> Any:
    """Only the partnership-wide roles hold API-client permissions; kept explicit for later."""
    if _partnership_wide(actor):
        return true()
    return ApiClient.agency_id == actor.agency_id


# Case work ---------------------------------------------------------------------------------
# A user takes part in a panel through a panel role, and only while their agency is a member;
# an API client through its agency's membership. A case excludes named agencies outright.


def member_panel_ids(actor: Actor) -> Any:
    """Panels the actor takes part in (subquery of panel ids)."""
    if actor.kind is ActorKind.API_CLIENT:
        # An agency's systems never receive an isolated panel's cases (Channel): those are
        # for the people who sit on that panel.
        return (
            select(col(PanelMember.panel_id))
            .join(Panel, col(Panel.id) == col(PanelMember.panel_id))
            .where(
                col(PanelMember.agency_id) == actor.agency_id,
                col(Panel.panel_type).not_in(ISOLATED),
            )
        )
    return (
        select(col(PanelRole.panel_id))
        .join(
            PanelMember,
            and_(
                col(PanelMember.panel_id) == col(PanelRole.panel_id),
                col(PanelMember.agency_id) == actor.agency_id,
            ),
        )
        .where(col(PanelRole.user_id) == actor.id)
    )


def managed_panel_ids(actor: Actor) -> Any:
    """Panels the actor chairs or coordinates (subquery of panel ids)."""
    if actor.kind is not ActorKind.USER or not actor.can(Permission.REFERRAL_TRIAGE):
        return select(col(PanelRole.panel_id)).where(false())
    return member_panel_ids(actor).where(col(PanelRole.role).in_(MANAGING_ROLES))


def not_excluded(case_id: Any, actor: Actor) -> Any:
    """The case does not exclude the actor's agency (for the panel's managers, who see every
    other case of it, this is the whole of visible_cases)."""
    return ~_excluded(case_id, actor)


def _excluded(case_id: Any, actor: Actor) -> Any:
    return exists().where(
        col(CaseExclusion.case_id) == case_id, col(CaseExclusion.agency_id) == actor.agency_id
    )


def _published_listings() -> Any:
    """Cases listed on a published agenda of a conference that was not cancelled."""
    return (
        select(col(Listing.case_id))
        .join(Conference, col(Conference.id) == col(Listing.conference_id))
        .where(
            col(Conference.agenda_published_at).is_not(None),
            col(Conference.status) != ConferenceStatus.CANCELLED.value,
        )
    )


def visible_cases(actor: Actor) -> Any:
    """Cases of the actor's panels that do not exclude the actor's agency, and that the actor
    needs to know: every case of a panel they run; for other members, the cases listed on a
    published agenda (research for the meeting), those their agency leads or owns an action
    on, and those they are keyworker for."""
    if not actor.can(Permission.CASE_READ):
        return false()
    need_to_know = or_(
        col(Case.panel_id).in_(managed_panel_ids(actor)),
        col(Case.id).in_(_published_listings()),
        col(Case.lead_agency_id) == actor.agency_id,
        col(Case.keyworker_user_id) == actor.id,
        # Correlated, on the action's case index: as an IN over every action the agency owns,
        # PostgreSQL priced a case list at a million cases as rescanning them all per row, and
        # the price alone made it JIT-compile and parallelise a 50-row page (800 ms).
        exists().where(
            col(Action.case_id) == col(Case.id), col(Action.owner_agency_id) == actor.agency_id
        ),
    )
    return and_(
        col(Case.panel_id).in_(member_panel_ids(actor)),
        ~_excluded(col(Case.id), actor),
        need_to_know,
    )


def visible_conferences(actor: Actor) -> Any:
    """Conferences of the panels the actor takes part in (none of Channel's for systems)."""
    if not actor.can(Permission.CONFERENCE_READ):
        return false()
    return col(Conference.panel_id).in_(member_panel_ids(actor))


def visible_actions(session: Session, actor: Actor) -> Any:
    """An agency's own actions on its panels; every action of a panel the actor runs. Never
    one on a case that excludes the actor's agency.

    The panels are looked up first and given to the query as lists: with both branches as
    subqueries under one OR, no index can serve an overdue list in due-date order."""
    if not actor.can(Permission.ACTION_READ):
        return false()
    member = set(session.scalars(member_panel_ids(actor)))
    managed = set(session.scalars(managed_panel_ids(actor)))
    return actions_of_panels(actor, sorted(managed), sorted(member - managed))


def actions_of_panels(actor: Actor, managed: Sequence[Any], member_only: Sequence[Any]) -> Any:
    """``visible_actions`` once the panels are known: every action of the ``managed`` ones,
    the actor's agency's own on the others (``member_only``). The panel ids may be values or
    bind parameters (``app.services.action_lists`` prepares this statement)."""
    branches: list[Any] = []
    if managed:
        branches.append(col(Action.panel_id).in_(managed))
    if member_only:
        branches.append(
            and_(
                col(Action.owner_agency_id) == actor.agency_id,
                col(Action.panel_id).in_(member_only),
            )
        )
    if not branches:
        return false()
    return and_(or_(*branches), ~_excluded(col(Action.case_id), actor))


def screening_panel_ids(actor: Actor) -> Any:
    """Screened panels (Channel) on which the actor is the police practitioner, who must read
    a referral to screen it before the panel decides (subquery of panel ids)."""
    if actor.kind is not ActorKind.USER or not actor.can(Permission.CASE_READ):
        return select(col(PanelRole.panel_id)).where(false())
    return (
        member_panel_ids(actor)
        .join(Panel, col(Panel.id) == col(PanelRole.panel_id))
        .join(Agency, col(Agency.id) == col(PanelMember.agency_id))
        .where(
            col(Panel.panel_type).in_(SCREENED),
            col(Agency.kind) == AgencyKind.POLICE.value,
        )
    )


def visible_referrals(actor: Actor) -> Any:
    """Own referrals; every referral of a panel one runs or screens; triaged ones behind
    visible cases. Never one behind a case that excludes the actor's agency."""
    own = col(Referral.submitted_by_id) == actor.id
    if not actor.can(Permission.CASE_READ):
        return own
    not_excluded = or_(col(Referral.case_id).is_(None), ~_excluded(col(Referral.case_id), actor))
    runs = or_(
        col(Referral.panel_id).in_(managed_panel_ids(actor)),
        col(Referral.panel_id).in_(screening_panel_ids(actor)),
    )
    triaged = col(Referral.case_id).in_(select(col(Case.id)).where(visible_cases(actor)))
    return or_(own, and_(runs, not_excluded), triaged)


def visible_people(actor: Actor) -> Any:
    """People on visible cases, or on referrals to panels the actor runs."""
    if not actor.can(Permission.CASE_READ):
        return false()
    on_cases = (
        select(col(CasePerson.person_id))
        .join(Case, col(Case.id) == col(CasePerson.case_id))
        .where(visible_cases(actor))
    )
    on_referrals = (
        select(col(ReferralPerson.person_id))
        .join(Referral, col(Referral.id) == col(ReferralPerson.referral_id))
        .where(
            col(Referral.panel_id).in_(managed_panel_ids(actor)),
            or_(col(Referral.case_id).is_(None), ~_excluded(col(Referral.case_id), actor)),
        )
    )
    return or_(col(Person.id).in_(on_cases), col(Person.id).in_(on_referrals))
