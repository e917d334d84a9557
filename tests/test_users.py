"""/api/v1/users: admins manage everyone; agency admins manage their own agency's plain users."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.models.agency import Agency
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.user import User
from app.permissions import Role
from app.security import Security
from tests.builders import PASSWORD, Principals, make_agency, make_user

USERS = "/api/v1/users"
TOKEN = "/api/v1/auth/token"
NEW_PASSWORD = "Plaintext-Sentinel-Passw0rd-7731"
PUBLIC_FIELDS = {
    "id",
    "agency_id",
    "email",
    "full_name",
    "job_title",
    "roles",
    "is_active",
    "mfa_enabled",
    "locked_until",
    "last_login_at",
    "version",
    "created_at",
    "updated_at",
}


def problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def new_user(agency_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "email": f"new-{uuid.uuid4().hex[:8]}@agency.example.org",
        "full_name": "Sam Jones",
        "agency_id": str(agency_id),
        "password": NEW_PASSWORD,
        **overrides,
    }


def users_named(session: Session, email: str) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.email == email)) or 0


def login(client: TestClient, email: str, password: str) -> Response:
    return client.post(
        TOKEN, data={"grant_type": "password", "username": email, "password": password}
    )


def audit_text(session: Session) -> str:
    """Everything the audit log holds in its free-form columns, as one string."""
    rows = session.execute(select(AuditEvent.changes, AuditEvent.detail)).all()
    return json.dumps([[changes, detail] for changes, detail in rows])


def email_of(session: Session, user_id: uuid.UUID) -> str:
    user = session.get(User, user_id)
    assert user is not None
    return user.email


# --- admin creates --------------------------------------------------------------------------


def test_admin_creates_a_user(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    body = new_user(
        principals.other.id,
        email="Sam.Jones@Agency.Example.org",
        job_title="IDVA",
        roles=["auditor"],
    )
    r = client.post(USERS, json=body, headers=principals.admin.headers)

    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == PUBLIC_FIELDS, "never password_hash, totp_* or lockout counters"
    assert NEW_PASSWORD not in r.text
    assert created["email"] == "sam.jones@agency.example.org"
    assert created["agency_id"] == str(principals.other.id)
    assert created["roles"] == ["auditor"]
    assert created["job_title"] == "IDVA"
    assert created["mfa_enabled"] is False
    assert created["is_active"] is True
    assert r.headers["location"] == f"{USERS}/{created['id']}"
    assert r.headers["etag"] == '"1"'

    fetched = client.get(r.headers["location"], headers=principals.admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    stored = session.get(User, uuid.UUID(created["id"]))
    assert stored is not None
    assert stored.password_hash != NEW_PASSWORD
    assert security.verify_secret(NEW_PASSWORD, stored.password_hash)

    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create"))
    assert event.resource_id == created["id"]
    assert event.changes is not None
    assert event.changes["email"] == [None, "sam.jones@agency.example.org"]
    assert event.changes["roles"] == [None, ["auditor"]]
    assert NEW_PASSWORD not in audit_text(session)
    assert stored.password_hash not in audit_text(session)


def test_the_new_user_can_sign_in(client: TestClient, principals: Principals) -> None:
    body = new_user(principals.other.id)
    assert client.post(USERS, json=body, headers=principals.admin.headers).status_code == 201
    r = login(client, body["email"], NEW_PASSWORD)
    assert r.status_code == 200, r.text
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["email"] == body["email"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw-11", "at least 12"),
        ("x" * 11, "at least 12"),
        ("{email}", "email"),
        ("{EMAIL}", "email"),
        ("{local}", "email"),
    ],
    ids=["11 chars", "11 x", "the email", "the email upper-cased", "the email's local part"],
)
def test_password_policy_on_create(
    client: TestClient, principals: Principals, session: Session, password: str, reason: str
) -> None:
    email = "casework.coordinator@agency.example.org"
    password = password.format(email=email, EMAIL=email.upper(), local="casework.coordinator")
    r = client.post(
        USERS,
        json=new_user(principals.other.id, email=email, password=password),
        headers=principals.admin.headers,
    )
    body = problem(r, 422)
    assert reason in body["detail"]
    assert error_fields(body) == {"body.password"}
    assert password not in r.text
    assert users_named(session, email) == 0
    assert password not in audit_text(session)


def test_a_twelve_character_password_is_enough(client: TestClient, principals: Principals) -> None:
    r = client.post(
        USERS,
        json=new_user(principals.other.id, password="abcdefghijkl"),
        headers=principals.admin.headers,
    )
    assert r.status_code == 201, r.text


def test_a_duplicate_email_is_a_conflict_whatever_its_case(
    client: TestClient, principals: Principals, session: Session
) -> None:
    taken = email_of(session, principals.member.id)
    r = client.post(
        USERS,
        json=new_user(principals.home.id, email=taken.upper()),
        headers=principals.admin.headers,
    )
    problem(r, 409)
    assert users_named(session, taken) == 1


def test_an_unknown_or_inactive_agency_is_422(
    client: TestClient, principals: Principals, session: Session
) -> None:
    closed = make_agency(session, "Closed Agency")
    closed.is_active = False
    session.commit()
    for agency_id in (uuid.uuid4(), closed.id):
        body = new_user(agency_id)
        r = client.post(USERS, json=body, headers=principals.admin.headers)
        assert error_fields(problem(r, 422)) == {"body.agency_id"}
        assert users_named(session, body["email"]) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "body.email"),
        ({"roles": ["superuser"]}, "body.roles.0"),
        ({"full_name": ""}, "body.full_name"),
        ({"password": "p" * 257}, "body.password"),
        ({"password_hash": "$argon2id$..."}, "body.password_hash"),
        ({"is_active": False}, "body.is_active"),
    ],
    ids=["email", "role", "full_name", "password too long", "password_hash", "is_active"],
)
def test_create_validation(
    client: TestClient, principals: Principals, overrides: dict[str, Any], field: str
) -> None:
    r = client.post(
        USERS, json=new_user(principals.other.id, **overrides), headers=principals.admin.headers
    )
    body = problem(r, 422)
    assert field in error_fields(body)
    assert NEW_PASSWORD not in r.text


def test_responses_never_carry_secrets(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    # The admin has a second factor enrolled: its secret must not leak through any read.
    admin = session.get(User, principals.admin.id)
    assert admin is not None and admin.totp_secret_enc is not None
    h = principals.admin.headers
    for r in (
        client.get(USERS, headers=h),
        client.get(f"{USERS}/{principals.admin.id}", headers=h),
    ):
        assert r.status_code == 200
        assert "password" not in r.text
        assert "totp" not in r.text
        assert admin.password_hash not in r.text
        assert admin.totp_secret_enc not in r.text
    one = client.get(f"{USERS}/{principals.admin.id}", headers=h).json()
    assert set(one) == PUBLIC_FIELDS
    assert one["mfa_enabled"] is True


# --- listing --------------------------------------------------------------------------------


def test_list_filters_and_pages(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    extra = [
        make_user(session, security, principals.home, email=f"zeta-{i}@home.example.org")
        for i in range(3)
    ]
    extra[0].is_active = False
    session.commit()
    h = principals.auditor.headers

    def emails(**params: Any) -> list[str]:
        r = client.get(USERS, params=params, headers=h)
        assert r.status_code == 200, r.text
        return [u["email"] for u in r.json()["items"]]

    assert emails(email="ZETA-") == [u.email for u in extra]  # ordered by email
    assert emails(email="zeta-", is_active="false") == ["zeta-0@home.example.org"]
    assert len(emails(agency_id=str(principals.other.id))) == 2  # agency admin and member

    walked: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(USERS, params=params, headers=h).json()
        walked += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everyone = [
        u["id"] for u in client.get(USERS, params={"limit": 200}, headers=h).json()["items"]
    ]
    assert walked == everyone
    assert len(set(walked)) == len(walked) == 4 + 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"agency_id": "nope"}, "query.agency_id"),
        ({"email": "a\x00b"}, "query.email"),
        ({"limit": "0"}, "query.limit"),
        ({"cursor": "bad cursor"}, "query.cursor"),
    ],
)
def test_list_validation(
    client: TestClient, principals: Principals, params: dict[str, str], field: str
) -> None:
    r = client.get(USERS, params=params, headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {field}


# --- agency admins --------------------------------------------------------------------------


def test_agency_admin_sees_only_their_own_agency(
    client: TestClient, principals: Principals
) -> None:
    h = principals.agency_admin.headers
    r = client.get(USERS, params={"limit": 200}, headers=h)
    assert r.status_code == 200
    items = r.json()["items"]
    assert {u["agency_id"] for u in items} == {str(principals.other.id)}
    assert {u["id"] for u in items} == {str(principals.agency_admin.id), str(principals.member.id)}
    # Asking for another agency's users finds none, rather than revealing them.
    other = client.get(USERS, params={"agency_id": str(principals.home.id)}, headers=h)
    assert other.json()["items"] == []

    assert client.get(f"{USERS}/{principals.member.id}", headers=h).status_code == 200
    for foreign in (principals.admin.id, principals.auditor.id, uuid.uuid4()):
        problem(client.get(f"{USERS}/{foreign}", headers=h), 404)


def test_agency_admin_creates_users_in_their_own_agency_only(
    client: TestClient, principals: Principals, session: Session
) -> None:
    h = principals.agency_admin.headers
    mine = new_user(principals.other.id)
    r = client.post(USERS, json=mine, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["roles"] == []

    theirs = new_user(principals.home.id)
    problem(client.post(USERS, json=theirs, headers=h), 403)
    assert users_named(session, theirs["email"]) == 0


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_agency_admin_cannot_assign_roles(
    client: TestClient, principals: Principals, session: Session, role: str
) -> None:
    h = principals.agency_admin.headers
    body = new_user(principals.other.id, roles=[role])
    problem(client.post(USERS, json=body, headers=h), 403)
    assert users_named(session, body["email"]) == 0

    url = f"{USERS}/{principals.member.id}"
    problem(client.patch(url, json={"roles": [role]}, headers=h), 403)
    session.expire_all()
    assert session.get(User, principals.member.id).roles == []  # type: ignore[union-attr]


def test_agency_admin_updates_a_plain_user_of_their_agency(
    client: TestClient, principals: Principals, session: Session
) -> None:
    h = principals.agency_admin.headers
    url = f"{USERS}/{principals.member.id}"
    r = client.patch(
        url,
        json={"full_name": "Pat Member", "job_title": "Officer", "roles": []},
        headers={**h, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Pat Member"
    assert r.json()["job_title"] == "Officer"
    assert r.headers["etag"] == '"2"'

    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.update"))
    assert event.actor_id == principals.agency_admin.id
    assert event.changes == {
        "full_name": ["Test User", "Pat Member"],
        "job_title": [None, "Officer"],
    }


def test_agency_admin_cannot_touch_another_agencys_user(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    plain = make_user(session, security, principals.home)
    r = client.patch(
        f"{USERS}/{plain.id}", json={"is_active": False}, headers=principals.agency_admin.headers
    )
    problem(r, 404)
    session.expire_all()
    assert session.get(User, plain.id).is_active is True  # type: ignore[union-attr]


@pytest.mark.parametrize("role", [Role.AGENCY_ADMIN, Role.AUDITOR, Role.ADMIN])
def test_agency_admin_cannot_modify_a_user_holding_a_system_role(
    client: TestClient, principals: Principals, session: Session, security: Security, role: Role
) -> None:
    colleague = make_user(session, security, principals.other, roles=[role])
    h = principals.agency_admin.headers
    url = f"{USERS}/{colleague.id}"
    assert client.get(url, headers=h).status_code == 200  # may see them ...
    for change in (
        {"job_title": "x"},
        {"is_active": False},
        {"password": NEW_PASSWORD},
        {"roles": []},
    ):
        problem(client.patch(url, json=change, headers=h), 403)  # ... but not change them
    session.expire_all()
    stored = session.get(User, colleague.id)
    assert stored is not None
    assert stored.version == 1
    assert stored.roles == [role.value]
    assert stored.is_active is True


def test_agency_admin_cannot_modify_themselves_either(
    client: TestClient, principals: Principals
) -> None:
    # They hold a system role themselves, so only an admin may change their account.
    r = client.patch(
        f"{USERS}/{principals.agency_admin.id}",
        json={"job_title": "Boss"},
        headers=principals.agency_admin.headers,
    )
    problem(r, 403)


# --- admin guard rails ----------------------------------------------------------------------


def test_admin_cannot_deactivate_themselves(
    client: TestClient, principals: Principals, session: Session
) -> None:
    url = f"{USERS}/{principals.admin.id}"
    problem(client.patch(url, json={"is_active": False}, headers=principals.admin.headers), 409)
    session.expire_all()
    assert session.get(User, principals.admin.id).is_active is True  # type: ignore[union-attr]
    assert client.get("/api/v1/me", headers=principals.admin.headers).status_code == 200


@pytest.mark.parametrize("roles", [[], ["auditor"], ["agency_admin"]])
def test_admin_cannot_remove_their_own_admin_role(
    client: TestClient, principals: Principals, session: Session, roles: list[str]
) -> None:
    url = f"{USERS}/{principals.admin.id}"
    problem(client.patch(url, json={"roles": roles}, headers=principals.admin.headers), 409)
    session.expire_all()
    assert session.get(User, principals.admin.id).roles == ["admin"]  # type: ignore[union-attr]


def test_admin_manages_other_users_roles_and_status(
    client: TestClient, principals: Principals, session: Session
) -> None:
    h = principals.admin.headers
    url = f"{USERS}/{principals.member.id}"
    r = client.patch(url, json={"roles": ["agency_admin", "agency_admin"]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["agency_admin"]
    # The member now holds user:read, from their role, on their very next request.
    assert client.get(USERS, headers=principals.member.headers).status_code == 200

    r = client.patch(url, json={"is_active": False}, headers=h)
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    problem(client.get("/api/v1/me", headers=principals.member.headers), 401)


@pytest.mark.parametrize("field", ["full_name", "roles", "is_active", "password", "unlock"])
def test_null_for_a_non_nullable_field_is_422(
    client: TestClient, principals: Principals, field: str
) -> None:
    r = client.patch(
        f"{USERS}/{principals.member.id}", json={field: None}, headers=principals.admin.headers
    )
    body = problem(r, 422)
    assert field in json.dumps(body["errors"])


def test_a_stale_if_match_is_412(client: TestClient, principals: Principals) -> None:
    url = f"{USERS}/{principals.member.id}"
    h = principals.admin.headers
    assert (
        client.patch(url, json={"job_title": "A"}, headers={**h, "If-Match": '"1"'}).status_code
        == 200
    )
    problem(client.patch(url, json={"job_title": "B"}, headers={**h, "If-Match": '"1"'}), 412)
    assert client.get(url, headers=h).json()["job_title"] == "A"


def test_patching_an_unknown_user_is_404(client: TestClient, principals: Principals) -> None:
    problem(
        client.patch(
            f"{USERS}/{uuid.uuid4()}", json={"job_title": "x"}, headers=principals.admin.headers
        ),
        404,
    )


# --- lockout and passwords ------------------------------------------------------------------


def test_unlock_clears_a_lockout(
    client: TestClient, principals: Principals, session: Session
) -> None:
    email = email_of(session, principals.member.id)
    for _ in range(5):
        assert login(client, email, "wrong-password-guess").status_code in (400, 401)
    session.expire_all()
    member = session.get(User, principals.member.id)
    assert member is not None and member.locked_until is not None
    assert member.locked_until > utcnow()
    assert login(client, email, PASSWORD).status_code in (400, 401), "locked out"
    shown = client.get(f"{USERS}/{principals.member.id}", headers=principals.admin.headers)
    assert shown.json()["locked_until"] is not None

    r = client.patch(
        f"{USERS}/{principals.member.id}", json={"unlock": True}, headers=principals.admin.headers
    )

    assert r.status_code == 200, r.text
    assert r.json()["locked_until"] is None
    session.expire_all()
    member = session.get(User, principals.member.id)
    assert member is not None
    assert member.locked_until is None
    assert member.failed_login_count == 0
    assert login(client, email, PASSWORD).status_code == 200
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.update")).one()
    assert event.changes == {"lockout": "cleared"}


def test_unlock_also_clears_a_lockout_set_directly(
    client: TestClient, principals: Principals, session: Session
) -> None:
    member = session.get(User, principals.member.id)
    assert member is not None
    member.locked_until = utcnow() + timedelta(hours=1)
    member.failed_login_count = 3
    session.commit()
    r = client.patch(
        f"{USERS}/{principals.member.id}",
        json={"unlock": True},
        headers=principals.agency_admin.headers,
    )
    assert r.status_code == 200, r.text
    session.expire_all()
    member = session.get(User, principals.member.id)
    assert member is not None
    assert (member.locked_until, member.failed_login_count) == (None, 0)


def test_resetting_a_password(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    email = email_of(session, principals.member.id)
    old_token = principals.member.headers
    assert client.get("/api/v1/me", headers=old_token).status_code == 200
    refresh = login(client, email, PASSWORD).json()["refresh_token"]

    r = client.patch(
        f"{USERS}/{principals.member.id}",
        json={"password": NEW_PASSWORD},
        headers=principals.admin.headers,
    )

    assert r.status_code == 200, r.text
    assert NEW_PASSWORD not in r.text
    # Every session the user had ends: access tokens at once, refresh tokens too.
    problem(client.get("/api/v1/me", headers=old_token), 401)
    refreshed = client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert refreshed.status_code in (400, 401)
    assert login(client, email, PASSWORD).status_code in (400, 401)
    assert login(client, email, NEW_PASSWORD).status_code == 200

    session.expire_all()
    stored = session.get(User, principals.member.id)
    assert stored is not None
    assert security.verify_secret(NEW_PASSWORD, stored.password_hash)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.update")).one()
    assert event.changes == {"password": "reset"}
    text = audit_text(session)
    assert NEW_PASSWORD not in text
    assert PASSWORD not in text
    assert stored.password_hash not in text


@pytest.mark.parametrize("password", ["too-short", "{email}"])
def test_password_reset_follows_the_policy(
    client: TestClient, principals: Principals, session: Session, password: str
) -> None:
    password = password.format(email=email_of(session, principals.member.id))
    r = client.patch(
        f"{USERS}/{principals.member.id}",
        json={"password": password},
        headers=principals.admin.headers,
    )
    assert error_fields(problem(r, 422)) == {"body.password"}
    assert password not in r.text
    assert password not in audit_text(session)
    assert client.get("/api/v1/me", headers=principals.member.headers).status_code == 200


def test_reset_mfa_removes_the_second_factor(
    client: TestClient, principals: Principals, session: Session
) -> None:
    r = client.patch(
        f"{USERS}/{principals.auditor.id}",
        json={"reset_mfa": True},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["mfa_enabled"] is False
    assert "totp" not in r.text
    problem(client.get("/api/v1/me", headers=principals.auditor.headers), 401)
    session.expire_all()
    auditor = session.get(User, principals.auditor.id)
    assert auditor is not None
    assert (auditor.totp_secret_enc, auditor.totp_pending_enc) == (None, None)


def test_users_of_an_inactive_agency_stay_listed(
    client: TestClient, principals: Principals, session: Session
) -> None:
    # Users of a deactivated agency stay listed for admins (to reactivate or review them).
    other = session.get(Agency, principals.other.id)
    assert other is not None
    other.is_active = False
    session.commit()
    r = client.get(
        USERS, params={"agency_id": str(principals.other.id)}, headers=principals.admin.headers
    )
    assert len(r.json()["items"]) == 2


# --- Idempotency-Key ------------------------------------------------------------------------


def test_a_retried_create_returns_the_first_user(
    client: TestClient, principals: Principals, session: Session
) -> None:
    body = new_user(principals.other.id)
    headers = {**principals.admin.headers, "Idempotency-Key": "new-user-1"}
    first = client.post(USERS, json=body, headers=headers)
    retry = client.post(USERS, json=body, headers=headers)
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert users_named(session, body["email"]) == 1
    # The stored first response, and whatever else the replay record keeps, hold no password.
    rows = session.execute(text("SELECT * FROM idempotency_record")).all()
    assert rows
    assert NEW_PASSWORD not in repr(rows)
    assert NEW_PASSWORD not in audit_text(session)


def test_a_retry_with_another_password_is_422(
    client: TestClient, principals: Principals, session: Session
) -> None:
    body = new_user(principals.other.id)
    headers = {**principals.admin.headers, "Idempotency-Key": "new-user-2"}
    assert client.post(USERS, json=body, headers=headers).status_code == 201
    r = client.post(USERS, json={**body, "password": "another-password-1234"}, headers=headers)
    problem(r, 422)
    assert "another-password-1234" not in r.text


def test_idempotency_keys_belong_to_the_caller(
    client: TestClient, principals: Principals, session: Session
) -> None:
    body = new_user(principals.other.id)
    key = {"Idempotency-Key": "shared-key"}
    first = client.post(USERS, json=body, headers={**principals.admin.headers, **key})
    assert first.status_code == 201
    # Another principal's identical key is theirs alone: not a replay of the admin's request.
    again = client.post(USERS, json=body, headers={**principals.agency_admin.headers, **key})
    problem(again, 409)  # the email is taken, by the admin's request
    other = new_user(principals.other.id)
    mine = client.post(USERS, json=other, headers={**principals.agency_admin.headers, **key})
    assert mine.status_code == 201
    assert mine.json()["id"] != first.json()["id"]
