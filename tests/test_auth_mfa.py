"""Second factor (TOTP): required at login once enrolled, enrolment for admins and auditors.

Codes come from pyotp against the real clock. The service accepts the current step and one
either side, and never a step at or before the last one used, so tests that log in twice use
codes of different steps.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.models.agency import Agency
from app.models.user import User
from app.permissions import Role, user_permissions
from app.security import Security
from app.services.auth import BAD_CREDENTIALS
from tests.builders import PASSWORD, Principals, bearer, make_agency, make_user
from tests.test_auth_tokens import (
    ME_URL,
    assert_bearer_401,
    assert_invalid_grant,
    audit_events,
    comparable_problem,
    login_ok,
    one_event,
    password_login,
    refresh,
)

TOTP_URL = "/api/v1/me/mfa/totp"
CONFIRM_URL = "/api/v1/me/mfa/totp/confirm"
OTP_REQUIRED = "A one-time code from your authenticator app is required (otp)"
# An enrolment-only session may read itself and enrol; nothing else.
ENROLMENT_PERMISSIONS = ["self:manage", "self:read"]


def code_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def code_next_step(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)


def accepted_codes(secret: str) -> set[str]:
    totp = pyotp.TOTP(secret)
    now = time.time()
    return {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}


def wrong_code(secret: str) -> str:
    """Six digits that match no step the service could accept now (with margin)."""
    taken = accepted_codes(secret)
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in taken)


def stale_code(secret: str) -> str:
    """A genuine code of this secret, but from well outside the accepted window."""
    totp = pyotp.TOTP(secret)
    taken = accepted_codes(secret)
    return next(c for c in (totp.at(time.time() - s) for s in (150, 180, 210)) if c not in taken)


@pytest.fixture
def agency(session: Session) -> Agency:
    return make_agency(session)


@pytest.fixture
def secret() -> str:
    return pyotp.random_base32()


@pytest.fixture
def enrolled(session: Session, security: Security, agency: Agency, secret: str) -> User:
    """A person with no system role who has an authenticator app enrolled."""
    return make_user(session, security, agency, totp_secret=secret)


# logging in with a factor -------------------------------------------------------------------
def test_enrolled_user_must_send_a_code(
    client: TestClient, session: Session, enrolled: User
) -> None:
    r = password_login(client, enrolled.email)

    assert_invalid_grant(r, OTP_REQUIRED)
    assert OTP_REQUIRED != BAD_CREDENTIALS
    assert one_event(session, "auth.login", r).detail == {"reason": "otp_required"}
    session.refresh(enrolled)
    assert enrolled.failed_login_count == 0  # the password was right


def test_wrong_password_with_a_factor_still_gives_the_generic_answer(
    client: TestClient, secret: str, enrolled: User
) -> None:
    # Only someone who knows the password learns that a code is needed.
    assert_invalid_grant(password_login(client, enrolled.email, "wrong-password-here"))
    assert_invalid_grant(
        password_login(client, enrolled.email, "wrong-password-here", code_now(secret))
    )


def test_right_code_logs_in_with_full_permissions(
    client: TestClient, session: Session, secret: str, enrolled: User
) -> None:
    r = password_login(client, enrolled.email, otp=code_now(secret))

    assert r.status_code == 200, r.text
    assert r.json()["scope"] == ""
    assert r.json()["refresh_token"]
    me = client.get(ME_URL, headers=bearer(r.json()["access_token"])).json()
    assert me["mfa_enabled"] is True
    assert me["permissions"] == sorted(user_permissions([]))
    assert "agency:read" in me["permissions"]
    assert one_event(session, "auth.login", r).detail == {"mfa": True, "scope": ""}


def test_wrong_code_is_refused_and_counts_toward_lockout(
    client: TestClient, session: Session, secret: str, enrolled: User
) -> None:
    bad_password = password_login(client, enrolled.email, "wrong-password-here")
    session.refresh(enrolled)
    assert enrolled.failed_login_count == 1

    r = password_login(client, enrolled.email, otp=wrong_code(secret))

    assert_invalid_grant(r)
    assert comparable_problem(r) == comparable_problem(bad_password)
    assert one_event(session, "auth.login", r).detail == {"reason": "bad_otp"}
    session.refresh(enrolled)
    assert enrolled.failed_login_count == 2


@pytest.mark.parametrize(
    "otp",
    [
        "abcdef",
        "12345",
        "1234567",
        "12 345",
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() is true for them
        "¹²³⁴⁵⁶",  # superscript digits, likewise
    ],
    ids=["letters", "short", "long", "space", "arabic-indic", "superscript"],
)
def test_malformed_codes_are_refused_like_wrong_ones(
    client: TestClient, session: Session, enrolled: User, otp: str
) -> None:
    r = password_login(client, enrolled.email, otp=otp)

    assert_invalid_grant(r)
    assert one_event(session, "auth.login", r).detail == {"reason": "bad_otp"}


def test_a_code_cannot_be_replayed(
    client: TestClient, session: Session, secret: str, enrolled: User
) -> None:
    code = code_now(secret)
    login_ok(client, enrolled.email, otp=code)

    replay = password_login(client, enrolled.email, otp=code)

    assert_invalid_grant(replay)
    assert one_event(session, "auth.login", replay).detail == {"reason": "bad_otp"}


def test_earlier_step_is_refused_after_a_later_one_was_used(
    client: TestClient, secret: str, enrolled: User
) -> None:
    login_ok(client, enrolled.email, otp=code_next_step(secret))  # one step ahead: accepted

    # The current code belongs to an earlier step than the one just used.
    assert_invalid_grant(password_login(client, enrolled.email, otp=code_now(secret)))


def test_codes_outside_the_window_are_refused(
    client: TestClient, secret: str, enrolled: User
) -> None:
    assert_invalid_grant(password_login(client, enrolled.email, otp=stale_code(secret)))
    login_ok(client, enrolled.email, otp=code_now(secret))


def test_repeated_wrong_codes_lock_the_account(
    client: TestClient, session: Session, settings: Settings, secret: str, enrolled: User
) -> None:
    for _ in range(settings.login_max_failures):
        assert_invalid_grant(password_login(client, enrolled.email, otp=wrong_code(secret)))

    assert len(audit_events(session, "auth.lockout", actor_id=enrolled.id)) == 1
    locked = password_login(client, enrolled.email, otp=code_now(secret))
    assert_invalid_grant(locked)
    assert one_event(session, "auth.login", locked).detail == {"reason": "locked"}


def test_totp_secret_is_stored_encrypted(session: Session, secret: str, enrolled: User) -> None:
    session.refresh(enrolled)
    assert enrolled.totp_secret_enc is not None
    assert secret not in enrolled.totp_secret_enc


# enrolment ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_privileged_role_without_a_factor_must_enrol_first(
    client: TestClient, session: Session, security: Security, agency: Agency, role: Role
) -> None:
    person = make_user(session, security, agency, roles=[role])

    r = password_login(client, person.email)

    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "mfa_enrolment"
    assert one_event(session, "auth.login", r).detail == {"mfa": False, "scope": "mfa_enrolment"}
    enrolment = bearer(r.json()["access_token"])

    me = client.get(ME_URL, headers=enrolment)
    assert me.status_code == 200, me.text
    assert me.json()["permissions"] == ENROLMENT_PERMISSIONS
    assert me.json()["roles"] == [role.value]
    assert (me.json()["mfa_enabled"], me.json()["mfa_required"]) == (False, True)
    for path in (
        "/api/v1/users",
        "/api/v1/agencies",
        "/api/v1/api-clients",
        "/api/v1/audit/events",
    ):
        assert client.get(path, headers=enrolment).status_code == 403, path

    start = client.post(TOTP_URL, headers=enrolment)
    assert start.status_code == 201, start.text
    assert start.headers["cache-control"] == "no-store"
    new_secret = start.json()["secret"]
    uri = urlparse(start.json()["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [new_secret]
    assert parse_qs(uri.query)["issuer"] == ["Safeguarding Panels"]
    assert person.email in uri.path or person.email.replace("@", "%40") in uri.path
    assert one_event(session, "self.mfa_enrol_start", start).actor_id == person.id

    wrong = client.post(CONFIRM_URL, json={"code": wrong_code(new_secret)}, headers=enrolment)
    assert wrong.status_code == 422, wrong.text
    assert wrong.headers["content-type"].startswith("application/problem+json")
    session.refresh(person)
    assert person.totp_secret_enc is None and person.totp_pending_enc is not None

    ok = client.post(CONFIRM_URL, json={"code": code_now(new_secret)}, headers=enrolment)
    assert ok.status_code == 204, ok.text
    assert one_event(session, "self.mfa_enrol_confirm", ok).actor_id == person.id
    session.refresh(person)
    assert person.totp_secret_enc is not None and person.totp_pending_enc is None

    # The enrolment session is over; sign in again, now with the code.
    assert_bearer_401(client.get(ME_URL, headers=enrolment))
    assert_invalid_grant(password_login(client, person.email), OTP_REQUIRED)
    full = login_ok(client, person.email, otp=code_next_step(new_secret))
    assert full["scope"] == ""
    users = client.get("/api/v1/users", headers=bearer(full["access_token"]))
    assert users.status_code == 200, users.text
    me = client.get(ME_URL, headers=bearer(full["access_token"])).json()
    assert me["mfa_enabled"] is True
    assert "user:read" in me["permissions"]


def test_enrolment_refresh_keeps_the_narrow_scope_and_dies_on_confirmation(
    client: TestClient, security: Security, session: Session, agency: Agency
) -> None:
    admin = make_user(session, security, agency, roles=[Role.ADMIN])
    first = login_ok(client, admin.email)

    r = refresh(client, first["refresh_token"])

    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "mfa_enrolment"
    rotated = bearer(r.json()["access_token"])
    assert client.get("/api/v1/users", headers=rotated).status_code == 403
    new_secret = client.post(TOTP_URL, headers=rotated).json()["secret"]
    assert (
        client.post(CONFIRM_URL, json={"code": code_now(new_secret)}, headers=rotated).status_code
        == 204
    )
    assert_invalid_grant(
        refresh(client, r.json()["refresh_token"]), "The refresh token is not valid"
    )


def test_pending_enrolment_is_not_yet_a_factor(
    client: TestClient, security: Security, session: Session, agency: Agency
) -> None:
    admin = make_user(session, security, agency, roles=[Role.ADMIN])
    first = login_ok(client, admin.email)
    assert client.post(TOTP_URL, headers=bearer(first["access_token"])).status_code == 201

    again = login_ok(client, admin.email)  # no code needed: nothing confirmed

    assert again["scope"] == "mfa_enrolment"


def test_restarting_enrolment_replaces_the_pending_secret(
    client: TestClient, security: Security, session: Session, agency: Agency
) -> None:
    admin = make_user(session, security, agency, roles=[Role.ADMIN])
    headers = bearer(login_ok(client, admin.email)["access_token"])
    abandoned = client.post(TOTP_URL, headers=headers).json()["secret"]
    current = client.post(TOTP_URL, headers=headers).json()["secret"]
    assert abandoned != current

    old = client.post(CONFIRM_URL, json={"code": code_now(abandoned)}, headers=headers)
    # (a code of the abandoned secret could only match the new one by a one-in-a-million fluke)
    assert old.status_code == 422, old.text
    new = client.post(CONFIRM_URL, json={"code": code_now(current)}, headers=headers)
    assert new.status_code == 204, new.text


def test_anyone_may_enrol_voluntarily_and_then_needs_the_code(
    client: TestClient, session: Session, security: Security, agency: Agency
) -> None:
    person = make_user(session, security, agency)
    tokens = login_ok(client, person.email)
    assert tokens["scope"] == ""
    headers = bearer(tokens["access_token"])

    new_secret = client.post(TOTP_URL, headers=headers).json()["secret"]
    confirmation_code = code_now(new_secret)
    confirmed = client.post(CONFIRM_URL, json={"code": confirmation_code}, headers=headers)
    assert confirmed.status_code == 204, confirmed.text

    assert_bearer_401(client.get(ME_URL, headers=headers))
    assert_invalid_grant(refresh(client, tokens["refresh_token"]), "The refresh token is not valid")
    assert_invalid_grant(password_login(client, person.email), OTP_REQUIRED)
    # The code used to confirm is spent: it cannot open a session afterwards.
    assert_invalid_grant(password_login(client, person.email, otp=confirmation_code))
    login_ok(client, person.email, otp=code_next_step(new_secret))


def test_enrolment_refusals(client: TestClient, session: Session, principals: Principals) -> None:
    # Already enrolled: a second factor is replaced only through an admin's reset.
    assert client.post(TOTP_URL, headers=principals.admin.headers).status_code == 422
    # Nothing to confirm.
    nothing = client.post(CONFIRM_URL, json={"code": "123456"}, headers=principals.member.headers)
    assert nothing.status_code == 422, nothing.text
    # API clients have no second factor.
    assert client.post(TOTP_URL, headers=principals.client.headers).status_code == 403
    assert client.post(TOTP_URL).status_code == 401


@pytest.mark.parametrize(
    "body",
    [{"code": "12345"}, {"code": "abcdef"}, {"code": "١٢٣٤٥٦"}, {}, {"code": "123456", "x": 1}],
    ids=["short", "letters", "non-ascii-digits", "missing", "unknown-field"],
)
def test_confirmation_body_is_validated(
    client: TestClient, principals: Principals, body: dict[str, object]
) -> None:
    assert client.post(TOTP_URL, headers=principals.member.headers).status_code == 201

    r = client.post(CONFIRM_URL, json=body, headers=principals.member.headers)

    assert r.status_code == 422, r.text
    assert r.json()["errors"]


# changes made by an admin --------------------------------------------------------------------
def test_admin_reset_removes_the_factor(
    client: TestClient, session: Session, security: Security, principals: Principals
) -> None:
    secret = pyotp.random_base32()
    person = make_user(session, security, principals.other, totp_secret=secret)
    tokens = login_ok(client, person.email, otp=code_now(secret))

    r = client.patch(
        f"/api/v1/users/{person.id}", json={"reset_mfa": True}, headers=principals.admin.headers
    )

    assert r.status_code == 200, r.text
    assert r.json()["mfa_enabled"] is False
    update = one_event(session, "user.update", r)
    assert update.changes is not None and update.changes["mfa"] == "reset"
    assert_bearer_401(client.get(ME_URL, headers=bearer(tokens["access_token"])))
    assert_invalid_grant(refresh(client, tokens["refresh_token"]), "The refresh token is not valid")
    again = login_ok(client, person.email)  # no code any more
    me = client.get(ME_URL, headers=bearer(again["access_token"])).json()
    assert me["mfa_enabled"] is False


def test_admin_reset_sends_an_auditor_back_to_enrolment(
    client: TestClient, session: Session, security: Security, principals: Principals
) -> None:
    secret = pyotp.random_base32()
    auditor = make_user(
        session, security, principals.home, roles=[Role.AUDITOR], totp_secret=secret
    )
    assert login_ok(client, auditor.email, otp=code_now(secret))["scope"] == ""

    r = client.patch(
        f"/api/v1/users/{auditor.id}", json={"reset_mfa": True}, headers=principals.admin.headers
    )
    assert r.status_code == 200, r.text

    assert login_ok(client, auditor.email)["scope"] == "mfa_enrolment"


def test_granting_a_privileged_role_narrows_a_session_without_a_factor(
    client: TestClient, session: Session, security: Security, principals: Principals
) -> None:
    person = make_user(session, security, principals.other)
    headers = bearer(login_ok(client, person.email)["access_token"])
    assert client.get("/api/v1/agencies", headers=headers).status_code == 200

    r = client.patch(
        f"/api/v1/users/{person.id}", json={"roles": ["auditor"]}, headers=principals.admin.headers
    )
    assert r.status_code == 200, r.text

    assert client.get("/api/v1/agencies", headers=headers).status_code == 403
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    me = client.get(ME_URL, headers=headers).json()
    assert me["permissions"] == ENROLMENT_PERMISSIONS
    assert me["mfa_required"] is True
    assert login_ok(client, person.email)["scope"] == "mfa_enrolment"


def test_enrolment_session_cannot_change_the_password(
    client: TestClient, session: Session, security: Security, agency: Agency
) -> None:
    admin = make_user(session, security, agency, roles=[Role.ADMIN])
    headers = bearer(login_ok(client, admin.email)["access_token"])
    old_hash = admin.password_hash

    r = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a-brand-new-long-passphrase"},
        headers=headers,
    )

    assert r.status_code == 403, r.text
    session.refresh(admin)
    assert admin.password_hash == old_hash
    assert client.get(ME_URL, headers=headers).status_code == 200
