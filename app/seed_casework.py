"""The demo partnership's panels, memberships and referrals in different states."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.actor import Actor, ActorKind
from app.models.agency import Agency
from app.models.panel import Panel, PanelMember, PanelRole
from app.models.referral import DecisionIn, ReferralCreate, ScreeningIn
from app.models.user import User
from app.permissions import user_permissions
from app.seed_conferences import seed_conferences
from app.services import referrals

# (panel type, name, member agency short names, referring agencies, {user local part: role})
PANELS: list[tuple[str, str, list[str], list[str], dict[str, str]]] = [
    (
        "dv_marac",
        "Bexley Domestic Violence MARAC",
        ["LBB", "MPS", "NPS", "NHS Bexley", "BWA", "BHP", "LFB"],
        ["LBB", "MPS", "NPS", "NHS Bexley", "BWA", "BHP"],
        {
            "coordinator": "coordinator",
            "chair": "chair",
            "police.rep": "representative",
            "idva": "representative",
            "probation.rep": "representative",
            "health.rep": "observer",
        },
    ),
    (
        "community_marac",
        "Bexley Community Risk MARAC",
        ["LBB", "MPS", "LFB", "NHS Bexley", "BHP"],
        ["LBB", "MPS", "LFB", "NHS Bexley", "BHP"],
        {
            "coordinator": "coordinator",
            "fire.rep": "representative",
            "health.rep": "representative",
        },
    ),
    (
        "channel",
        "Bexley Channel Panel",
        ["LBB", "MPS", "NHS Bexley"],
        ["LBB", "MPS", "NHS Bexley"],
        {"coordinator": "chair", "police.rep": "representative"},
    ),
]


def _actor(user: User) -> Actor:
    return Actor(
        kind=ActorKind.USER,
        id=user.id,
        agency_id=user.agency_id,
        roles=frozenset(user.roles),
        permissions=user_permissions(user.roles),
    )


def _person(
    given: str, family: str, born: str, postcode: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": born,
        "postcode": postcode,
        **extra,
    }


def seed_casework(
    session: Session, agencies: dict[str, Agency], users: dict[str, User]
) -> list[str]:
    """Create the demo panels and a handful of referrals; return lines describing them."""
    panels: dict[str, Panel] = {}
    for panel_type, name, members, referrers, roles in PANELS:
        panel = Panel(panel_type=panel_type, name=name, area="London Borough of Bexley", config={})
        session.add(panel)
        session.flush()
        for short in members:
            session.add(
                PanelMember(
                    panel_id=panel.id, agency_id=agencies[short].id, may_refer=short in referrers
                )
            )
        for local, role in roles.items():
            session.add(PanelRole(panel_id=panel.id, user_id=users[local].id, role=role))
        panels[panel_type] = panel
    session.flush()

    today = date.today()
    police, housing, fire = (
        _actor(users[u]) for u in ("police.rep", "housing.referrer", "fire.rep")
    )
    coordinator = _actor(users["coordinator"])
    consent_s115 = {
        "status": "not_sought",
        "lawful_basis": "crime_and_disorder_act_1998_s115",
        "reason": "Seeking consent would increase the risk to the victim",
    }

    def dv(victim: dict[str, Any], perpetrator: dict[str, Any], yes: int) -> ReferralCreate:
        return ReferralCreate.model_validate(
            {
                "panel_id": panels["dv_marac"].id,
                "referral_date": today - timedelta(days=3),
                "referrer": {"name": "Referring officer"},
                "people": [
                    {"role": "victim", "details": victim},
                    {"role": "perpetrator", "details": perpetrator},
                ],
                "form": {
                    "criterion": "visible_high_risk",
                    "dash_answers": ["yes"] * yes + ["no"] * (24 - yes),
                    "children_in_household": 2,
                    "idva_referral_made": True,
                },
                "consent": consent_s115,
                "crime_reference": "CAD4471/22NOV26",
            }
        )

    accepted = referrals.submit(
        session,
        police,
        dv(
            _person(
                "Amira",
                "Khan",
                "1991-06-14",
                "DA6 7AT",
                safe_contact={"phone": "07700 900456", "safe_times": "weekdays 10:00-12:00"},
            ),
            _person("Daniel", "Hurst", "1987-03-02"),
            yes=16,
        ),
    )
    referrals.decide(session, coordinator, accepted.id, DecisionIn(decision="accept"), None)  # type: ignore[arg-type]
    second = referrals.submit(
        session,
        police,
        dv(
            _person("Sofia", "Mendes", "1999-09-09", "DA8 1QT"),
            _person("Liam", "Barker", "1995-12-12"),
            yes=15,
        ),
    )
    referrals.decide(session, coordinator, second.id, DecisionIn(decision="accept"), None)  # type: ignore[arg-type]
    untriaged = referrals.submit(
        session,
        housing,
        dv(
            _person("Louise", "Marsh", "1984-11-30", "DA7 4HU"),
            _person("Kevin", "Marsh", "1982-01-19"),
            yes=14,
        ),
    )
    asked = referrals.submit(
        session,
        police,
        dv(
            _person("Grace", "Obi", "1996-02-08", "DA15 8BN"),
            _person("Tom", "Price", "1993-09-21"),
            yes=17,
        ),
    )
    referrals.decide(
        session,
        coordinator,
        asked.id,
        DecisionIn(  # type: ignore[arg-type]
            decision="request_information", reason="Please add the children's names and schools"
        ),
        None,
    )

    hoarding = referrals.submit(
        session,
        fire,
        ReferralCreate.model_validate(
            {
                "panel_id": panels["community_marac"].id,
                "referral_date": today - timedelta(days=5),
                "referrer": {"name": "Community safety officer"},
                "people": [
                    {
                        "role": "subject",
                        "details": _person("Harold", "Baines", "1948-07-04", "DA16 3RJ"),
                    }
                ],
                "form": {
                    "risk_areas": ["hoarding", "fire_risk", "self_neglect"],
                    "clutter_rating": 8,
                    "has_capacity": "yes",
                    "fire_brigade_involved": True,
                    "summary": "Home fire safety visit found blocked exits and heaters near paper.",
                },
                "consent": {"status": "given", "given_by": "subject"},
            }
        ),
    )
    referrals.decide(session, coordinator, hoarding.id, DecisionIn(decision="accept"), None)  # type: ignore[arg-type]

    channel = referrals.submit(
        session,
        police,
        ReferralCreate.model_validate(
            {
                "panel_id": panels["channel"].id,
                "referral_date": today - timedelta(days=2),
                "referrer": {"name": "Prevent officer"},
                "people": [
                    {"role": "subject", "details": _person("Ryan", "Cole", "2009-05-17", "DA5 1AA")}
                ],
                "form": {
                    "concern_type": "extreme_right_wing",
                    "concerns": "Sharing extremist material with classmates; isolated at home.",
                    "vulnerabilities": ["isolation", "online grooming"],
                },
                "consent": {
                    "status": "not_sought",
                    "lawful_basis": "ctsa_2015_s38",
                    "reason": "Screening precedes seeking consent under Channel guidance",
                },
            }
        ),
    )
    referrals.screen(session, police, channel.id, ScreeningIn(outcome="suitable"), None)
    session.flush()
    meetings = seed_conferences(
        session,
        panels["dv_marac"],
        agencies,
        users,
        {
            local: _actor(users[local])
            for local in ("coordinator", "chair", "police.rep", "idva", "probation.rep")
        },
    )
    return [
        "Demo panels: " + ", ".join(p.name for p in panels.values()),
        f"  DV MARAC: two cases opened, one referral awaiting triage ({untriaged.id}),"
        " one awaiting more information",
        *meetings,
        "  Community MARAC: one case opened; Channel: one referral screened, awaiting decision",
    ]
