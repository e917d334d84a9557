"""The token endpoint and bearer tokens, end to end over HTTP against the real database.

Covers the password grant's success and its uniform refusals, the form's validation, every
way a forged, expired or misused access token is turned away, deactivation stopping tokens on
the next request, refresh-token rotation and reuse detection, revocation, and the
client-credentials grant with scopes and secret rotation.

The helpers at the top are shared with the other ``test_auth_*`` and ``test_me`` modules.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models.agency import Agency
from app.models.api_client import ApiClient
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.refresh_token import RefreshToken
from app.models.user import User
from app.permissions import Scope, client_permissions
from app.security import Security
from app.services.auth import BAD_CREDENTIALS
from tests.builders import (
    CLIENT_SECRET,
    PASSWORD,
    Principals,
    bearer,
    make_agency,
    make_client,
    make_user,
)

TOKEN_URL = "/api/v1/auth/token"
REVOKE_URL = "/api/v1/auth/revoke"
ME_URL = "/api/v1/me"
PROBLEM_JSON = "application/problem+json"


# shared helpers ---------------------------------------------------------------------------
def password_login(
    client: TestClient, username: str, password: str = PASSWORD, otp: str | None = None
) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password}
    if otp is not None:
        data["otp"] = otp
    r: httpx.Response = client.post(TOKEN_URL, data=data)
    return r


def login_ok(
    client: TestClient, username: str, password: str = PASSWORD, otp: str | None = None
) -> dict[str, Any]:
    r = password_login(client, username, password, otp)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def refresh(client: TestClient, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    r: httpx.Response = client.post(TOKEN_URL, data=data)
    return r


def request_id(r: httpx.Response) -> str:
    return r.headers["x-request-id"]


def audit_events(
    session: Session,
    action: str,
    *,
    rid: str | None = None,
    actor_id: uuid.UUID | None = None,
    outcome: str | None = None,
) -> list[AuditEvent]:
    """Audit events the app committed (in the test's transaction), oldest first."""
    session.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action == action)  # type: ignore[arg-type]
    if rid is not None:
        stmt = stmt.where(AuditEvent.request_id == rid)  # type: ignore[arg-type]
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)  # type: ignore[arg-type]
    if outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == outcome)  # type: ignore[arg-type]
    return list(session.scalars(stmt.order_by(AuditEvent.id)))  # type: ignore[arg-type]


def one_event(session: Session, action: str, r: httpx.Response) -> AuditEvent:
    """The single event of ``action`` written while serving response ``r``."""
    events = audit_events(session, action, rid=request_id(r))
    assert len(events) == 1, [(e.action, e.outcome, e.detail) for e in events]
    return events[0]


def comparable_problem(r: httpx.Response) -> dict[str, Any]:
    """The problem document without what differs per request by design."""
    body: dict[str, Any] = dict(r.json())
    body.pop("request_id", None)
    body.pop("instance", None)
    return body


def assert_invalid_grant(r: httpx.Response, description: str = BAD_CREDENTIALS) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    body = r.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"] == description
    assert "access_token" not in body


def assert_bearer_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def client_token_response(
    client: TestClient, client_id: uuid.UUID | str, secret: str = CLIENT_SECRET, **form: str
) -> httpx.Response:
    r: httpx.Response = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", **form},
        headers=basic(str(client_id), secret),
    )
    return r


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def access_claims(
    settings: Settings, subject: str, epoch: int = 0, /, **overrides: Any
) -> dict[str, Any]:
    """Claims shaped exactly like Security.create_access_token's."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.token_issuer,
        "sub": subject,
        "typ": "access",
        "iat": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": secrets.token_urlsafe(12),
        "scope": "",
        "epc": epoch,
    }
    claims.update(overrides)
    return claims


# fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def agency(session: Session) -> Agency:
    return make_agency(session)


@pytest.fixture
def user(session: Session, security: Security, agency: Agency) -> User:
    return make_user(session, security, agency)


# password grant ------------------------------------------------------------------------------
def test_password_grant_issues_access_and_refresh_tokens(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    r = password_login(client, user.email)

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    assert body["scope"] == ""
    claims = jwt.decode(
        body["access_token"],
        settings.secret_key,
        algorithms=["HS256"],
        issuer="safeguarding-panels",
    )
    assert claims["sub"] == f"user:{user.id}"
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    me = client.get(ME_URL, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(user.id)

    event = one_event(session, "auth.login", r)
    assert event.outcome == "success"
    assert event.actor_type == "user"
    assert event.actor_id == user.id
    assert event.actor_agency_id == user.agency_id
    assert event.resource_id == str(user.id)
    assert event.detail == {"mfa": False, "scope": ""}
    session.refresh(user)
    assert user.last_login_at is not None
    # Only a hash of the refresh token is stored.
    stored = session.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user.id)  # type: ignore[arg-type]
    ).one()
    assert stored.token_hash == Security.digest(body["refresh_token"])
    assert body["refresh_token"] not in stored.token_hash


def test_username_is_matched_case_insensitively_and_trimmed(client: TestClient, user: User) -> None:
    login_ok(client, f"  {user.email.upper()} ")


def test_every_password_refusal_looks_the_same(
    client: TestClient, session: Session, security: Security, agency: Agency, user: User
) -> None:
    inactive = make_user(session, security, agency, is_active=False)
    locked = make_user(session, security, agency)
    locked.locked_until = utcnow() + timedelta(minutes=10)
    closed_agency = make_agency(session)
    in_closed_agency = make_user(session, security, closed_agency)
    closed_agency.is_active = False
    session.commit()

    attempts = {
        "bad_password": password_login(client, user.email, "not-the-password-at-all"),
        "unknown_user": password_login(client, "nobody@agency.example.org"),
        "inactive": password_login(client, inactive.email),  # right password
        "locked": password_login(client, locked.email),  # right password
        "agency_inactive": password_login(client, in_closed_agency.email),  # right password
    }

    bodies = {name: comparable_problem(r) for name, r in attempts.items()}
    reference = bodies["bad_password"]
    assert reference == {
        "type": "urn:safeguarding-panels:problem:oauth",
        "title": "Token request refused",
        "status": 400,
        "detail": BAD_CREDENTIALS,
        "error": "invalid_grant",
        "error_description": BAD_CREDENTIALS,
    }
    for name, r in attempts.items():
        assert_invalid_grant(r)
        assert bodies[name] == reference, name
        assert "www-authenticate" not in r.headers
        assert set(r.json()) == set(attempts["bad_password"].json())

    reasons = {name: one_event(session, "auth.login", r).detail for name, r in attempts.items()}
    assert reasons == {
        "bad_password": {"reason": "bad_password"},
        "unknown_user": {"reason": "unknown_user"},
        "inactive": {"reason": "inactive"},
        "locked": {"reason": "locked"},
        "agency_inactive": {"reason": "inactive"},
    }
    for r in attempts.values():
        assert one_event(session, "auth.login", r).outcome == "failure"
    unknown = one_event(session, "auth.login", attempts["unknown_user"])
    assert unknown.actor_type == "anonymous" and unknown.actor_id is None
    assert one_event(session, "auth.login", attempts["inactive"]).actor_id == inactive.id


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (
            {
                "grant_type": "password",
                "username": "a@b.org",
                "password": "s3cret-sent",
                "foo": "bar",
            },
            "foo",
        ),
        (
            {
                "grant_type": "password",
                "username": "a@b.org",
                "password": "s3cret-sent",
                "otp": "1" * 11,
            },
            "otp",
        ),
        ({"username": "a@b.org", "password": "s3cret-sent"}, "grant_type"),
        ({"grant_type": "authorization_code", "code": "abc"}, "grant_type"),
    ],
    ids=["unknown-field", "otp-too-long", "no-grant-type", "unsupported-grant"],
)
def test_malformed_token_requests_are_422_problems(
    client: TestClient, form: dict[str, str], field: str
) -> None:
    r = client.post(TOKEN_URL, data=form)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    body = r.json()
    assert body["status"] == 422
    assert any(e["field"].endswith(field) for e in body["errors"]), body
    assert all(set(e) == {"field", "message", "type"} for e in body["errors"])
    assert "s3cret-sent" not in r.text  # never echo what was sent


def test_token_request_as_json_is_refused(client: TestClient, user: User) -> None:
    r = client.post(
        TOKEN_URL, json={"grant_type": "password", "username": user.email, "password": PASSWORD}
    )
    assert r.status_code == 422, r.text
    assert PASSWORD not in r.text


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "password": PASSWORD},
        {"grant_type": "password", "username": "someone@agency.example.org"},
        {"grant_type": "password"},
        {"grant_type": "refresh_token"},
    ],
    ids=["no-username", "no-password", "neither", "no-refresh-token"],
)
def test_missing_credentials_are_invalid_request(client: TestClient, form: dict[str, str]) -> None:
    r = client.post(TOKEN_URL, data=form)

    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.json()["error"] == "invalid_request"


# access tokens ---------------------------------------------------------------------------------
@dataclass
class TokenCase:
    """What a forging or careless caller has: a real login, the service's settings."""

    settings: Settings
    user: User
    access_token: str
    refresh_token: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        return access_claims(
            self.settings, f"user:{self.user.id}", self.user.auth_epoch, **overrides
        )

    def sign(self, claims: dict[str, Any], algorithm: str = "HS256", key: str | None = None) -> str:
        return str(jwt.encode(claims, key or self.settings.secret_key, algorithm=algorithm))


def _expired(c: TokenCase) -> str:
    now = int(time.time())
    return c.sign(c.claims(iat=now - 3600, exp=now - 60))


def _tampered_payload(c: TokenCase) -> str:
    header, _, signature = c.access_token.split(".")
    forged = b64url(json.dumps(c.claims(scope="agencies:read admin")).encode())
    return f"{header}.{forged}.{signature}"


def _tampered_signature(c: TokenCase) -> str:
    head, _, signature = c.access_token.rpartition(".")
    # Change a character in the middle: the last one may only carry padding bits.
    i = len(signature) // 2
    swapped = "A" if signature[i] != "A" else "B"
    return f"{head}.{signature[:i]}{swapped}{signature[i + 1 :]}"


def _alg_none(c: TokenCase) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(c.claims()).encode())
    return f"{header}.{payload}."


def _alg_none_with_signature(c: TokenCase) -> str:
    # alg none, but carrying the real token's signature: still refused.
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    _, payload, signature = c.access_token.split(".")
    return f"{header}.{payload}.{signature}"


def _hs384(c: TokenCase) -> str:
    return c.sign(c.claims(), "HS384")


def _hs512(c: TokenCase) -> str:
    return c.sign(c.claims(), "HS512")


def _wrong_secret(c: TokenCase) -> str:
    return c.sign(c.claims(), key="another-secret-key-of-the-same-length-0123456789")


def _wrong_issuer(c: TokenCase) -> str:
    return c.sign(c.claims(iss="someone-else"))


def _not_access_typ(c: TokenCase) -> str:
    return c.sign(c.claims(typ="refresh"))


def _no_exp(c: TokenCase) -> str:
    claims = c.claims()
    del claims["exp"]
    return c.sign(claims)


def _unknown_subject_kind(c: TokenCase) -> str:
    return c.sign(c.claims(sub=f"robot:{c.user.id}"))


def _refresh_as_bearer(c: TokenCase) -> str:
    return c.refresh_token


def _garbage(c: TokenCase) -> str:
    return "not-a-jwt"


@pytest.mark.parametrize(
    "forge",
    [
        _expired,
        _tampered_payload,
        _tampered_signature,
        _alg_none,
        _alg_none_with_signature,
        _hs384,
        _hs512,
        _wrong_secret,
        _wrong_issuer,
        _not_access_typ,
        _no_exp,
        _unknown_subject_kind,
        _refresh_as_bearer,
        _garbage,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_bad_access_tokens_are_rejected_and_audited(
    client: TestClient,
    session: Session,
    settings: Settings,
    user: User,
    forge: Callable[[TokenCase], str],
) -> None:
    tokens = login_ok(client, user.email)
    case = TokenCase(settings, user, tokens["access_token"], tokens["refresh_token"])
    # The genuine token works, so the refusal below is down to the forgery alone.
    assert client.get(ME_URL, headers=bearer(case.access_token)).status_code == 200

    r = client.get(ME_URL, headers=bearer(forge(case)))

    assert_bearer_401(r)
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    event = one_event(session, "auth.token_rejected", r)
    assert event.outcome == "failure"
    assert event.actor_type == "anonymous"
    assert event.detail is not None and event.detail["route"] == "GET /api/v1/me"
    assert audit_events(session, "self.read", rid=request_id(r)) == []


def test_missing_bearer_token_is_challenged(client: TestClient, session: Session) -> None:
    r = client.get(ME_URL)

    assert_bearer_401(r)
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'  # no error code: nothing sent
    event = one_event(session, "auth.token_rejected", r)
    assert event.detail is not None and event.detail["reason"] == "missing bearer token"


def test_other_authorization_schemes_are_not_bearer_tokens(
    client: TestClient, session: Session, principals: Principals
) -> None:
    r = client.get(ME_URL, headers=basic(str(principals.client.id), CLIENT_SECRET))

    assert_bearer_401(r)
    one_event(session, "auth.token_rejected", r)


def test_validly_signed_token_for_a_missing_principal_is_refused(
    client: TestClient, session: Session, settings: Settings, security: Security
) -> None:
    ghost = security.create_access_token("user", uuid.uuid4(), "", 0)
    ghost_client = security.create_access_token("api_client", uuid.uuid4(), "", 0)

    for token in (ghost, ghost_client):
        r = client.get(ME_URL, headers=bearer(token))
        assert_bearer_401(r)
        assert one_event(session, "access.refused", r).outcome == "failure"


def test_token_from_an_older_epoch_is_refused(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    tokens = login_ok(client, user.email)
    user.auth_epoch += 1  # what a password reset or an MFA reset does
    session.commit()

    assert_bearer_401(client.get(ME_URL, headers=bearer(tokens["access_token"])))
    current = access_claims(settings, f"user:{user.id}", user.auth_epoch)
    token = str(jwt.encode(current, settings.secret_key, algorithm="HS256"))
    assert client.get(ME_URL, headers=bearer(token)).status_code == 200


def test_a_token_accepted_before_is_refused_once_it_expires(
    client: TestClient, session: Session, settings: Settings, user: User, monkeypatch: Any
) -> None:
    # Verified tokens are remembered: expiry must still be checked on every request.
    now = int(time.time())
    claims = access_claims(settings, f"user:{user.id}", user.auth_epoch, exp=now + 60)
    token = str(jwt.encode(claims, settings.secret_key, algorithm="HS256"))
    assert client.get(ME_URL, headers=bearer(token)).status_code == 200
    assert client.get(ME_URL, headers=bearer(token)).status_code == 200

    monkeypatch.setattr("app.security.time.time", lambda: now + 61.0)
    r = client.get(ME_URL, headers=bearer(token))

    assert_bearer_401(r)
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert one_event(session, "auth.token_rejected", r).outcome == "failure"


# deactivation ----------------------------------------------------------------------------------
def test_deactivating_a_user_stops_their_tokens_at_once(
    client: TestClient, session: Session, principals: Principals, user: User
) -> None:
    tokens = login_ok(client, user.email)
    assert client.get(ME_URL, headers=bearer(tokens["access_token"])).status_code == 200

    r = client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=principals.admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False

    assert_bearer_401(client.get(ME_URL, headers=bearer(tokens["access_token"])))
    assert_invalid_grant(refresh(client, tokens["refresh_token"]), "The refresh token is not valid")
    assert_invalid_grant(password_login(client, user.email))
    session.expire_all()
    assert (
        session.scalars(
            select(RefreshToken).where(RefreshToken.user_id == user.id)  # type: ignore[arg-type]
        )
        .one()
        .revoked_at
        is not None
    )


def test_deactivating_an_api_client_stops_its_tokens(
    client: TestClient, session: Session, security: Security, principals: Principals
) -> None:
    partner = make_client(session, security, principals.other, [Scope.AGENCIES_READ])
    r = client_token_response(client, partner.id)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert client.get("/api/v1/agencies", headers=bearer(token)).status_code == 200

    r = client.patch(
        f"/api/v1/api-clients/{partner.id}",
        json={"is_active": False},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200, r.text

    assert_bearer_401(client.get("/api/v1/agencies", headers=bearer(token)))
    again = client_token_response(client, partner.id)
    assert again.status_code == 401, again.text
    assert again.json()["error"] == "invalid_client"
    assert one_event(session, "auth.client_token", again).detail == {"reason": "inactive"}


def test_deactivating_an_agency_stops_its_users_and_clients(
    client: TestClient, session: Session, security: Security, principals: Principals
) -> None:
    staff = make_user(session, security, principals.other)
    tokens = login_ok(client, staff.email)
    partner_token = client_token_response(client, principals.client.id).json()["access_token"]
    for token in (tokens["access_token"], principals.member.token, partner_token):
        assert client.get(ME_URL, headers=bearer(token)).status_code == 200

    r = client.patch(
        f"/api/v1/agencies/{principals.other.id}",
        json={"is_active": False},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200, r.text

    for token in (
        tokens["access_token"],
        principals.member.token,
        principals.agency_admin.token,
        principals.client.token,
        partner_token,
    ):
        assert_bearer_401(client.get(ME_URL, headers=bearer(token)))
    assert_invalid_grant(refresh(client, tokens["refresh_token"]), "The refresh token is not valid")
    assert_invalid_grant(password_login(client, staff.email))
    assert client_token_response(client, principals.client.id).status_code == 401
    # The admin, in another agency, is unaffected.
    assert client.get(ME_URL, headers=principals.admin.headers).status_code == 200


# refresh tokens ------------------------------------------------------------------------------
def test_refresh_rotates_the_refresh_token(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    first = login_ok(client, user.email)

    r = refresh(client, first["refresh_token"])

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    second = r.json()
    assert second["token_type"] == "bearer"
    assert second["expires_in"] == settings.access_token_ttl_seconds
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = client.get(ME_URL, headers=bearer(second["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == str(user.id)
    event = one_event(session, "auth.refresh", r)
    assert (event.outcome, event.actor_id) == ("success", user.id)
    rows = session.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user.id)  # type: ignore[arg-type]
    ).all()
    assert len(rows) == 2 and len({row.family_id for row in rows}) == 1
    # The rotated token works in turn.
    assert refresh(client, second["refresh_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_family(
    client: TestClient, session: Session, user: User
) -> None:
    first = login_ok(client, user.email)
    second = refresh(client, first["refresh_token"]).json()
    other_login = login_ok(client, user.email)  # a separate family, e.g. another device

    reuse = refresh(client, first["refresh_token"])

    assert_invalid_grant(reuse, "The refresh token is not valid")
    event = one_event(session, "auth.refresh_reuse", reuse)
    assert (event.outcome, event.actor_id, event.detail) == (
        "failure",
        user.id,
        {"reason": "reused"},
    )
    # The token the legitimate rotation produced is dead too: the family is burnt.
    assert_invalid_grant(refresh(client, second["refresh_token"]), "The refresh token is not valid")
    # ...but the other family is untouched.
    assert refresh(client, other_login["refresh_token"]).status_code == 200


def test_expired_refresh_token_is_refused(client: TestClient, session: Session, user: User) -> None:
    tokens = login_ok(client, user.email)
    row = session.scalars(
        select(RefreshToken).where(
            RefreshToken.token_hash == Security.digest(tokens["refresh_token"])  # type: ignore[arg-type]
        )
    ).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()

    r = refresh(client, tokens["refresh_token"])

    assert_invalid_grant(r, "The refresh token is not valid")
    assert one_event(session, "auth.refresh", r).detail == {"reason": "revoked_or_expired"}


@pytest.mark.parametrize("token", ["never-issued", "eyJhbGciOiJIUzI1NiJ9.e30.sig"])
def test_unknown_refresh_token_is_refused(client: TestClient, session: Session, token: str) -> None:
    r = refresh(client, token)

    assert_invalid_grant(r, "The refresh token is not valid")
    assert one_event(session, "auth.refresh", r).detail == {"reason": "unknown_token"}


def test_access_token_is_not_a_refresh_token(client: TestClient, user: User) -> None:
    tokens = login_ok(client, user.email)
    assert_invalid_grant(refresh(client, tokens["access_token"]), "The refresh token is not valid")


def test_revoke_ends_the_refresh_family(client: TestClient, session: Session, user: User) -> None:
    first = login_ok(client, user.email)
    second = refresh(client, first["refresh_token"]).json()

    r = client.post(REVOKE_URL, data={"token": second["refresh_token"]})

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    event = one_event(session, "auth.revoke", r)
    assert (event.outcome, event.actor_id) == ("success", user.id)
    assert_invalid_grant(refresh(client, second["refresh_token"]), "The refresh token is not valid")
    # Replaying the earlier, rotated token after a logout is no longer "reuse": just refused.
    stale = refresh(client, first["refresh_token"])
    assert_invalid_grant(stale, "The refresh token is not valid")


def test_revoke_with_hint_and_of_unknown_tokens_succeeds(
    client: TestClient, session: Session, user: User
) -> None:
    tokens = login_ok(client, user.email)

    unknown = client.post(REVOKE_URL, data={"token": "never-issued"})
    access = client.post(
        REVOKE_URL, data={"token": tokens["access_token"], "token_type_hint": "access_token"}
    )
    hinted = client.post(
        REVOKE_URL, data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    )

    assert (unknown.status_code, access.status_code, hinted.status_code) == (200, 200, 200)
    assert one_event(session, "auth.revoke", unknown).outcome == "not_found"
    assert_invalid_grant(refresh(client, tokens["refresh_token"]), "The refresh token is not valid")


@pytest.mark.parametrize(
    "form",
    [{}, {"token": "x", "foo": "bar"}, {"token": "x", "token_type_hint": "id_token"}],
    ids=["no-token", "unknown-field", "bad-hint"],
)
def test_malformed_revocation_requests_are_422(client: TestClient, form: dict[str, str]) -> None:
    r = client.post(REVOKE_URL, data=form)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)


# client credentials -----------------------------------------------------------------------------
@pytest.fixture
def partner(session: Session, security: Security, agency: Agency) -> ApiClient:
    return make_client(session, security, agency, [Scope.AGENCIES_READ])


def test_client_credentials_with_http_basic(
    client: TestClient, session: Session, settings: Settings, partner: ApiClient
) -> None:
    r = client_token_response(client, partner.id)

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["scope"] == "agencies:read"
    assert "refresh_token" not in body
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"] == f"api_client:{partner.id}"
    assert client.get("/api/v1/agencies", headers=bearer(body["access_token"])).status_code == 200
    event = one_event(session, "auth.client_token", r)
    assert (event.outcome, event.actor_type, event.actor_id) == (
        "success",
        "api_client",
        partner.id,
    )
    session.refresh(partner)
    assert partner.last_used_at is not None


def test_client_credentials_with_form_fields(client: TestClient, partner: ApiClient) -> None:
    r = client.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": str(partner.id),
            "client_secret": CLIENT_SECRET,
        },
    )

    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    me = client.get(ME_URL, headers=bearer(r.json()["access_token"]))
    assert me.status_code == 200 and me.json()["kind"] == "api_client"


@pytest.mark.parametrize(
    "credentials",
    [
        lambda c: basic(str(c.id), "wrong-secret"),
        lambda c: basic(str(uuid.uuid4()), CLIENT_SECRET),
        lambda c: basic("not-a-uuid", CLIENT_SECRET),
        lambda c: {"Authorization": "Basic !!!not-base64!!!"},
        lambda c: {},
    ],
    ids=["wrong-secret", "unknown-client", "malformed-client-id", "malformed-basic", "none"],
)
def test_client_authentication_failures_are_401_invalid_client(
    client: TestClient,
    session: Session,
    partner: ApiClient,
    credentials: Callable[[ApiClient], dict[str, str]],
) -> None:
    r = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers=credentials(partner)
    )

    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.headers["www-authenticate"].startswith("Basic")
    assert r.json()["error"] == "invalid_client"
    assert "access_token" not in r.json()


def test_wrong_client_secret_in_form_is_refused_and_audited(
    client: TestClient, session: Session, partner: ApiClient
) -> None:
    r = client.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": str(partner.id),
            "client_secret": "wrong-secret",
        },
    )

    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert "Basic" in r.headers["www-authenticate"]
    event = one_event(session, "auth.client_token", r)
    assert (event.outcome, event.actor_id) == ("failure", partner.id)
    assert event.detail == {"reason": "bad_client_credentials"}


def test_scope_beyond_the_grant_is_invalid_scope(
    client: TestClient, session: Session, security: Security, agency: Agency
) -> None:
    bare = make_client(session, security, agency, [])

    r = client_token_response(client, bare.id, scope="agencies:read")

    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_scope"
    assert one_event(session, "auth.client_token", r).detail == {"reason": "scope_not_granted"}
    unknown = client_token_response(client, bare.id, scope="mfa_enrolment")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_scope"


def test_narrower_scope_yields_fewer_permissions(
    client: TestClient, session: Session, security: Security, agency: Agency
) -> None:
    every_scope = sorted(s.value for s in Scope)
    everything = make_client(session, security, agency, list(Scope))
    full = client_token_response(client, everything.id).json()
    one = client_token_response(client, everything.id, scope="agencies:read").json()
    # An explicitly blank scope asks for none of the granted ones: identity only.
    blank = client_token_response(client, everything.id, scope=" ").json()

    assert full["scope"].split() == every_scope
    assert one["scope"] == "agencies:read"
    assert blank["scope"] == ""
    full_me = client.get(ME_URL, headers=bearer(full["access_token"])).json()
    one_me = client.get(ME_URL, headers=bearer(one["access_token"])).json()
    blank_me = client.get(ME_URL, headers=bearer(blank["access_token"])).json()
    assert full_me["scopes"] == every_scope
    assert full_me["permissions"] == sorted(client_permissions(every_scope))
    assert one_me["scopes"] == ["agencies:read"]
    assert one_me["permissions"] == sorted(client_permissions(["agencies:read"]))
    assert (blank_me["scopes"], blank_me["permissions"]) == ([], ["self:read"])
    assert client.get("/api/v1/agencies", headers=bearer(one["access_token"])).status_code == 200
    assert client.get("/api/v1/agencies", headers=bearer(blank["access_token"])).status_code == 403


def test_withdrawing_a_scope_narrows_existing_tokens(
    client: TestClient, partner: ApiClient, principals: Principals
) -> None:
    token = client_token_response(client, partner.id).json()["access_token"]

    r = client.patch(
        f"/api/v1/api-clients/{partner.id}", json={"scopes": []}, headers=principals.admin.headers
    )
    assert r.status_code == 200, r.text

    assert client.get("/api/v1/agencies", headers=bearer(token)).status_code == 403
    me = client.get(ME_URL, headers=bearer(token)).json()
    assert (me["scopes"], me["permissions"]) == ([], ["self:read"])


def test_rotating_the_secret_ends_old_tokens_and_the_old_secret(
    client: TestClient, session: Session, partner: ApiClient, principals: Principals
) -> None:
    old_token = client_token_response(client, partner.id).json()["access_token"]

    r = client.post(
        f"/api/v1/api-clients/{partner.id}/rotate-secret", headers=principals.admin.headers
    )

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    new_secret = r.json()["client_secret"]
    assert new_secret and new_secret != CLIENT_SECRET
    assert_bearer_401(client.get(ME_URL, headers=bearer(old_token)))
    refused = client_token_response(client, partner.id, CLIENT_SECRET)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    fresh = client_token_response(client, partner.id, new_secret)
    assert fresh.status_code == 200, fresh.text
    assert client.get(ME_URL, headers=bearer(fresh.json()["access_token"])).status_code == 200
