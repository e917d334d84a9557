"""Cases through the real API: listing with filters and cursors, reading, changing with
If-Match, Channel's consent-gated support plan, consent records and agency exclusions."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.agency import AgencyKind
from app.models.audit import AuditEvent
from app.models.case import Case
from app.permissions import Scope
from app.security import Security
from tests.builders import (
    bearer,
    client_token,
    dv_referral,
    give_role,
    make_agency,
    make_client,
    make_panel,
    publish_cases,
    user_token,
)
from tests.test_referrals import (
    Headers,
    World,
    admin_headers,
    channel_body,
    decide,
    person_headers,
    submit,
    victim,
    world,
)

PROBLEM = "application/problem+json"


def open_case(client: TestClient, w: World, who: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DV MARAC case opened from an accepted referral; returns it as the coordinator sees it."""
    referral = submit(client, w.partner, dv_referral(w.panel.id, victim=who))
    r = decide(client, w.coord, referral["id"], "accept")
    assert r.status_code == 200, r.text
    case = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord)
    assert case.status_code == 200, case.text
    out: dict[str, Any] = case.json()
    return out


def open_channel_case(client: TestClient, w: World, born: str) -> dict[str, Any]:
    body = channel_body(w.panel.id)
    body["people"] = [
        {"role": "subject", "details": victim("Sam", "Young", born)},
        {"role": "parent_or_carer", "details": victim("Pat", "Young", "1980-01-01")},
    ]
    referral = submit(client, w.ref, body)
    screened = client.post(
        f"/api/v1/referrals/{referral['id']}/screening",
        json={"outcome": "suitable"},
        headers=w.rep,
    )
    assert screened.status_code == 200, screened.text
    r = decide(client, w.coord, referral["id"], "accept")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=w.coord).json()
    return out


def patch(
    client: TestClient,
    headers: Headers,
    case_id: str,
    body: dict[str, Any],
    etag: str | None = None,
) -> Any:
    extra = {"If-Match": etag} if etag else {}
    return client.patch(f"/api/v1/cases/{case_id}", json=body, headers={**headers, **extra})


def ids(page: dict[str, Any]) -> list[str]:
    return [c["id"] for c in page["items"]]


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    return body


def subject(case: dict[str, Any], role: str) -> str:
    return next(p["person_id"] for p in case["people"] if p["role"] == role)


# Listing ------------------------------------------------------------------------------------


def test_list_filters_and_walks_every_page(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    opened = [
        open_case(client, w, victim(f"Person{i}", f"Family{i}", f"19{70 + i}-01-01"))
        for i in range(5)
    ]
    all_ids = [c["id"] for c in opened]

    walked: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/api/v1/cases", params=params, headers=w.coord)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        walked += ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert walked == all_ids  # oldest first, each once
    summary = client.get("/api/v1/cases", headers=w.coord).json()["items"][0]
    assert set(summary) == {
        "id",
        "panel_id",
        "reference",
        "status",
        "stage",
        "risk_level",
        "is_repeat",
        "opened_at",
        "version",
    }

    # risk_level and status filters.
    assert patch(client, w.coord, all_ids[1], {"risk_level": "medium"}).status_code == 200
    closing = {"status": "closed", "close_reason": "Risk reduced"}
    assert patch(client, w.coord, all_ids[2], closing).status_code == 200
    medium = client.get("/api/v1/cases", params={"risk_level": "medium"}, headers=w.coord).json()
    assert ids(medium) == [all_ids[1]]
    closed = client.get("/api/v1/cases", params={"status": "closed"}, headers=w.coord).json()
    assert ids(closed) == [all_ids[2]]
    still_open = client.get(
        "/api/v1/cases", params={"status": "open", "risk_level": "high"}, headers=w.coord
    ).json()
    assert ids(still_open) == [all_ids[0], all_ids[3], all_ids[4]]

    # panel_id filter.
    other = make_panel(session, "dv_marac", [w.council, w.police])
    give_role(session, other, w.coordinator.id, "coordinator")
    elsewhere = submit(client, w.partner, dv_referral(other.id))
    elsewhere_case = decide(client, w.coord, elsewhere["id"], "accept").json()["case_id"]
    mine = client.get("/api/v1/cases", params={"panel_id": str(w.panel.id)}, headers=w.coord)
    assert ids(mine.json()) == all_ids
    theirs = client.get("/api/v1/cases", params={"panel_id": str(other.id)}, headers=w.coord)
    assert ids(theirs.json()) == [elsewhere_case]
    assert len(client.get("/api/v1/cases", headers=w.coord).json()["items"]) == 6

    for params in (
        {"limit": 0},
        {"limit": 201},
        {"cursor": "not-a-cursor"},
        {"status": "pending"},
        {"risk_level": "extreme"},
        {"panel_id": "nope"},
    ):
        assert_problem(client.get("/api/v1/cases", params=params, headers=w.coord), 422)


def test_who_may_list_and_read_cases(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = open_case(client, w)
    url = f"/api/v1/cases/{case['id']}"

    r = client.get(url, headers=w.coord)
    assert r.headers["etag"] == '"1"'
    assert case["reference"].startswith("DVM-")
    assert case["subject_person_id"] == subject(case, "victim")
    assert {p["role"] for p in case["people"]} == {"victim", "perpetrator"}
    assert {p["given_name"] for p in case["people"]} == {"Jane", "John"}

    # The chair runs the panel and sees every case; other members need to know: until the
    # case is listed on a published agenda, it is not theirs to read.
    assert client.get(url, headers=w.chair).status_code == 200
    reader = make_client(session, security, w.police, [Scope.CASES_READ])
    reader_headers = bearer(client_token(security, reader))
    members = (w.rep, w.idva_rep, w.observer, reader_headers)
    for member in members:
        assert_problem(client.get(url, headers=member), 404)
        assert ids(client.get("/api/v1/cases", headers=member).json()) == []
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case["id"]])
    for member in members:
        assert client.get(url, headers=member).status_code == 200
        assert ids(client.get("/api/v1/cases", headers=member).json()) == [case["id"]]
    # Not the referring system (no cases:read), not a non-member, not admins or auditors.
    assert_problem(client.get(url, headers=w.partner), 403)
    _, outsider = person_headers(session, security, w.police)  # member agency, no panel role
    assert_problem(client.get(url, headers=outsider), 404)
    assert client.get("/api/v1/cases", headers=outsider).json() == {
        "items": [],
        "next_cursor": None,
    }
    stranger_agency = make_agency(session, "Stranger", AgencyKind.HOUSING)
    stranger_system = make_client(session, security, stranger_agency, [Scope.CASES_READ])
    assert_problem(client.get(url, headers=bearer(client_token(security, stranger_system))), 404)
    admin = admin_headers(session, security)
    assert_problem(client.get(url, headers=admin), 403)
    assert_problem(client.get("/api/v1/cases", headers=admin), 403)
    assert_problem(client.get(url), 401)
    assert_problem(client.get(f"/api/v1/cases/{uuid.uuid4()}", headers=w.coord), 404)
    assert_problem(client.get("/api/v1/cases/123", headers=w.coord), 422)


# Changing a case ----------------------------------------------------------------------------


def test_coordinator_changes_a_case_with_if_match(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = open_case(client, w)
    cid = case["id"]
    keyworker, _ = person_headers(session, security, w.idva, w.panel, "representative")

    r = patch(
        client,
        w.coord,
        cid,
        {
            "risk_level": "medium",
            "lead_agency_id": str(w.idva.id),
            "keyworker_user_id": str(keyworker.id),
        },
        etag='"1"',
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    changed = r.json()
    assert changed["version"] == 2
    assert changed["risk_level"] == "medium"
    assert changed["lead_agency_id"] == str(w.idva.id)
    assert changed["keyworker_user_id"] == str(keyworker.id)

    # Two coordinators both read version 2; the first write wins, the second gets 412.
    first = patch(client, w.coord, cid, {"risk_level": "high"}, etag='"2"')
    assert first.status_code == 200
    second = patch(client, w.chair, cid, {"risk_level": "standard"}, etag='"2"')
    problem = assert_problem(second, 412)
    assert '"3"' in problem["detail"]
    now = client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()
    assert now["risk_level"] == "high"
    assert now["version"] == 3

    # The chair may change it too; clearing the lead agency and keyworker.
    r = patch(client, w.chair, cid, {"lead_agency_id": None, "keyworker_user_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["lead_agency_id"] is None
    assert r.json()["keyworker_user_id"] is None
    # A PATCH that changes nothing does not move the version.
    before = client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()["version"]
    r = patch(client, w.coord, cid, {"risk_level": "high"})
    assert r.json()["version"] == before

    session.expire_all()
    updates = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "case.update",  # type: ignore[arg-type]
            AuditEvent.case_id == uuid.UUID(cid),  # type: ignore[arg-type]
            AuditEvent.outcome == "success",  # type: ignore[arg-type]
        )
    ).all()
    assert updates[0].changes is not None
    assert updates[0].changes["risk_level"] == ["high", "medium"]
    assert str(updates[0].person_id) == case["subject_person_id"]


def test_closing_needs_a_reason_and_reopening_clears_it(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    cid = open_case(client, w)["id"]
    problem = assert_problem(patch(client, w.coord, cid, {"status": "closed"}), 422)
    assert "close_reason" in problem["detail"]
    assert client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()["status"] == "open"
    assert_problem(patch(client, w.coord, cid, {"status": "closed", "close_reason": " "}), 422)
    r = patch(client, w.coord, cid, {"status": "closed", "close_reason": "Risk reduced"})
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "closed"
    assert closed["close_reason"] == "Risk reduced"
    assert closed["closed_at"] is not None
    r = patch(client, w.coord, cid, {"status": "open"})
    assert r.json()["status"] == "open"
    assert r.json()["closed_at"] is None
    assert r.json()["close_reason"] is None


def test_representatives_observers_and_systems_may_not_change_a_case(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    cid = open_case(client, w)["id"]
    # Before the case is on a published agenda it is not theirs to see at all; after, they
    # may read it but still not change it.
    for headers in (w.rep, w.idva_rep, w.observer):
        assert_problem(patch(client, headers, cid, {"risk_level": "standard"}), 404)
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [cid])
    for headers in (w.rep, w.idva_rep, w.observer):
        assert client.get(f"/api/v1/cases/{cid}", headers=headers).status_code == 200
        assert_problem(patch(client, headers, cid, {"risk_level": "standard"}), 403)
    reader = make_client(session, security, w.police, [Scope.CASES_READ])
    assert_problem(
        patch(client, bearer(client_token(security, reader)), cid, {"risk_level": "standard"}),
        403,
    )
    assert_problem(
        patch(client, admin_headers(session, security), cid, {"risk_level": "standard"}), 403
    )
    _, outsider = person_headers(session, security, w.council)
    assert_problem(patch(client, outsider, cid, {"risk_level": "standard"}), 404)
    session.expire_all()
    row = session.get(Case, uuid.UUID(cid))
    assert row is not None
    assert (row.risk_level, row.version) == ("high", 1)


def test_case_patch_is_validated(client: TestClient, session: Session, security: Security) -> None:
    w = world(session, security)
    cid = open_case(client, w)["id"]
    housing = make_agency(session, "Not a member", AgencyKind.HOUSING)
    no_role, _ = person_headers(session, security, w.council)
    for body, status in [
        ({"colour": "red"}, 422),
        ({"status": None}, 422),
        ({"risk_level": None}, 422),
        ({"stage": None}, 422),
        ({"status": "pending"}, 422),
        ({"risk_level": "extreme"}, 422),
        ({"stage": "support_plan"}, 422),  # not a DV MARAC stage
        ({"stage": ""}, 422),
        ({"stage": "x" * 33}, 422),
        ({"close_reason": "x" * 4001}, 422),
        ({"lead_agency_id": "nope"}, 422),
        ({"lead_agency_id": str(housing.id)}, 422),
        ({"keyworker_user_id": str(no_role.id)}, 422),
        ({"keyworker_user_id": str(uuid.uuid4())}, 422),
    ]:
        assert_problem(patch(client, w.coord, cid, body), status)
    assert client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()["version"] == 1
    assert_problem(patch(client, w.coord, str(uuid.uuid4()), {"risk_level": "high"}), 404)


# Channel: consent before a support plan ----------------------------------------------------------


def test_channel_support_plan_needs_parental_consent_for_an_under_18(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    case = open_channel_case(client, w, born="2012-01-01")
    cid = case["id"]
    child, parent = subject(case, "subject"), subject(case, "parent_or_carer")
    assert case["stage"] == "information_gathering"
    assert patch(client, w.coord, cid, {"stage": "panel"}).status_code == 200

    problem = assert_problem(patch(client, w.coord, cid, {"stage": "support_plan"}), 409)
    assert "consent" in problem["detail"]
    consents = f"/api/v1/cases/{cid}/consents"
    # The police practitioner records consent once the case is on a published agenda.
    own_consent = {
        "person_id": child,
        "purpose": "support_plan",
        "status": "given",
        "given_by": "subject",
    }
    assert_problem(client.post(consents, json=own_consent, headers=w.rep), 404)
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [cid])

    # The young person's own consent is not enough at 14.
    r = client.post(consents, json=own_consent, headers=w.rep)
    assert r.status_code == 201, r.text
    problem = assert_problem(patch(client, w.coord, cid, {"stage": "support_plan"}), 409)
    assert "under 18" in problem["detail"]
    # Consent for another purpose, or recorded against the parent, does not count either.
    client.post(
        consents,
        json={
            "person_id": parent,
            "purpose": "support_plan",
            "status": "given",
            "given_by": "parent_or_carer",
        },
        headers=w.rep,
    )
    client.post(
        consents,
        json={
            "person_id": child,
            "purpose": "information_sharing",
            "status": "given",
            "given_by": "parent_or_carer",
        },
        headers=w.rep,
    )
    assert_problem(patch(client, w.coord, cid, {"stage": "support_plan"}), 409)
    assert client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()["stage"] == "panel"

    r = client.post(
        consents,
        json={
            "person_id": child,
            "purpose": "support_plan",
            "status": "given",
            "given_by": "parent_or_carer",
        },
        headers=w.coord,
    )
    assert r.status_code == 201
    r = patch(client, w.coord, cid, {"stage": "support_plan"})
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "support_plan"
    assert patch(client, w.coord, cid, {"stage": "exited"}).json()["stage"] == "exited"
    assert patch(client, w.coord, cid, {"stage": "review_6_months"}).status_code == 200
    assert_problem(patch(client, w.coord, cid, {"stage": "open"}), 422)


def test_channel_support_plan_for_an_adult_follows_the_latest_consent(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    case = open_channel_case(client, w, born="1990-01-01")
    cid = case["id"]
    person = subject(case, "subject")
    consents = f"/api/v1/cases/{cid}/consents"
    refused = {
        "person_id": person,
        "purpose": "support_plan",
        "status": "refused",
        "lawful_basis": "ctsa_2015_s38",
        "reason": "Declined at the panel meeting",
    }
    assert client.post(consents, json=refused, headers=w.coord).status_code == 201
    assert_problem(patch(client, w.coord, cid, {"stage": "support_plan"}), 409)
    given = {
        "person_id": person,
        "purpose": "support_plan",
        "status": "given",
        "given_by": "subject",
    }
    assert client.post(consents, json=given, headers=w.coord).status_code == 201
    assert patch(client, w.coord, cid, {"stage": "support_plan"}).status_code == 200


# Consents -------------------------------------------------------------------------------------


def test_a_retried_consent_or_exclusion_with_its_idempotency_key_records_nothing_new(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = open_case(client, w)
    cid = case["id"]
    consent = {
        "person_id": subject(case, "victim"),
        "purpose": "information_sharing",
        "status": "given",
        "given_by": "subject",
    }
    exclusion = {"agency_id": str(w.police.id), "reason": "The perpetrator is a serving officer"}
    for url, body, other in (
        (f"/api/v1/cases/{cid}/consents", consent, {**consent, "status": "refused"}),
        (f"/api/v1/cases/{cid}/exclusions", exclusion, {**exclusion, "reason": "Another"}),
    ):
        key = {**w.coord, "Idempotency-Key": f"retry-{url}"}
        before = client.get(url, headers=w.coord).json()
        first = client.post(url, json=body, headers=key)
        retry = client.post(url, json=body, headers=key)
        assert first.status_code == retry.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == first.json()
        assert len(client.get(url, headers=w.coord).json()) == len(before) + 1
        # The same key with another body is refused, and records nothing.
        assert_problem(client.post(url, json=other, headers=key), 422)
        assert len(client.get(url, headers=w.coord).json()) == len(before) + 1


def test_consent_records(client: TestClient, session: Session, security: Security) -> None:
    w = world(session, security)
    case = open_case(client, w)
    cid = case["id"]
    url = f"/api/v1/cases/{cid}/consents"
    jane, john = subject(case, "victim"), subject(case, "perpetrator")

    # The referral's consent is on the case from the start.
    [initial] = client.get(url, headers=w.coord).json()
    assert initial["purpose"] == "referral_sharing"
    assert initial["person_id"] == jane
    assert initial["status"] == "not_sought"
    assert initial["lawful_basis"] == "crime_and_disorder_act_1998_s115"
    assert initial["recorded_by_kind"] == "api_client"

    # Members other than the panel's managers see the case's consents only once the case is
    # on a published agenda.
    reader = make_client(session, security, w.police, [Scope.CASES_READ])
    reader_headers = bearer(client_token(security, reader))
    for member in (w.rep, w.observer, reader_headers):
        assert_problem(client.get(url, headers=member), 404)
    housing = {"person_id": jane, "purpose": "housing_referral", "status": "given"}
    assert_problem(client.post(url, json=housing, headers=w.rep), 404)
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [cid])

    # A representative may record consent; observers may read but not record.
    r = client.post(
        url,
        json={
            "person_id": jane,
            "purpose": "housing_referral",
            "status": "given",
            "given_by": "subject",
        },
        headers=w.rep,
    )
    assert r.status_code == 201, r.text
    recorded = r.json()
    assert recorded["case_id"] == cid
    assert recorded["recorded_by_kind"] == "user"
    assert recorded["status"] == "given"
    assert_problem(
        client.post(
            url, json={"person_id": jane, "purpose": "x", "status": "given"}, headers=w.observer
        ),
        403,
    )
    assert_problem(
        client.post(
            url, json={"person_id": jane, "purpose": "x", "status": "given"}, headers=reader_headers
        ),
        403,
    )
    listed = client.get(url, headers=w.observer)
    assert listed.status_code == 200
    assert [c["purpose"] for c in listed.json()] == ["housing_referral", "referral_sharing"]
    assert client.get(url, headers=reader_headers).status_code == 200

    # Sharing without consent records the basis and reason.
    r = client.post(
        url,
        json={"person_id": john, "purpose": "perpetrator_programme", "status": "refused"},
        headers=w.coord,
    )
    assert "lawful basis" in assert_problem(r, 422)["detail"]
    r = client.post(
        url,
        json={
            "person_id": john,
            "purpose": "perpetrator_programme",
            "status": "refused",
            "lawful_basis": "dpa_2018_part3_law_enforcement",
            "reason": "Prevention of crime",
        },
        headers=w.coord,
    )
    assert r.status_code == 201, r.text

    # Only people on the case, and well-formed bodies.
    stranger = open_case(client, w, victim("Other", "Person", "1960-06-06"))
    for body in (
        {"person_id": subject(stranger, "victim"), "purpose": "x", "status": "given"},
        {"person_id": str(uuid.uuid4()), "purpose": "x", "status": "given"},
        {"person_id": jane, "purpose": "Not Snake Case", "status": "given"},
        {"person_id": jane, "purpose": "", "status": "given"},
        {"person_id": jane, "purpose": "x" * 65, "status": "given"},
        {"person_id": jane, "purpose": "x", "status": "maybe"},
        {"person_id": jane, "purpose": "x", "status": "given", "given_by": "neighbour"},
        {"person_id": jane, "purpose": "x", "status": "given", "signed": True},
        {
            "person_id": jane,
            "purpose": "x",
            "status": "refused",
            "lawful_basis": "whim",
            "reason": "r",
        },
    ):
        assert_problem(client.post(url, json=body, headers=w.coord), 422)
    assert len(client.get(url, headers=w.coord).json()) == 3
    assert_problem(client.get(f"/api/v1/cases/{uuid.uuid4()}/consents", headers=w.coord), 404)
    _, outsider = person_headers(session, security, w.police)
    assert_problem(client.get(url, headers=outsider), 404)


# Exclusions -----------------------------------------------------------------------------------


def test_an_excluded_agency_loses_sight_of_the_case_until_readmitted(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = open_case(client, w)
    other = open_case(client, w, victim("Still", "Visible", "1975-05-05"))
    cid = case["id"]
    url = f"/api/v1/cases/{cid}/exclusions"
    reader = make_client(session, security, w.police, [Scope.CASES_READ])
    police_system = bearer(client_token(security, reader))
    assert patch(client, w.coord, cid, {"lead_agency_id": str(w.police.id)}).status_code == 200
    # As lead agency, police see the case before it is published; the other case is not
    # theirs to see yet, and the IDVA sees neither.
    for police in (w.rep, police_system):
        assert ids(client.get("/api/v1/cases", headers=police).json()) == [cid]
        assert_problem(client.get(f"/api/v1/cases/{other['id']}", headers=police), 404)
    assert_problem(client.get(f"/api/v1/cases/{cid}", headers=w.idva_rep), 404)
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [cid, other["id"]])
    for police in (w.rep, police_system):
        assert set(ids(client.get("/api/v1/cases", headers=police).json())) == {cid, other["id"]}
    assert client.get(f"/api/v1/cases/{cid}", headers=w.idva_rep).status_code == 200

    r = client.post(
        url,
        json={"agency_id": str(w.police.id), "reason": "The perpetrator is a serving officer"},
        headers=w.coord,
    )
    assert r.status_code == 201, r.text
    exclusion = r.json()
    assert exclusion["agency_id"] == str(w.police.id)
    assert exclusion["case_id"] == cid
    assert exclusion["created_by_id"] == str(w.coordinator.id)

    for police in (w.rep, police_system):
        assert_problem(client.get(f"/api/v1/cases/{cid}", headers=police), 404)
        assert ids(client.get("/api/v1/cases", headers=police).json()) == [other["id"]]
        assert_problem(client.get(f"/api/v1/cases/{cid}/consents", headers=police), 404)
    assert_problem(patch(client, w.rep, cid, {"risk_level": "medium"}), 404)
    # Other agencies still see it; the excluded lead agency was taken off the case.
    assert client.get(f"/api/v1/cases/{cid}", headers=w.idva_rep).status_code == 200
    seen = client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()
    assert seen["lead_agency_id"] is None
    assert seen["version"] == 3
    listed = client.get(url, headers=w.chair)
    assert listed.status_code == 200
    assert [e["agency_id"] for e in listed.json()] == [str(w.police.id)]
    # An excluded agency cannot be made lead again.
    assert_problem(patch(client, w.coord, cid, {"lead_agency_id": str(w.police.id)}), 422)

    r = client.delete(f"{url}/{w.police.id}", headers=w.coord)
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(f"/api/v1/cases/{cid}", headers=w.rep).status_code == 200
    assert set(ids(client.get("/api/v1/cases", headers=w.rep).json())) == {cid, other["id"]}
    assert client.get(f"/api/v1/cases/{cid}", headers=police_system).status_code == 200
    assert client.get(url, headers=w.coord).json() == []
    assert_problem(client.delete(f"{url}/{w.police.id}", headers=w.coord), 404)

    session.expire_all()
    actions = [
        e.action
        for e in session.scalars(
            select(AuditEvent)
            .where(AuditEvent.case_id == uuid.UUID(cid))  # type: ignore[arg-type]
            .order_by(AuditEvent.id)  # type: ignore[arg-type]
        )
    ]
    assert "exclusion.add" in actions
    assert "exclusion.remove" in actions


def test_exclusions_are_for_the_panels_managers_and_validated(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    cid = open_case(client, w)["id"]
    url = f"/api/v1/cases/{cid}/exclusions"
    body = {"agency_id": str(w.idva.id), "reason": "Conflict of interest"}
    # Members who may not see the case are told nothing of it; once they may read it, they
    # still may not manage its exclusions.
    for headers in (w.rep, w.idva_rep, w.observer):
        assert_problem(client.post(url, json=body, headers=headers), 404)
        assert_problem(client.get(url, headers=headers), 404)
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [cid])
    for headers in (w.rep, w.idva_rep, w.observer):
        assert_problem(client.post(url, json=body, headers=headers), 403)
        assert_problem(client.get(url, headers=headers), 403)
    # Excluding your own agency would lock you out.
    own = client.post(url, json={**body, "agency_id": str(w.council.id)}, headers=w.coord)
    assert "own agency" in assert_problem(own, 409)["detail"]
    stranger = make_agency(session, "Not on the panel", AgencyKind.HOUSING)
    assert_problem(
        client.post(url, json={**body, "agency_id": str(stranger.id)}, headers=w.coord), 422
    )
    for bad in (
        {"agency_id": str(w.idva.id)},
        {"agency_id": str(w.idva.id), "reason": ""},
        {"agency_id": str(w.idva.id), "reason": "x" * 4001},
        {"agency_id": "nope", "reason": "r"},
        {**body, "until": "2027-01-01"},
    ):
        assert_problem(client.post(url, json=bad, headers=w.coord), 422)
    assert client.post(url, json=body, headers=w.coord).status_code == 201
    assert_problem(client.post(url, json=body, headers=w.chair), 409)
    assert_problem(client.delete(f"{url}/{w.idva.id}", headers=w.rep), 403)
    assert_problem(client.delete(f"{url}/{uuid.uuid4()}", headers=w.coord), 404)
    assert client.delete(f"{url}/{w.idva.id}", headers=w.chair).status_code == 204


def test_a_keyworker_from_an_excluded_agency_is_refused_and_removed(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    cid = open_case(client, w)["id"]
    officer, _ = person_headers(session, security, w.police, w.panel, "representative")
    assert patch(client, w.coord, cid, {"keyworker_user_id": str(officer.id)}).status_code == 200
    r = client.post(
        f"/api/v1/cases/{cid}/exclusions",
        json={"agency_id": str(w.police.id), "reason": "Perpetrator's employer"},
        headers=w.coord,
    )
    assert r.status_code == 201
    assert client.get(f"/api/v1/cases/{cid}", headers=w.coord).json()["keyworker_user_id"] is None
    assert_problem(patch(client, w.coord, cid, {"keyworker_user_id": str(officer.id)}), 422)


def test_channel_cases_are_never_seen_by_other_panels(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    case = open_channel_case(client, w, born="1995-01-01")
    dv = make_panel(session, "dv_marac", [w.council, w.police, w.idva])
    _, dv_rep = person_headers(session, security, w.idva, dv, "representative")
    assert_problem(client.get(f"/api/v1/cases/{case['id']}", headers=dv_rep), 404)
    assert client.get("/api/v1/cases", headers=dv_rep).json()["items"] == []
    assert case["reference"].startswith("CHN-")
    token_user, _ = person_headers(session, security, w.idva, w.panel, "observer")
    observer = bearer(user_token(security, token_user))
    # The Channel panel's own observer sees it once it is on a published agenda; another
    # panel's members never do, published or not.
    assert_problem(client.get(f"/api/v1/cases/{case['id']}", headers=observer), 404)
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case["id"]])
    assert client.get(f"/api/v1/cases/{case['id']}", headers=observer).status_code == 200
    assert_problem(client.get(f"/api/v1/cases/{case['id']}", headers=dv_rep), 404)
    assert client.get("/api/v1/cases", headers=dv_rep).json()["items"] == []
