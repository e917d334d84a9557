"""Referrals through the real API: panel-type forms and criteria, consent, permissions,
repeats, triage (accept / reject / request information), amendment, screening, idempotency
and the audit trail of every transition."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.agency import Agency, AgencyKind
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.case import Case
from app.models.panel import Panel
from app.models.referral import Referral
from app.models.user import User
from app.permissions import Role, Scope
from app.security import Security
from tests.builders import (
    bearer,
    client_token,
    dash,
    dv_referral,
    give_role,
    make_agency,
    make_client,
    make_panel,
    make_user,
    publish_cases,
    user_token,
)

PROBLEM = "application/problem+json"
YEAR = utcnow().year

Headers = dict[str, str]


# helpers ------------------------------------------------------------------------------------


def person_headers(
    session: Session,
    security: Security,
    agency: Agency,
    panel: Panel | None = None,
    role: str | None = None,
) -> tuple[User, Headers]:
    user = make_user(session, security, agency)
    if panel is not None and role is not None:
        give_role(session, panel, user.id, role)
    return user, bearer(user_token(security, user))


def admin_headers(session: Session, security: Security) -> Headers:
    agency = make_agency(session, f"Admin agency {uuid.uuid4().hex[:6]}", AgencyKind.OTHER)
    admin = make_user(
        session, security, agency, roles=[Role.ADMIN], totp_secret=pyotp.random_base32()
    )
    return bearer(user_token(security, admin))


@dataclass
class World:
    """A panel with a council coordinator and chair, a police referrer and representative,
    an IDVA representative, an observer and a police partner system."""

    panel: Panel
    council: Agency
    police: Agency
    idva: Agency
    coordinator: User
    coord: Headers
    chair_user: User
    chair: Headers
    referrer: User
    ref: Headers
    rep: Headers
    idva_rep: Headers
    observer: Headers
    partner: Headers


def world(
    session: Session, security: Security, panel_type: str = "dv_marac", **config: object
) -> World:
    council = make_agency(session, f"Council {uuid.uuid4().hex[:6]}", AgencyKind.LOCAL_AUTHORITY)
    police = make_agency(session, f"Police {uuid.uuid4().hex[:6]}", AgencyKind.POLICE)
    idva = make_agency(session, f"IDVA {uuid.uuid4().hex[:6]}", AgencyKind.IDVA_SERVICE)
    panel = make_panel(session, panel_type, [council, police, idva], config=dict(config))
    coordinator, coord = person_headers(session, security, council, panel, "coordinator")
    chair_user, chair = person_headers(session, security, council, panel, "chair")
    referrer, ref = person_headers(session, security, police)
    _, rep = person_headers(session, security, police, panel, "representative")
    _, idva_rep = person_headers(session, security, idva, panel, "representative")
    _, observer = person_headers(session, security, council, panel, "observer")
    gateway = make_client(session, security, police, [Scope.REFERRALS_WRITE])
    return World(
        panel=panel,
        council=council,
        police=police,
        idva=idva,
        coordinator=coordinator,
        coord=coord,
        chair_user=chair_user,
        chair=chair,
        referrer=referrer,
        ref=ref,
        rep=rep,
        idva_rep=idva_rep,
        observer=observer,
        partner=bearer(client_token(security, gateway)),
    )


def submit(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/referrals", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def refused(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/referrals", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["status"] == 422
    assert isinstance(problem["errors"], list)
    return problem


def decide(
    client: TestClient, headers: Headers, referral_id: str, decision: str, reason: str | None = None
) -> Any:
    body: dict[str, Any] = {"decision": decision}
    if reason is not None:
        body["reason"] = reason
    return client.post(f"/api/v1/referrals/{referral_id}/decision", json=body, headers=headers)


def with_form(body: dict[str, Any], **form: object) -> dict[str, Any]:
    return {**body, "form": {**body["form"], **form}}


def victim(given: str, family: str, born: str, postcode: str = "DA6 7AT") -> dict[str, Any]:
    return {"given_name": given, "family_name": family, "date_of_birth": born, "postcode": postcode}


def youth_body(panel_id: uuid.UUID, consent: dict[str, Any], **form: object) -> dict[str, Any]:
    return {
        "panel_id": str(panel_id),
        "referral_date": "2026-11-20",
        "referrer": {"name": "Ms Teacher", "email": "teacher@school.example.org"},
        "people": [
            {"role": "subject", "details": victim("Kai", "Young", "2011-06-01")},
            {"role": "parent_or_carer", "details": victim("Mia", "Young", "1985-03-03")},
        ],
        "form": {"risk_factors": ["excluded from school", "older associates"], **form},
        "consent": consent,
    }


def channel_body(panel_id: uuid.UUID) -> dict[str, Any]:
    return {
        "panel_id": str(panel_id),
        "referral_date": "2026-11-20",
        "referrer": {"name": "Mr Tutor"},
        "people": [{"role": "subject", "details": victim("Alex", "Stone", "2000-01-01")}],
        "form": {"concern_type": "extreme_right_wing", "concerns": "Shares extremist material"},
        "consent": {"status": "given", "given_by": "subject"},
    }


def community_body(panel_id: uuid.UUID, **form: object) -> dict[str, Any]:
    return {
        "panel_id": str(panel_id),
        "referral_date": "2026-11-20",
        "referrer": {"name": "Fire Safety Officer"},
        "people": [{"role": "subject", "details": victim("Edna", "Hoarder", "1940-01-01")}],
        "form": {
            "risk_areas": ["hoarding"],
            "has_capacity": "yes",
            "summary": "Hallways blocked",
            **form,
        },
        "consent": {"status": "given", "given_by": "subject"},
    }


def events(session: Session, action: str, resource_id: str) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == action,  # type: ignore[arg-type]
                AuditEvent.resource_id == resource_id,  # type: ignore[arg-type]
            )
        )
    )


def referral_count(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Referral)) or 0)


# DV MARAC: DASH scoring and the referral criteria ------------------------------------------


def test_dash_score_and_band_are_computed_by_the_service(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    high = submit(client, w.partner, dv_referral(w.panel.id, yes=15))
    assert high["assessment"]["dash_score"] == 15
    assert high["assessment"]["dash_band"] == "high"
    assert high["risk_level"] == "high"
    assert high["status"] == "submitted"

    # Answers other than "yes" never count, whatever they are.
    answers = ["yes"] * 14 + ["not_known"] * 5 + ["no"] * 5
    edge = submit(client, w.partner, with_form(dv_referral(w.panel.id), dash_answers=answers))
    assert edge["assessment"]["dash_score"] == 14
    assert edge["assessment"]["dash_band"] == "high"

    medium = submit(
        client,
        w.partner,
        dv_referral(
            w.panel.id,
            yes=12,
            criterion="potential_escalation",
            incidents_last_12_months=3,
            victim=victim("Mary", "Medium", "1991-01-01"),
        ),
    )
    assert medium["assessment"] == {"dash_score": 12, "dash_band": "medium", "risk_level": "high"}

    standard = submit(
        client,
        w.partner,
        dv_referral(
            w.panel.id,
            yes=9,
            criterion="professional_judgement",
            professional_judgement_reasons="Escalating threats; victim is isolated",
            victim=victim("Sally", "Standard", "1992-01-01"),
        ),
    )
    assert standard["assessment"]["dash_score"] == 9
    assert standard["assessment"]["dash_band"] == "standard"
    # Professional judgement raises the case; it never lowers an actuarial score.
    assert standard["risk_level"] == "high"

    boundary = submit(
        client,
        w.partner,
        dv_referral(
            w.panel.id,
            yes=10,
            criterion="professional_judgement",
            professional_judgement_reasons="Stalking behaviour",
            victim=victim("Bea", "Boundary", "1993-01-01"),
        ),
    )
    assert boundary["assessment"]["dash_band"] == "medium"


def test_visible_high_risk_needs_fourteen_yes_answers(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    problem = refused(client, w.partner, dv_referral(w.panel.id, yes=13))
    assert "DASH score is 13" in problem["detail"]
    assert problem["reasons"] == [
        "visible high risk needs 14 or more 'yes' answers; the DASH score is 13"
    ]
    assert problem["assessment"]["dash_score"] == 13
    assert referral_count(session) == 0
    assert (
        submit(client, w.partner, dv_referral(w.panel.id, yes=14))["assessment"]["dash_score"] == 14
    )


def test_professional_judgement_needs_written_reasons(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    body = dv_referral(w.panel.id, yes=3, criterion="professional_judgement")
    problem = refused(client, w.partner, body)
    assert "professional_judgement_reasons" in problem["detail"]
    # Blank reasons are no reasons.
    refused(client, w.partner, with_form(body, professional_judgement_reasons="   "))
    ok = submit(
        client, w.partner, with_form(body, professional_judgement_reasons="Threats to kill")
    )
    assert ok["form"]["professional_judgement_reasons"] == "Threats to kill"


def test_potential_escalation_uses_the_default_threshold_of_three(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    body = dv_referral(w.panel.id, yes=4, criterion="potential_escalation")
    missing = refused(client, w.partner, body)
    assert "at least 3" in missing["detail"]
    below = refused(client, w.partner, with_form(body, incidents_last_12_months=2))
    assert "incidents_last_12_months of at least 3" in below["detail"]
    ok = submit(client, w.partner, with_form(body, incidents_last_12_months=3))
    assert ok["form"]["incidents_last_12_months"] == 3


def test_potential_escalation_honours_a_panel_configured_threshold(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    admin = admin_headers(session, security)
    r = client.post(
        "/api/v1/panels",
        json={
            "panel_type": "dv_marac",
            "name": "DV MARAC (five call-outs)",
            "area": "Bexley",
            "config": {"escalation_threshold": 5},
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    panel_id = r.json()["id"]
    assert r.json()["config"]["escalation_threshold"] == 5
    members = client.patch(
        f"/api/v1/panels/{panel_id}/members",
        json={"agencies": [{"agency_id": str(w.police.id)}]},
        headers=admin,
    )
    assert members.status_code == 200, members.text

    body = dv_referral(
        uuid.UUID(panel_id), yes=4, criterion="potential_escalation", incidents_last_12_months=4
    )
    problem = refused(client, w.partner, body)
    assert "at least 5" in problem["detail"]
    assert "this panel's threshold" in problem["detail"]
    assert submit(client, w.partner, with_form(body, incidents_last_12_months=5))["status"] == (
        "submitted"
    )
    # The default panel still takes three.
    assert submit(
        client,
        w.partner,
        dv_referral(
            w.panel.id, yes=4, criterion="potential_escalation", incidents_last_12_months=3
        ),
    )


def test_a_client_sent_score_is_never_trusted(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    problem = refused(client, w.partner, dv_referral(w.panel.id, yes=2, dash_score=20))
    assert {e["field"] for e in problem["errors"]} == {"body.form.dash_score"}
    assert problem["errors"][0]["type"] == "extra_forbidden"
    refused(client, w.partner, dv_referral(w.panel.id, yes=15, dash_band="high"))
    refused(client, w.partner, dv_referral(w.panel.id, yes=15, risk_level="standard"))
    assert referral_count(session) == 0


def test_dv_form_is_validated_against_its_schema(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    base = dv_referral(w.panel.id)
    cases: list[tuple[dict[str, Any], str]] = [
        (with_form(base, dash_answers=dash(15)[:23]), "body.form.dash_answers"),
        (with_form(base, dash_answers=[*dash(15), "yes"]), "body.form.dash_answers"),
        (with_form(base, dash_answers=["maybe"] * 24), "body.form.dash_answers.0"),
        (with_form(base, criterion="gut_feeling"), "body.form.criterion"),
        (with_form(base, incidents_last_12_months=-1), "body.form.incidents_last_12_months"),
        (with_form(base, incidents_last_12_months=1001), "body.form.incidents_last_12_months"),
        (with_form(base, children_in_household=31), "body.form.children_in_household"),
        (with_form(base, panel_type="channel"), "body.form.panel_type"),
    ]
    for body, field in cases:
        problem = refused(client, w.partner, body)
        assert field in {e["field"] for e in problem["errors"]}, (field, problem)
    no_criterion = dict(base["form"])
    del no_criterion["criterion"]
    problem = refused(client, w.partner, {**base, "form": no_criterion})
    assert "body.form.criterion" in {e["field"] for e in problem["errors"]}
    assert referral_count(session) == 0


# Other panel types ---------------------------------------------------------------------------


def test_community_marac_hoarding_needs_a_clutter_rating_of_one_to_nine(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "community_marac")
    missing = refused(client, w.ref, community_body(w.panel.id))
    assert "clutter_rating" in missing["detail"]
    for rating in (0, 10):
        problem = refused(client, w.ref, community_body(w.panel.id, clutter_rating=rating))
        assert "body.form.clutter_rating" in {e["field"] for e in problem["errors"]}
    refused(client, w.ref, community_body(w.panel.id, clutter_rating=5, risk_areas=[]))
    ok = submit(client, w.ref, community_body(w.panel.id, clutter_rating=8))
    assert ok["assessment"]["clutter_rating"] == 8
    assert ok["assessment"]["fire_risk"] is True
    assert ok["risk_level"] == "high"
    low = submit(
        client,
        w.ref,
        community_body(w.panel.id, risk_areas=["self_neglect"], summary="Not eating"),
    )
    assert low["assessment"]["fire_risk"] is False
    assert low["risk_level"] == "medium"
    # Roles are the panel type's own.
    body = community_body(w.panel.id, clutter_rating=3)
    body["people"][0]["role"] = "victim"
    assert "Unknown person roles" in refused(client, w.ref, body)["detail"]


def test_prevention_and_gangs_need_consent_of_the_young_person_or_a_parent(
    client: TestClient, session: Session, security: Security
) -> None:
    for panel_type in ("prevention", "gangs"):
        w = world(session, security, panel_type)
        basis = {
            "lawful_basis": "crime_and_disorder_act_1998_s115",
            "reason": "Serious risk of harm",
        }
        for consent in (
            {"status": "refused", **basis},
            {"status": "not_sought", **basis},
            {"status": "given"},  # but by whom?
        ):
            problem = refused(client, w.ref, youth_body(w.panel.id, consent))
            assert "consent of the young person or a parent is required" in problem["detail"]
        by_parent = submit(
            client,
            w.ref,
            youth_body(w.panel.id, {"status": "given", "given_by": "parent_or_carer"}),
        )
        assert by_parent["consent"]["given_by"] == "parent_or_carer"
        assert by_parent["form"]["panel_type"] == panel_type
        by_subject = youth_body(w.panel.id, {"status": "given", "given_by": "subject"})
        by_subject["people"] = by_subject["people"][:1]
        by_subject["people"][0]["details"] = victim("Zed", "Other", "2010-02-02")
        assert submit(client, w.ref, by_subject)["consent"]["status"] == "given"
    # Gangs has its own form fields; prevention does not know them.
    gangs = world(session, security, "gangs")
    prevention = world(session, security, "prevention")
    given = {"status": "given", "given_by": "subject"}
    assert submit(
        client, gangs.ref, youth_body(gangs.panel.id, given, known_associations=["Crew A"])
    )
    problem = refused(
        client, prevention.ref, youth_body(prevention.panel.id, given, known_associations=["A"])
    )
    assert "body.form.known_associations" in {e["field"] for e in problem["errors"]}
    refused(client, prevention.ref, youth_body(prevention.panel.id, given, risk_factors=[]))


def test_channel_referral_form(client: TestClient, session: Session, security: Security) -> None:
    w = world(session, security, "channel")
    ok = submit(client, w.ref, channel_body(w.panel.id))
    assert ok["assessment"]["concern_type"] == "extreme_right_wing"
    bad = channel_body(w.panel.id)
    bad["form"]["concern_type"] = "unknown"
    refused(client, w.ref, bad)


# Consent, people and the rest of the body ----------------------------------------------------


def test_without_consent_the_lawful_basis_and_reason_are_required(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    base = dv_referral(w.panel.id)
    for consent in (
        {"status": "not_sought"},
        {"status": "refused", "lawful_basis": "crime_and_disorder_act_1998_s115"},
        {"status": "refused", "reason": "Risk to the victim"},
    ):
        problem = refused(client, w.partner, {**base, "consent": consent})
        assert "lawful basis" in problem["detail"]
    problem = refused(
        client, w.partner, {**base, "consent": {"status": "refused", "lawful_basis": "whim"}}
    )
    assert "body.consent.lawful_basis" in {e["field"] for e in problem["errors"]}
    refused(client, w.partner, {**base, "consent": {"status": "maybe"}})
    refused(client, w.partner, {**base, "consent": {"status": "given", "colour": "red"}})
    assert referral_count(session) == 0

    given = submit(client, w.partner, {**base, "consent": {"status": "given"}})
    assert given["consent"]["status"] == "given"
    refusal = {
        "status": "refused",
        "lawful_basis": "uk_gdpr_art6_1_e_art9_2_g",
        "reason": "Children at risk",
    }
    body = dv_referral(w.panel.id, victim=victim("Rita", "Refused", "1980-05-05"))
    assert submit(client, w.partner, {**body, "consent": refusal})["consent"] == {
        **refusal,
        "given_by": None,
    }


def test_people_and_their_roles_are_checked(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    base = dv_referral(w.panel.id)
    victim_entry, perpetrator = base["people"]

    unknown = refused(
        client, w.partner, {**base, "people": [victim_entry, {**perpetrator, "role": "witness"}]}
    )
    assert "witness" in unknown["detail"]
    assert (
        "exactly one victim"
        in refused(client, w.partner, {**base, "people": [perpetrator]})["detail"]
    )
    two = {**perpetrator, "role": "victim"}
    assert (
        "exactly one victim"
        in refused(client, w.partner, {**base, "people": [victim_entry, two]})["detail"]
    )
    assert (
        "person_id or details"
        in refused(client, w.partner, {**base, "people": [{"role": "victim"}]})["detail"]
    )
    refused(client, w.partner, {**base, "people": []})
    refused(client, w.partner, {**base, "people": [victim_entry] * 21})
    too_long = {**victim_entry, "details": {**victim_entry["details"], "given_name": "x" * 101}}
    refused(client, w.partner, {**base, "people": [too_long]})
    bad_postcode = {**victim_entry, "details": {**victim_entry["details"], "postcode": "DA6;7AT"}}
    refused(client, w.partner, {**base, "people": [bad_postcode]})
    bad_dob = {
        **victim_entry,
        "details": {**victim_entry["details"], "date_of_birth": "1990-13-01"},
    }
    refused(client, w.partner, {**base, "people": [bad_dob]})
    extra = {**victim_entry, "details": {**victim_entry["details"], "nickname": "JJ"}}
    refused(client, w.partner, {**base, "people": [extra]})
    # Someone described twice with the same role is refused as a whole.
    twice = {**perpetrator}
    assert (
        "twice"
        in refused(client, w.partner, {**base, "people": [victim_entry, perpetrator, twice]})[
            "detail"
        ]
    )
    assert referral_count(session) == 0

    child = {
        "role": "child_in_household",
        "details": {"given_name": "Tim", "family_name": "Doe", "date_of_birth": "2018-01-01"},
    }
    ok = submit(client, w.partner, {**base, "people": [victim_entry, perpetrator, child]})
    assert sorted(p["role"] for p in ok["people"]) == [
        "child_in_household",
        "perpetrator",
        "victim",
    ]


def test_body_bounds_and_unknown_fields(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    base = dv_referral(w.panel.id)
    for body, field in [
        ({**base, "colour": "red"}, "body.colour"),
        ({**base, "crime_reference": "x" * 65}, "body.crime_reference"),
        ({**base, "referrer": {"name": ""}}, "body.referrer.name"),
        ({**base, "referrer": {"name": "A", "email": "not-an-email"}}, "body.referrer.email"),
        ({**base, "referrer": {"name": "A", "pager": "1"}}, "body.referrer.pager"),
        ({**base, "referral_date": "yesterday"}, "body.referral_date"),
        ({**base, "panel_id": "not-a-uuid"}, "body.panel_id"),
        ({**base, "form": "dash"}, "body.form"),
    ]:
        problem = refused(client, w.partner, body)
        assert field in {e["field"] for e in problem["errors"]}, (field, problem)
    missing = {k: v for k, v in base.items() if k != "consent"}
    assert "body.consent" in {e["field"] for e in refused(client, w.partner, missing)["errors"]}
    assert referral_count(session) == 0


# Who may refer ------------------------------------------------------------------------------


def test_only_permitted_agencies_may_refer(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    body = dv_referral(w.panel.id)
    outsider_agency = make_agency(session, "Outsider Housing", AgencyKind.HOUSING)
    _, outsider = person_headers(session, security, outsider_agency)
    r = client.post("/api/v1/referrals", json=body, headers=outsider)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith(PROBLEM)

    read_only = make_client(session, security, w.police, [Scope.REFERRALS_READ])
    r = client.post(
        "/api/v1/referrals", json=body, headers=bearer(client_token(security, read_only))
    )
    assert r.status_code == 403
    r = client.post("/api/v1/referrals", json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")

    # may_refer is the panel's configuration, changed by an admin.
    admin = admin_headers(session, security)
    r = client.patch(
        f"/api/v1/panels/{w.panel.id}/members",
        json={"agencies": [{"agency_id": str(w.police.id), "may_refer": False}]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert client.post("/api/v1/referrals", json=body, headers=w.partner).status_code == 403
    assert client.post("/api/v1/referrals", json=body, headers=w.ref).status_code == 403
    assert referral_count(session) == 0
    r = client.patch(
        f"/api/v1/panels/{w.panel.id}/members",
        json={"agencies": [{"agency_id": str(w.police.id), "may_refer": True}]},
        headers=admin,
    )
    assert r.status_code == 200
    assert submit(client, w.ref, body)["referring_agency_id"] == str(w.police.id)

    # Unknown and inactive panels are bad input.
    r = client.post(
        "/api/v1/referrals", json={**body, "panel_id": str(uuid.uuid4())}, headers=w.partner
    )
    assert r.status_code == 422
    r = client.patch(f"/api/v1/panels/{w.panel.id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.post("/api/v1/referrals", json=body, headers=w.partner).status_code == 422


def test_a_referral_records_who_sent_it_and_the_referrer_contact(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    r = client.post("/api/v1/referrals", json=dv_referral(w.panel.id), headers=w.partner)
    assert r.status_code == 201
    out = r.json()
    assert r.headers["location"] == f"/api/v1/referrals/{out['id']}"
    assert r.headers["etag"] == '"1"'
    assert out["referrer_name"] == "DC Sam Officer"
    assert out["crime_reference"] == "CAD1234/20NOV26"
    assert out["referral_date"] == "2026-11-20"
    assert out["panel_id"] == str(w.panel.id)
    session.expire_all()
    row = session.get(Referral, uuid.UUID(out["id"]))
    assert row is not None
    assert row.submitted_by_kind == "api_client"
    assert row.referrer_email == "sam.officer@police.example.org"
    assert row.referring_agency_id == w.police.id


# Triage -------------------------------------------------------------------------------------


def test_accept_opens_a_case_with_a_sequential_reference(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    second = submit(
        client, w.partner, dv_referral(w.panel.id, victim=victim("Ann", "Other", "1970-01-01"))
    )
    r = decide(client, w.coord, first["id"], "accept")
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "accepted"
    assert accepted["decision"] == "accept"
    assert accepted["decided_at"] is not None
    assert accepted["version"] == 2
    assert r.headers["etag"] == '"2"'
    case = client.get(f"/api/v1/cases/{accepted['case_id']}", headers=w.coord).json()
    assert case["reference"] == f"DVM-{YEAR}-0001"
    assert case["status"] == "open"
    assert case["stage"] == "open"
    assert case["risk_level"] == "high"
    assert case["is_repeat"] is False
    assert case["panel_type"] == "dv_marac"

    # The chair may decide too.
    r = decide(client, w.chair, second["id"], "accept")
    assert r.status_code == 200, r.text
    case2 = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord).json()
    assert case2["reference"] == f"DVM-{YEAR}-0002"

    # A second panel (of the same type) counts from one on its own.
    other = make_panel(session, "dv_marac", [w.council, w.police])
    give_role(session, other, w.coordinator.id, "coordinator")
    third = submit(
        client, w.partner, dv_referral(other.id, victim=victim("Cy", "Third", "1971-01-01"))
    )
    r = decide(client, w.coord, third["id"], "accept")
    assert r.status_code == 200, r.text
    case3 = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord).json()
    # References are unique across the partnership: the second DV MARAC's carry DVM2.
    assert case3["reference"] == f"DVM2-{YEAR}-0001"
    fourth = submit(
        client, w.partner, dv_referral(other.id, victim=victim("Di", "Fourth", "1972-01-01"))
    )
    r = decide(client, w.coord, fourth["id"], "accept")
    case4 = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord).json()
    assert case4["reference"] == f"DVM2-{YEAR}-0002"
    # Another type has its own prefix and numbering.
    crm = make_panel(session, "community_marac", [w.council, w.police])
    give_role(session, crm, w.coordinator.id, "coordinator")
    fifth = submit(client, w.partner, community_body(crm.id, clutter_rating=4))
    r = decide(client, w.coord, fifth["id"], "accept")
    case5 = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord).json()
    assert case5["reference"] == f"CRM-{YEAR}-0001"


def test_only_the_coordinator_or_chair_may_decide(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.ref, dv_referral(w.panel.id))
    # The referrer sees their referral but may not triage it.
    assert decide(client, w.ref, referral["id"], "accept").status_code == 403
    # Representatives and observers do not see untriaged referrals at all.
    assert decide(client, w.rep, referral["id"], "accept").status_code == 404
    assert decide(client, w.observer, referral["id"], "accept").status_code == 404
    # Partner systems and admins have no triage permission.
    assert decide(client, w.partner, referral["id"], "accept").status_code == 403
    assert (
        decide(client, admin_headers(session, security), referral["id"], "accept").status_code
        == 403
    )
    assert decide(client, w.coord, str(uuid.uuid4()), "accept").status_code == 404
    session.expire_all()
    assert session.get(Referral, uuid.UUID(referral["id"])).status == "submitted"  # type: ignore[union-attr]


def test_reject_needs_a_reason_and_a_decided_referral_is_final(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    r = decide(client, w.coord, referral["id"], "reject")
    assert r.status_code == 422
    assert "reason" in r.json()["detail"]
    assert (
        client.get(f"/api/v1/referrals/{referral['id']}", headers=w.coord).json()["status"]
        == "submitted"
    )
    r = decide(client, w.coord, referral["id"], "reject", reason="   ")
    assert r.status_code == 422
    r = decide(client, w.coord, referral["id"], "reject", reason="Does not meet the threshold")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert r.json()["decision_reason"] == "Does not meet the threshold"
    assert r.json()["case_id"] is None
    for decision in ("accept", "reject", "request_information"):
        again = decide(client, w.chair, referral["id"], decision, reason="Second thoughts")
        assert again.status_code == 409, again.text
        assert again.headers["content-type"].startswith(PROBLEM)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Case)) == 0

    accepted = submit(
        client, w.partner, dv_referral(w.panel.id, victim=victim("Acc", "Epted", "1960-01-01"))
    )
    assert decide(client, w.coord, accepted["id"], "accept").status_code == 200
    assert decide(client, w.coord, accepted["id"], "accept").status_code == 409
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Case)) == 1


def test_decision_body_is_validated(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    url = f"/api/v1/referrals/{referral['id']}/decision"
    for body in (
        {"decision": "maybe"},
        {},
        {"decision": "accept", "case_id": str(uuid.uuid4())},
        {"decision": "reject", "reason": "x" * 4001},
    ):
        r = client.post(url, json=body, headers=w.coord)
        assert r.status_code == 422, body
        assert r.headers["content-type"].startswith(PROBLEM)
    r = client.post(url, json={"decision": "accept"}, headers={**w.coord, "If-Match": '"7"'})
    assert r.status_code == 412
    r = client.post(url, json={"decision": "accept"}, headers={**w.coord, "If-Match": '"1"'})
    assert r.status_code == 200


def test_request_information_then_the_referrer_amends(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.ref, dv_referral(w.panel.id, yes=14))
    rid = referral["id"]
    r = decide(client, w.coord, rid, "request_information")
    assert r.status_code == 422
    r = decide(client, w.coord, rid, "request_information", reason="Which DASH answers changed?")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "information_requested"
    # Awaiting the referrer: no decision until they answer.
    assert decide(client, w.coord, rid, "accept").status_code == 409

    amended_form = {**referral["form"], "dash_answers": dash(16)}
    del amended_form["panel_type"]
    # Someone else may not amend it: the coordinator (who sees it) is refused, others never
    # learn it exists, and a partner system of the same agency is not the referrer either.
    assert (
        client.patch(
            f"/api/v1/referrals/{rid}", json={"form": amended_form}, headers=w.coord
        ).status_code
        == 403
    )
    _, colleague = person_headers(session, security, w.police)
    assert (
        client.patch(
            f"/api/v1/referrals/{rid}", json={"form": amended_form}, headers=colleague
        ).status_code
        == 404
    )
    assert (
        client.patch(
            f"/api/v1/referrals/{rid}", json={"form": amended_form}, headers=w.partner
        ).status_code
        == 404
    )
    # Bad amendments are refused and change nothing.
    bad = client.patch(
        f"/api/v1/referrals/{rid}", json={"form": {**amended_form, "dash_score": 1}}, headers=w.ref
    )
    assert bad.status_code == 422
    bad = client.patch(f"/api/v1/referrals/{rid}", json={"colour": "red"}, headers=w.ref)
    assert bad.status_code == 422
    low = client.patch(
        f"/api/v1/referrals/{rid}",
        json={"form": {**amended_form, "dash_answers": dash(2)}},
        headers=w.ref,
    )
    assert low.status_code == 422
    assert "DASH score is 2" in low.json()["detail"]
    stale = client.patch(
        f"/api/v1/referrals/{rid}",
        json={"form": amended_form},
        headers={**w.ref, "If-Match": '"1"'},
    )
    assert stale.status_code == 412

    r = client.patch(
        f"/api/v1/referrals/{rid}",
        json={"form": amended_form, "note": "Two more answers after a new incident"},
        headers={**w.ref, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"
    assert r.json()["assessment"]["dash_score"] == 16
    assert r.json()["version"] == 3
    assert r.headers["etag"] == '"3"'
    # Once resubmitted it is not amendable again until asked.
    again = client.patch(f"/api/v1/referrals/{rid}", json={"form": amended_form}, headers=w.ref)
    assert again.status_code == 409
    assert decide(client, w.coord, rid, "accept").status_code == 200
    assert len(events(session, "referral.amend", rid)) == 1


def test_every_transition_is_audited(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    rid = referral["id"]
    coord_view = client.get(f"/api/v1/referrals/{rid}", headers=w.coord).json()
    victim_id = next(p["person_id"] for p in coord_view["people"] if p["role"] == "victim")

    [submitted] = events(session, "referral.submit", rid)
    assert submitted.outcome == "success"
    assert submitted.actor_type == "api_client"
    assert submitted.actor_agency_id == w.police.id
    assert str(submitted.person_id) == victim_id
    assert submitted.resource_type == "referral"

    r = decide(client, w.coord, rid, "request_information", reason="More please")
    assert r.status_code == 200
    amended = dict(referral["form"])
    del amended["panel_type"]
    r = client.patch(f"/api/v1/referrals/{rid}", json={"form": amended}, headers=w.partner)
    assert r.status_code == 200, r.text
    r = decide(client, w.coord, rid, "accept")
    case_id = r.json()["case_id"]

    decided = events(session, "referral.decide", rid)
    assert [e.changes for e in decided] == [
        {"status": "information_requested", "decision": "request_information"},
        {"status": "accepted", "decision": "accept"},
    ]
    assert decided[-1].actor_id == w.coordinator.id
    assert str(decided[-1].case_id) == case_id
    assert str(decided[-1].person_id) == victim_id
    [opened] = events(session, "case.open", case_id)
    assert str(opened.case_id) == case_id
    assert str(opened.person_id) == victim_id
    assert opened.detail is not None
    assert opened.detail["referral_id"] == rid
    assert opened.detail["reference"] == f"DVM-{YEAR}-0001"

    # A refusal is audited too, and changes nothing.
    assert decide(client, w.coord, rid, "accept").status_code == 409
    session.expire_all()
    refusals = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access.refused",  # type: ignore[arg-type]
            AuditEvent.resource_id == rid,  # type: ignore[arg-type]
        )
    ).all()
    assert [e.outcome for e in refusals] == ["conflict"]


# Repeats ------------------------------------------------------------------------------------


def test_a_new_referral_about_a_person_with_a_recent_case_is_flagged_repeat(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    assert first["is_repeat"] is None  # the partner system does not run the panel
    assert (
        client.get(f"/api/v1/referrals/{first['id']}", headers=w.coord).json()["is_repeat"] is False
    )
    case_id = decide(client, w.coord, first["id"], "accept").json()["case_id"]

    again = submit(client, w.partner, dv_referral(w.panel.id))
    # The partner system learns nothing about earlier cases ...
    assert again["is_repeat"] is None
    assert again["repeat_of_case_id"] is None
    assert again["case_id"] is None
    assert all(p["person_id"] is None for p in again["people"])
    # ... the coordinator sees the repeat.
    seen = client.get(f"/api/v1/referrals/{again['id']}", headers=w.coord).json()
    assert seen["is_repeat"] is True
    assert seen["repeat_of_case_id"] == case_id

    # Accepting it adds to the person's open case rather than opening another.
    r = decide(client, w.coord, again["id"], "accept")
    assert r.status_code == 200
    assert r.json()["case_id"] == case_id
    case = client.get(f"/api/v1/cases/{case_id}", headers=w.coord).json()
    assert case["is_repeat"] is True
    assert case["reference"] == f"DVM-{YEAR}-0001"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Case)) == 1
    # Someone else is not a repeat.
    fresh = submit(
        client, w.partner, dv_referral(w.panel.id, victim=victim("New", "Person", "1999-09-09"))
    )
    assert (
        client.get(f"/api/v1/referrals/{fresh['id']}", headers=w.coord).json()["is_repeat"] is False
    )


def test_accepting_into_an_open_case_flags_the_referral_repeat(
    client: TestClient, session: Session, security: Security
) -> None:
    """Two referrals about one person, both waiting: the second accepted joins the first's
    case and is flagged a repeat of it, though it was not one when it was submitted."""
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    second = submit(client, w.partner, dv_referral(w.panel.id))
    assert (
        client.get(f"/api/v1/referrals/{second['id']}", headers=w.coord).json()["is_repeat"]
        is False
    )
    case_id = decide(client, w.coord, first["id"], "accept").json()["case_id"]
    r = decide(client, w.coord, second["id"], "accept")
    assert r.status_code == 200, r.text
    assert r.json()["case_id"] == case_id
    assert r.json()["is_repeat"] is True
    assert r.json()["repeat_of_case_id"] == case_id
    assert client.get(f"/api/v1/cases/{case_id}", headers=w.coord).json()["is_repeat"] is True


def test_repeat_window_is_the_panels_configuration(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, repeat_window_days=30)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    case_id = decide(client, w.coord, first["id"], "accept").json()["case_id"]
    r = client.patch(
        f"/api/v1/cases/{case_id}",
        json={"status": "closed", "close_reason": "Risk reduced"},
        headers=w.coord,
    )
    assert r.status_code == 200, r.text
    # Heard 40 days ago: outside this panel's 30-day window.
    session.expire_all()
    case = session.get(Case, uuid.UUID(case_id))
    assert case is not None
    case.opened_at = utcnow() - timedelta(days=40)
    case.last_heard_at = None
    session.commit()
    outside = submit(client, w.partner, dv_referral(w.panel.id))
    seen = client.get(f"/api/v1/referrals/{outside['id']}", headers=w.coord).json()
    assert seen["is_repeat"] is False
    assert seen["repeat_of_case_id"] is None
    # Heard 20 days ago: inside it, even though the case is closed.
    session.expire_all()
    case = session.get(Case, uuid.UUID(case_id))
    assert case is not None
    case.last_heard_at = utcnow() - timedelta(days=20)
    session.commit()
    inside = submit(client, w.partner, dv_referral(w.panel.id))
    seen = client.get(f"/api/v1/referrals/{inside['id']}", headers=w.coord).json()
    assert seen["is_repeat"] is True
    assert seen["repeat_of_case_id"] == case_id
    # Accepting it opens a new case (the old one is closed), flagged a repeat of the old one.
    new_case_id = decide(client, w.coord, inside["id"], "accept").json()["case_id"]
    assert new_case_id != case_id
    new_case = client.get(f"/api/v1/cases/{new_case_id}", headers=w.coord).json()
    assert new_case["is_repeat"] is True
    assert new_case["repeat_of_case_id"] == case_id
    assert new_case["reference"] == f"DVM-{YEAR}-0002"


def test_a_case_on_another_panel_is_not_a_repeat_here(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    other = make_panel(session, "dv_marac", [w.police, w.council])
    give_role(session, other, w.coordinator.id, "coordinator")
    first = submit(client, w.partner, dv_referral(other.id))
    assert decide(client, w.coord, first["id"], "accept").status_code == 200
    here = submit(client, w.partner, dv_referral(w.panel.id))
    seen = client.get(f"/api/v1/referrals/{here['id']}", headers=w.coord).json()
    assert seen["is_repeat"] is False


def test_a_perpetrator_on_an_earlier_case_is_not_a_repeat_victim(
    client: TestClient, session: Session, security: Security
) -> None:
    """Repeat MARAC is about the victim: having been the perpetrator on a case is not it."""
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    assert decide(client, w.coord, first["id"], "accept").status_code == 200
    body = dv_referral(w.panel.id, victim=victim("John", "Roe", "1988-02-02", postcode="DA1 1AA"))
    body["people"][1]["details"] = victim("Jane", "Other", "1990-04-01")
    turned = submit(client, w.partner, body)
    seen = client.get(f"/api/v1/referrals/{turned['id']}", headers=w.coord).json()
    assert seen["is_repeat"] is False
    assert seen["repeat_of_case_id"] is None


# Reading referrals ----------------------------------------------------------------------------


def test_who_sees_which_referrals(client: TestClient, session: Session, security: Security) -> None:
    w = world(session, security)
    mine = submit(client, w.ref, dv_referral(w.panel.id))
    theirs = submit(
        client, w.partner, dv_referral(w.panel.id, victim=victim("Ann", "Other", "1970-01-01"))
    )
    # The coordinator sees every referral of the panel.
    listed = client.get("/api/v1/referrals", headers=w.coord).json()
    assert {r["id"] for r in listed["items"]} == {mine["id"], theirs["id"]}
    assert listed["next_cursor"] is None
    # The referrer sees their own only.
    own = client.get("/api/v1/referrals", headers=w.ref).json()
    assert [r["id"] for r in own["items"]] == [mine["id"]]
    assert client.get(f"/api/v1/referrals/{theirs['id']}", headers=w.ref).status_code == 404
    # Before triage, representatives see none; after, those behind cases they see, which
    # (not running the panel) they do once the case is on a published agenda.
    assert client.get("/api/v1/referrals", headers=w.rep).json()["items"] == []
    assert client.get(f"/api/v1/referrals/{mine['id']}", headers=w.rep).status_code == 404
    case_id = decide(client, w.coord, mine["id"], "accept").json()["case_id"]
    assert client.get(f"/api/v1/referrals/{mine['id']}", headers=w.rep).status_code == 404
    assert client.get("/api/v1/referrals", headers=w.rep).json()["items"] == []
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case_id])
    rep_listed = client.get("/api/v1/referrals", headers=w.rep).json()
    assert [r["id"] for r in rep_listed["items"]] == [mine["id"]]
    rep_view = client.get(f"/api/v1/referrals/{mine['id']}", headers=w.rep)
    assert rep_view.status_code == 200
    assert rep_view.json()["case_id"] == case_id
    # The referrer sees the outcome but not the case.
    ref_view = client.get(f"/api/v1/referrals/{mine['id']}", headers=w.ref).json()
    assert ref_view["status"] == "accepted"
    assert ref_view["case_id"] is None
    assert ref_view["possible_duplicates"] is None
    # Filters and pagination.
    submitted = client.get(
        "/api/v1/referrals", params={"status": "submitted"}, headers=w.coord
    ).json()
    assert [r["id"] for r in submitted["items"]] == [theirs["id"]]
    page = client.get("/api/v1/referrals", params={"limit": 1}, headers=w.coord).json()
    assert len(page["items"]) == 1
    rest = client.get(
        "/api/v1/referrals", params={"limit": 1, "cursor": page["next_cursor"]}, headers=w.coord
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {mine["id"], theirs["id"]}
    other = make_panel(session, "dv_marac", [w.council])
    assert (
        client.get("/api/v1/referrals", params={"panel_id": str(other.id)}, headers=w.coord).json()[
            "items"
        ]
        == []
    )
    assert (
        client.get("/api/v1/referrals", params={"status": "maybe"}, headers=w.coord).status_code
        == 422
    )
    assert client.get("/api/v1/referrals", params={"limit": 0}, headers=w.coord).status_code == 422
    assert (
        client.get("/api/v1/referrals", params={"cursor": "garbage"}, headers=w.coord).status_code
        == 422
    )


# Idempotency --------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_response(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    body = dv_referral(w.panel.id)
    key = {"Idempotency-Key": "ref-2026-11-20-0001"}
    first = client.post("/api/v1/referrals", json=body, headers={**w.partner, **key})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert referral_count(session) == 1

    retry = client.post("/api/v1/referrals", json=body, headers={**w.partner, **key})
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert referral_count(session) == 1

    # The same key with another body is an error, and creates nothing.
    other = client.post(
        "/api/v1/referrals", json=dv_referral(w.panel.id, yes=20), headers={**w.partner, **key}
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith(PROBLEM)
    assert "Idempotency-Key" in other.json()["detail"]
    assert referral_count(session) == 1

    # Another key, or the same key from another principal, is a new request.
    fresh = client.post(
        "/api/v1/referrals", json=body, headers={**w.partner, "Idempotency-Key": "other"}
    )
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first.json()["id"]
    by_user = client.post("/api/v1/referrals", json=body, headers={**w.ref, **key})
    assert by_user.status_code == 201
    assert "idempotent-replayed" not in by_user.headers
    assert by_user.json()["id"] != first.json()["id"]
    assert referral_count(session) == 3
    # Without a key every POST creates.
    assert client.post("/api/v1/referrals", json=body, headers=w.partner).status_code == 201
    assert referral_count(session) == 4


def test_a_refused_request_does_not_use_up_its_idempotency_key(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    key = {"Idempotency-Key": "k-1"}
    low = client.post(
        "/api/v1/referrals", json=dv_referral(w.panel.id, yes=3), headers={**w.partner, **key}
    )
    assert low.status_code == 422
    ok = client.post(
        "/api/v1/referrals", json=dv_referral(w.panel.id), headers={**w.partner, **key}
    )
    assert ok.status_code == 201
    assert "idempotent-replayed" not in ok.headers
    too_long = client.post(
        "/api/v1/referrals",
        json=dv_referral(w.panel.id),
        headers={**w.partner, "Idempotency-Key": "k" * 201},
    )
    assert too_long.status_code == 422
    assert referral_count(session) == 1


# Channel screening ----------------------------------------------------------------------------


def test_channel_referrals_are_screened_by_the_police_practitioner_before_a_decision(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    referral = submit(client, w.ref, channel_body(w.panel.id))
    rid = referral["id"]
    # No decision before screening.
    r = decide(client, w.coord, rid, "accept")
    assert r.status_code == 409
    assert "screened" in r.json()["detail"]
    assert decide(client, w.coord, rid, "reject", reason="No").status_code == 409

    url = f"/api/v1/referrals/{rid}/screening"
    # Only the police practitioner on the panel screens: not the (council) coordinator, not
    # the IDVA representative, not a police officer who is not on the panel.
    assert client.post(url, json={"outcome": "suitable"}, headers=w.coord).status_code == 403
    assert client.post(url, json={"outcome": "suitable"}, headers=w.idva_rep).status_code in {
        403,
        404,
    }
    _, off_panel_police = person_headers(session, security, w.police)
    assert client.post(url, json={"outcome": "suitable"}, headers=off_panel_police).status_code in {
        403,
        404,
    }
    assert client.post(url, json={"outcome": "maybe"}, headers=w.rep).status_code == 422
    assert (
        client.post(url, json={"outcome": "suitable", "by": "me"}, headers=w.rep).status_code == 422
    )

    # The practitioner can read what they are to screen.
    assert client.get(f"/api/v1/referrals/{rid}", headers=w.rep).status_code == 200
    r = client.post(url, json={"outcome": "suitable", "note": "Gateway checks done"}, headers=w.rep)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "screened"
    assert r.json()["screening_outcome"] == "suitable"
    assert len(events(session, "referral.screen", rid)) == 1
    # Screened once only.
    assert client.post(url, json={"outcome": "suitable"}, headers=w.rep).status_code == 409

    r = decide(client, w.coord, rid, "accept")
    assert r.status_code == 200, r.text
    case = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord).json()
    assert case["reference"] == f"CHN-{YEAR}-0001"
    assert case["stage"] == "information_gathering"
    assert case["panel_type"] == "channel"


def test_channel_screening_outcomes(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    more = submit(client, w.ref, channel_body(w.panel.id))
    url = f"/api/v1/referrals/{more['id']}/screening"
    r = client.post(
        url, json={"outcome": "more_information", "note": "Which school?"}, headers=w.rep
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "information_requested"
    assert decide(client, w.coord, more["id"], "accept").status_code == 409
    form = {k: v for k, v in more["form"].items() if k != "panel_type"}
    r = client.patch(
        f"/api/v1/referrals/{more['id']}",
        json={"form": {**form, "concerns": "Shares material at Bexley College"}},
        headers=w.ref,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"
    assert r.json()["screening_outcome"] is None
    # Back through the gateway before any decision.
    assert decide(client, w.coord, more["id"], "accept").status_code == 409
    assert client.post(url, json={"outcome": "suitable"}, headers=w.rep).json()["status"] == (
        "screened"
    )

    body = channel_body(w.panel.id)
    body["people"][0]["details"] = victim("Not", "Appropriate", "2001-01-01")
    no = submit(client, w.ref, body)
    r = client.post(
        f"/api/v1/referrals/{no['id']}/screening",
        json={"outcome": "not_appropriate"},
        headers=w.rep,
    )
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    assert decide(client, w.coord, no["id"], "accept").status_code == 409


def test_panels_without_screening_refuse_it(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    r = client.post(
        f"/api/v1/referrals/{referral['id']}/screening",
        json={"outcome": "suitable"},
        headers=w.coord,
    )
    assert r.status_code == 409
    assert "does not screen" in r.json()["detail"]


def test_channel_referrals_are_isolated_from_other_panels(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    dv = make_panel(session, "dv_marac", [w.council, w.police])
    _, dv_coord = person_headers(session, security, w.council, dv, "coordinator")
    referral = submit(client, w.ref, channel_body(w.panel.id))
    assert (
        client.post(
            f"/api/v1/referrals/{referral['id']}/screening",
            json={"outcome": "suitable"},
            headers=w.rep,
        ).status_code
        == 200
    )
    case_id = decide(client, w.coord, referral["id"], "accept").json()["case_id"]
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=dv_coord).status_code == 404
    assert client.get(f"/api/v1/cases/{case_id}", headers=dv_coord).status_code == 404
    assert client.get("/api/v1/cases", headers=dv_coord).json()["items"] == []
    # The Channel panel's police practitioner sees the case once it is on a published agenda;
    # the other panel's coordinator never does.
    assert client.get("/api/v1/cases", headers=w.rep).json()["items"] == []
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case_id])
    assert [c["id"] for c in client.get("/api/v1/cases", headers=w.rep).json()["items"]] == [
        case_id
    ]
    assert client.get(f"/api/v1/cases/{case_id}", headers=dv_coord).status_code == 404
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=dv_coord).status_code == 404
    assert client.get("/api/v1/cases", headers=dv_coord).json()["items"] == []


def test_referral_from_a_plain_user_and_roles_in_the_body_are_kept(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.ref, dv_referral(w.panel.id))
    session.expire_all()
    row = session.get(Referral, uuid.UUID(referral["id"]))
    assert row is not None
    assert row.submitted_by_kind == "user"
    assert row.submitted_by_id == w.referrer.id
    coord_view = client.get(f"/api/v1/referrals/{referral['id']}", headers=w.coord).json()
    assert {p["role"] for p in coord_view["people"]} == {"victim", "perpetrator"}
    assert all(p["person_id"] for p in coord_view["people"])
    assert coord_view["possible_duplicates"] == 0


def test_amendment_body_is_validated(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.ref, dv_referral(w.panel.id))
    rid = referral["id"]
    assert decide(client, w.coord, rid, "request_information", reason="More").status_code == 200
    url = f"/api/v1/referrals/{rid}"
    for body in (
        {"crime_reference": "x" * 65},
        {"note": ""},
        {"note": "x" * 4001},
        {"form": "not an object"},
        {"consent": {"status": "not_sought"}},  # no lawful basis
        {"consent": {"status": "given", "extra": 1}},
        {"form": {"criterion": "visible_high_risk", "dash_answers": dash(15), "score": 15}},
    ):
        r = client.patch(url, json=body, headers=w.ref)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert client.get(url, headers=w.coord).json()["status"] == "information_requested"
    r = client.patch(
        url,
        json={"crime_reference": "CAD9999/21NOV26", "consent": {"status": "given"}},
        headers=w.ref,
    )
    assert r.status_code == 200, r.text
    assert r.json()["crime_reference"] == "CAD9999/21NOV26"
    assert r.json()["consent"]["status"] == "given"
    assert r.json()["status"] == "submitted"
    # The form was not resent, so the assessment stands.
    assert r.json()["assessment"]["dash_score"] == 15
