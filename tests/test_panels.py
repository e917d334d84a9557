"""Panels and panel types through the real API: the installed plug-ins and their form schemas,
creating and configuring panels, optimistic concurrency, and membership."""

from __future__ import annotations

import uuid
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.agency import Agency, AgencyKind
from app.models.audit import AuditEvent
from app.models.panel import PanelMember, PanelRole
from app.models.user import User
from app.permissions import Role, Scope
from app.security import Security
from tests.builders import (
    bearer,
    client_token,
    dv_referral,
    give_role,
    make_agency,
    make_client,
    make_panel,
    make_user,
    user_token,
)

PROBLEM = "application/problem+json"
Headers = dict[str, str]


def admin(session: Session, security: Security) -> Headers:
    agency = make_agency(session, f"Partnership {uuid.uuid4().hex[:6]}", AgencyKind.OTHER)
    user = make_user(
        session, security, agency, roles=[Role.ADMIN], totp_secret=pyotp.random_base32()
    )
    return bearer(user_token(security, user))


def auditor(session: Session, security: Security) -> Headers:
    agency = make_agency(session, f"DPO {uuid.uuid4().hex[:6]}", AgencyKind.OTHER)
    user = make_user(
        session, security, agency, roles=[Role.AUDITOR], totp_secret=pyotp.random_base32()
    )
    return bearer(user_token(security, user))


def plain(session: Session, security: Security, agency: Agency) -> tuple[User, Headers]:
    user = make_user(session, security, agency)
    return user, bearer(user_token(security, user))


def create(client: TestClient, headers: Headers, **body: Any) -> Any:
    payload = {"panel_type": "dv_marac", "name": "Bexley DV MARAC", "area": "Bexley", **body}
    return client.post("/api/v1/panels", json=payload, headers=headers)


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


# Panel types ----------------------------------------------------------------------------------


def test_panel_types_are_the_installed_plugins_with_their_form_schemas(
    client: TestClient, session: Session, security: Security
) -> None:
    _, headers = plain(session, security, make_agency(session, "Council", AgencyKind.HOUSING))
    r = client.get("/api/v1/panel-types", headers=headers)
    assert r.status_code == 200, r.text
    types = {t["key"]: t for t in r.json()}
    assert set(types) == {"dv_marac", "community_marac", "channel", "prevention", "gangs"}

    dv = types["dv_marac"]
    assert dv["reference_prefix"] == "DVM"
    assert dv["person_roles"][0] == "victim"
    assert {"victim", "perpetrator", "child_in_household"} <= set(dv["person_roles"])
    assert dv["requires_screening"] is False
    assert dv["default_config"]["escalation_threshold"] == 3
    assert dv["default_config"]["meeting_cadence"] == "fortnightly"
    schema = dv["referral_form_schema"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert {
        "criterion",
        "dash_answers",
        "professional_judgement_reasons",
        "incidents_last_12_months",
    } <= set(props)
    assert "dash_score" not in props
    assert props["dash_answers"]["minItems"] == 24
    assert props["dash_answers"]["maxItems"] == 24
    assert set(schema["required"]) >= {"criterion", "dash_answers"}
    defs = schema["$defs"]
    assert defs["DashAnswer"]["enum"] == ["yes", "no", "not_known"]
    assert set(defs["Criterion"]["enum"]) == {
        "visible_high_risk",
        "professional_judgement",
        "potential_escalation",
    }

    crm = types["community_marac"]["referral_form_schema"]["properties"]
    clutter = crm["clutter_rating"]["anyOf"][0]
    assert (clutter["minimum"], clutter["maximum"]) == (1, 9)

    channel = types["channel"]
    assert channel["requires_screening"] is True
    assert channel["isolated"] is True
    assert channel["stages"][0] == "information_gathering"
    assert "support_plan" in channel["stages"]
    assert {"review_6_months", "review_12_months"} <= set(channel["stages"])
    assert "concern_type" in channel["referral_form_schema"]["properties"]

    for key in ("prevention", "gangs"):
        props = types[key]["referral_form_schema"]["properties"]
        assert {"risk_factors", "protective_factors"} <= set(props)
        assert types[key]["person_roles"][0] == "subject"
    assert "known_associations" in types["gangs"]["referral_form_schema"]["properties"]
    assert "known_associations" not in types["prevention"]["referral_form_schema"]["properties"]


def test_panel_types_need_a_token_and_the_panels_scope(
    client: TestClient, session: Session, security: Security
) -> None:
    r = client.get("/api/v1/panel-types")
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    agency = make_agency(session, "Police", AgencyKind.POLICE)
    reader = make_client(session, security, agency, [Scope.PANELS_READ])
    assert (
        client.get(
            "/api/v1/panel-types", headers=bearer(client_token(security, reader))
        ).status_code
        == 200
    )
    bare = make_client(session, security, agency, [Scope.REFERRALS_WRITE])
    assert_problem(
        client.get("/api/v1/panel-types", headers=bearer(client_token(security, bare))), 403
    )


# Creating and changing panels ----------------------------------------------------------------


def test_admin_creates_a_panel_with_configuration_overrides(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    r = create(
        client,
        headers,
        config={"escalation_threshold": 5, "repeat_window_days": 180, "meeting_cadence": "monthly"},
    )
    assert r.status_code == 201, r.text
    panel = r.json()
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/api/v1/panels/{panel['id']}"
    assert panel["panel_type"] == "dv_marac"
    assert panel["name"] == "Bexley DV MARAC"
    assert panel["area"] == "Bexley"
    assert panel["is_active"] is True
    assert panel["version"] == 1
    # Overrides win; the type's defaults fill in the rest.
    assert panel["config"] == {
        "escalation_threshold": 5,
        "repeat_window_days": 180,
        "meeting_cadence": "monthly",
        "minutes_due_working_days": 3,
        "retention_years": 6,
    }
    r = client.get(f"/api/v1/panels/{panel['id']}", headers=headers)
    assert r.status_code == 200
    assert r.json() == panel
    assert r.headers["etag"] == '"1"'

    # Without overrides, the type's defaults.
    r = create(client, headers, panel_type="channel", name="Channel Panel")
    assert r.status_code == 201
    assert r.json()["config"]["escalation_threshold"] == 3
    r = create(client, headers, panel_type="dv_marac", name="Plain DV MARAC")
    assert r.json()["config"]["meeting_cadence"] == "fortnightly"

    session.expire_all()
    [event] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "panel.create",  # type: ignore[arg-type]
            AuditEvent.resource_id == panel["id"],  # type: ignore[arg-type]
        )
    ).all()
    assert event.changes is not None
    assert event.changes["panel_type"] == [None, "dv_marac"]
    assert event.changes["config"] == [
        None,
        {"escalation_threshold": 5, "repeat_window_days": 180, "meeting_cadence": "monthly"},
    ]


def test_a_retried_panel_creation_with_its_idempotency_key_creates_one_panel(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = {**admin(session, security), "Idempotency-Key": "new-panel-1"}
    first = create(client, headers, name="Greenwich DV MARAC")
    retry = create(client, headers, name="Greenwich DV MARAC")
    assert first.status_code == retry.status_code == 201, first.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["location"] == f"/api/v1/panels/{first.json()['id']}"
    listed = client.get("/api/v1/panels", params={"limit": 200}, headers=headers).json()
    assert [p["name"] for p in listed["items"]].count("Greenwich DV MARAC") == 1
    assert_problem(create(client, headers, name="Lewisham DV MARAC"), 422)


def test_creating_a_panel_is_validated(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    unknown = assert_problem(create(client, headers, panel_type="mappa"), 422)
    assert "mappa" in unknown["detail"]
    assert "panel-types" in unknown["detail"]
    assert create(client, headers).status_code == 201
    duplicate = assert_problem(create(client, headers, panel_type="community_marac"), 409)
    assert "already exists" in duplicate["detail"]
    assert_problem(create(client, headers, name="bexley dv marac"), 409)
    for body, field in [
        ({"colour": "red"}, "body.colour"),
        ({"name": ""}, "body.name"),
        ({"name": "   "}, "body.name"),
        ({"name": "x" * 201}, "body.name"),
        ({"area": "x" * 201}, "body.area"),
        ({"panel_type": ""}, "body.panel_type"),
        ({"panel_type": "x" * 33}, "body.panel_type"),
        ({"config": {"escalation_threshold": 0}}, "body.config.escalation_threshold"),
        ({"config": {"escalation_threshold": 101}}, "body.config.escalation_threshold"),
        ({"config": {"repeat_window_days": 3651}}, "body.config.repeat_window_days"),
        ({"config": {"meeting_cadence": "daily"}}, "body.config.meeting_cadence"),
        ({"config": {"dash_high": 10}}, "body.config.dash_high"),
    ]:
        r = create(client, headers, **{"name": f"Panel {uuid.uuid4().hex[:6]}", **body})
        problem = assert_problem(r, 422)
        assert field in {e["field"] for e in problem["errors"]}, (field, problem)
    missing = client.post("/api/v1/panels", json={"panel_type": "dv_marac"}, headers=headers)
    assert {"body.name", "body.area"} <= {
        e["field"] for e in assert_problem(missing, 422)["errors"]
    }


def test_only_admins_create_and_change_panels(
    client: TestClient, session: Session, security: Security
) -> None:
    agency = make_agency(session, "Council", AgencyKind.LOCAL_AUTHORITY)
    panel = make_panel(session, "dv_marac", [agency])
    coordinator, coord = plain(session, security, agency)
    give_role(session, panel, coordinator.id, "coordinator")
    assert_problem(create(client, coord), 403)
    assert_problem(create(client, auditor(session, security)), 403)
    assert_problem(create(client, {}), 401)
    r = client.patch(f"/api/v1/panels/{panel.id}", json={"area": "Elsewhere"}, headers=coord)
    assert_problem(r, 403)
    r = client.patch(
        f"/api/v1/panels/{panel.id}/members",
        json={"agencies": [{"agency_id": str(agency.id), "may_refer": False}]},
        headers=coord,
    )
    assert_problem(r, 403)
    # Anyone signed in may read the directory of panels.
    assert client.get(f"/api/v1/panels/{panel.id}", headers=coord).status_code == 200


def test_patch_honours_if_match_and_changes_only_what_is_sent(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    created = create(client, headers, config={"escalation_threshold": 5}).json()
    url = f"/api/v1/panels/{created['id']}"
    etag = client.get(url, headers=headers).headers["etag"]
    assert etag == '"1"'

    r = client.patch(
        url,
        json={"area": "Bexley and Greenwich", "config": {"repeat_window_days": 200}},
        headers={**headers, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    changed = r.json()
    assert changed["version"] == 2
    assert changed["area"] == "Bexley and Greenwich"
    assert changed["name"] == created["name"]
    # Config overrides merge: the earlier override stays.
    assert changed["config"]["escalation_threshold"] == 5
    assert changed["config"]["repeat_window_days"] == 200
    assert changed["updated_at"] is not None

    # A second writer with the stale ETag is refused, and their change is not applied.
    stale = client.patch(url, json={"area": "Lost update"}, headers={**headers, "If-Match": etag})
    problem = assert_problem(stale, 412)
    assert '"2"' in problem["detail"]
    assert client.get(url, headers=headers).json()["area"] == "Bexley and Greenwich"
    # Weak and listed ETags and * are understood.
    r = client.patch(url, json={"area": "A"}, headers={**headers, "If-Match": 'W/"2"'})
    assert r.status_code == 200
    r = client.patch(url, json={"area": "B"}, headers={**headers, "If-Match": '"1", "3"'})
    assert r.status_code == 200
    r = client.patch(url, json={"area": "C"}, headers={**headers, "If-Match": "*"})
    assert r.json()["version"] == 5
    # A PATCH that changes nothing keeps the version.
    r = client.patch(url, json={"area": "C"}, headers=headers)
    assert r.json()["version"] == 5
    # Deactivate and reactivate.
    assert (
        client.patch(url, json={"is_active": False}, headers=headers).json()["is_active"] is False
    )
    assert client.patch(url, json={"is_active": True}, headers=headers).json()["is_active"] is True


def test_patch_is_validated(client: TestClient, session: Session, security: Security) -> None:
    headers = admin(session, security)
    first = create(client, headers).json()
    second = create(client, headers, name="Second MARAC").json()
    url = f"/api/v1/panels/{second['id']}"
    assert_problem(client.patch(url, json={"name": "BEXLEY DV MARAC"}, headers=headers), 409)
    # Renaming to its own name in another case is fine.
    r = client.patch(url, json={"name": "SECOND MARAC"}, headers=headers)
    assert r.status_code == 200
    for body in (
        {"name": None},
        {"area": None},
        {"is_active": None},
        {"config": None},
        {"panel_type": "channel"},
        {"colour": "red"},
        {"name": ""},
        {"config": {"retention_years": 0}},
        {"config": {"unknown": 1}},
    ):
        assert_problem(client.patch(url, json=body, headers=headers), 422)
    assert_problem(client.patch(f"/api/v1/panels/{uuid.uuid4()}", json={}, headers=headers), 404)
    assert_problem(client.patch("/api/v1/panels/nope", json={}, headers=headers), 422)
    assert client.get(f"/api/v1/panels/{first['id']}", headers=headers).json()["version"] == 1


def test_list_panels_with_filters_and_pagination(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    ids = set()
    for i in range(3):
        ids.add(create(client, headers, name=f"DV {i}").json()["id"])
    channel = create(client, headers, name="Channel", panel_type="channel").json()
    client.patch(f"/api/v1/panels/{channel['id']}", json={"is_active": False}, headers=headers)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"panel_type": "dv_marac", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/panels", params=params, headers=headers).json()
        seen += [p["id"] for p in page["items"]]
        assert len(page["items"]) <= 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(seen) == ids
    assert len(seen) == len(ids)
    inactive = client.get("/api/v1/panels", params={"is_active": False}, headers=headers).json()
    assert [p["id"] for p in inactive["items"]] == [channel["id"]]
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "bogus"}):
        assert_problem(client.get("/api/v1/panels", params=params, headers=headers), 422)


# Members --------------------------------------------------------------------------------------


def test_members_are_agencies_and_users_with_panel_roles(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    panel = create(client, headers).json()
    url = f"/api/v1/panels/{panel['id']}/members"
    council = make_agency(session, "Bexley Council", AgencyKind.LOCAL_AUTHORITY)
    police = make_agency(session, "Met Police", AgencyKind.POLICE)
    housing = make_agency(session, "Housing Trust", AgencyKind.HOUSING)
    chair, chair_headers = plain(session, security, council)
    coordinator, coord = plain(session, security, council)
    officer, officer_headers = plain(session, security, police)
    watcher, _ = plain(session, security, police)

    r = client.patch(
        url,
        json={
            "agencies": [
                {"agency_id": str(council.id)},
                {"agency_id": str(police.id), "may_refer": True},
                {"agency_id": str(housing.id), "may_refer": False},
            ],
            "users": [
                {"user_id": str(chair.id), "role": "chair"},
                {"user_id": str(coordinator.id), "role": "coordinator"},
                {"user_id": str(officer.id), "role": "representative"},
                {"user_id": str(watcher.id), "role": "observer"},
            ],
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    members = r.json()
    assert {(a["agency_name"], a["may_refer"]) for a in members["agencies"]} == {
        ("Bexley Council", True),
        ("Met Police", True),
        ("Housing Trust", False),
    }
    assert {(u["user_id"], u["role"], u["agency_id"]) for u in members["users"]} == {
        (str(chair.id), "chair", str(council.id)),
        (str(coordinator.id), "coordinator", str(council.id)),
        (str(officer.id), "representative", str(police.id)),
        (str(watcher.id), "observer", str(police.id)),
    }

    # Who may see the membership: admins, auditors and the panel's own members.
    for reader in (headers, auditor(session, security), chair_headers, coord, officer_headers):
        got = client.get(url, headers=reader)
        assert got.status_code == 200, got.text
        assert got.json() == members
    _, outsider = plain(session, security, police)  # police is a member; this user is not
    assert_problem(client.get(url, headers=outsider), 403)
    _, tenant_headers = plain(session, security, housing)
    assert_problem(client.get(url, headers=tenant_headers), 403)
    system = make_client(session, security, police, [Scope.PANELS_READ])
    assert_problem(client.get(url, headers=bearer(client_token(security, system))), 403)
    assert_problem(client.get(f"/api/v1/panels/{uuid.uuid4()}/members", headers=headers), 404)

    # A role can change; a user and an agency can be taken off.
    r = client.patch(
        url,
        json={
            "users": [{"user_id": str(watcher.id), "role": "representative"}],
            "remove_user_ids": [str(officer.id)],
            "remove_agency_ids": [str(housing.id)],
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert {u["user_id"]: u["role"] for u in after["users"]} == {
        str(chair.id): "chair",
        str(coordinator.id): "coordinator",
        str(watcher.id): "representative",
    }
    assert "Housing Trust" not in {a["agency_name"] for a in after["agencies"]}
    assert_problem(client.get(url, headers=officer_headers), 403)


def test_a_user_whose_agency_is_not_a_member_cannot_be_given_a_role(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    panel = create(client, headers).json()
    url = f"/api/v1/panels/{panel['id']}/members"
    council = make_agency(session, "Council", AgencyKind.LOCAL_AUTHORITY)
    school = make_agency(session, "School", AgencyKind.EDUCATION)
    member, _ = plain(session, security, council)
    teacher, _ = plain(session, security, school)
    assert (
        client.patch(
            url, json={"agencies": [{"agency_id": str(council.id)}]}, headers=headers
        ).status_code
        == 200
    )

    r = client.patch(
        url,
        json={
            "users": [
                {"user_id": str(member.id), "role": "coordinator"},
                {"user_id": str(teacher.id), "role": "representative"},
            ]
        },
        headers=headers,
    )
    problem = assert_problem(r, 422)
    assert str(teacher.id) in problem["detail"]
    assert "not a member" in problem["detail"]
    # Refused as a whole: the valid entry was not applied either.
    session.expire_all()
    assert (
        session.scalars(
            select(PanelRole).where(PanelRole.panel_id == uuid.UUID(panel["id"]))  # type: ignore[arg-type]
        ).all()
        == []
    )
    # Adding the agency in the same request makes it a member first.
    r = client.patch(
        url,
        json={
            "agencies": [{"agency_id": str(school.id)}],
            "users": [{"user_id": str(teacher.id), "role": "representative"}],
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert [u["user_id"] for u in r.json()["users"]] == [str(teacher.id)]


def test_members_update_is_validated(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    panel = create(client, headers).json()
    url = f"/api/v1/panels/{panel['id']}/members"
    council = make_agency(session, "Council", AgencyKind.LOCAL_AUTHORITY)
    user, _ = plain(session, security, council)
    client.patch(url, json={"agencies": [{"agency_id": str(council.id)}]}, headers=headers)
    inactive = make_agency(session, "Closed charity", AgencyKind.VOLUNTARY)
    inactive.is_active = False
    session.commit()
    for body in (
        {"users": [{"user_id": str(user.id), "role": "boss"}]},
        {"users": [{"user_id": str(user.id)}]},
        {"users": [{"user_id": str(uuid.uuid4()), "role": "chair"}]},
        {"agencies": [{"agency_id": str(uuid.uuid4())}]},
        {"agencies": [{"agency_id": str(inactive.id)}]},
        {"agencies": [{"agency_id": str(council.id), "may_refer": "sometimes"}]},
        {"agencies": [{"agency_id": str(council.id), "colour": "red"}]},
        {"colour": "red"},
        {"remove_user_ids": ["nope"]},
        {"remove_agency_ids": [str(uuid.uuid4())] * 201},
    ):
        assert_problem(client.patch(url, json=body, headers=headers), 422)
    assert_problem(
        client.patch(f"/api/v1/panels/{uuid.uuid4()}/members", json={}, headers=headers), 404
    )


def test_which_agencies_may_refer_is_configurable(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    panel = create(client, headers).json()
    url = f"/api/v1/panels/{panel['id']}/members"
    police = make_agency(session, "Police", AgencyKind.POLICE)
    health = make_agency(session, "NHS Trust", AgencyKind.HEALTH)
    r = client.patch(
        url,
        json={
            "agencies": [
                {"agency_id": str(police.id), "may_refer": True},
                {"agency_id": str(health.id), "may_refer": False},
            ]
        },
        headers=headers,
    )
    assert r.status_code == 200
    _, officer = plain(session, security, police)
    _, nurse = plain(session, security, health)
    body = dv_referral(uuid.UUID(panel["id"]))
    assert client.post("/api/v1/referrals", json=body, headers=officer).status_code == 201
    assert_problem(client.post("/api/v1/referrals", json=body, headers=nurse), 403)
    client.patch(url, json={"agencies": [{"agency_id": str(health.id)}]}, headers=headers)
    assert client.post("/api/v1/referrals", json=body, headers=nurse).status_code == 201
    client.patch(url, json={"remove_agency_ids": [str(police.id)]}, headers=headers)
    assert_problem(client.post("/api/v1/referrals", json=body, headers=officer), 403)


def test_changing_a_member_keeps_its_history_and_removing_an_agency_removes_its_users(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    panel = create(client, headers).json()
    panel_id = uuid.UUID(panel["id"])
    url = f"/api/v1/panels/{panel['id']}/members"
    council = make_agency(session, "Council", AgencyKind.LOCAL_AUTHORITY)
    police = make_agency(session, "Police", AgencyKind.POLICE)
    coordinator, _ = plain(session, security, council)
    officer, officer_headers = plain(session, security, police)
    r = client.patch(
        url,
        json={
            "agencies": [{"agency_id": str(council.id)}, {"agency_id": str(police.id)}],
            "users": [
                {"user_id": str(coordinator.id), "role": "coordinator"},
                {"user_id": str(officer.id), "role": "representative"},
            ],
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    session.expire_all()
    joined = session.get(PanelMember, (panel_id, police.id))
    role_since = session.get(PanelRole, (panel_id, officer.id))
    assert joined is not None and role_since is not None
    joined_at, role_at = joined.created_at, role_since.created_at

    # Changing may_refer or a role is not joining again.
    r = client.patch(
        url,
        json={
            "agencies": [{"agency_id": str(police.id), "may_refer": False}],
            "users": [{"user_id": str(officer.id), "role": "observer"}],
        },
        headers=headers,
    )
    assert r.status_code == 200
    session.expire_all()
    member = session.get(PanelMember, (panel_id, police.id))
    role = session.get(PanelRole, (panel_id, officer.id))
    assert member is not None and role is not None
    assert (member.may_refer, member.created_at) == (False, joined_at)
    assert (role.role, role.created_at) == ("observer", role_at)

    # Taking an agency off the panel takes its users' roles with it.
    r = client.patch(url, json={"remove_agency_ids": [str(police.id)]}, headers=headers)
    assert r.status_code == 200, r.text
    assert [u["user_id"] for u in r.json()["users"]] == [str(coordinator.id)]
    assert [a["agency_id"] for a in r.json()["agencies"]] == [str(council.id)]
    assert_problem(client.get(url, headers=officer_headers), 403)
    # Re-admitting the agency does not bring the old roles back by itself.
    r = client.patch(url, json={"agencies": [{"agency_id": str(police.id)}]}, headers=headers)
    assert [u["user_id"] for u in r.json()["users"]] == [str(coordinator.id)]


def test_a_repeated_entry_in_one_members_update_takes_the_last_value(
    client: TestClient, session: Session, security: Security
) -> None:
    headers = admin(session, security)
    panel = create(client, headers).json()
    council = make_agency(session, "Council", AgencyKind.LOCAL_AUTHORITY)
    user, _ = plain(session, security, council)
    r = client.patch(
        f"/api/v1/panels/{panel['id']}/members",
        json={
            "agencies": [
                {"agency_id": str(council.id), "may_refer": True},
                {"agency_id": str(council.id), "may_refer": False},
            ],
            "users": [
                {"user_id": str(user.id), "role": "observer"},
                {"user_id": str(user.id), "role": "chair"},
            ],
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert [(a["agency_id"], a["may_refer"]) for a in r.json()["agencies"]] == [
        (str(council.id), False)
    ]
    assert [(u["user_id"], u["role"]) for u in r.json()["users"]] == [(str(user.id), "chair")]
