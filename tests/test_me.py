"""/api/v1/me: who the caller is, and changing one's own password."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.models.user import User
from app.permissions import client_permissions, user_permissions
from app.security import Security
from tests.builders import PASSWORD, Principals, bearer, make_user
from tests.test_auth_tokens import (
    ME_URL,
    assert_bearer_401,
    assert_invalid_grant,
    client_token_response,
    login_ok,
    one_event,
    password_login,
    refresh,
)

PASSWORD_URL = "/api/v1/me/password"
NEW_PASSWORD = "a-brand-new-long-passphrase"
# Whatever else a role brings (panel and case work are added as the API grows), these hold.
BASE = {"self:read", "self:manage", "agency:read"}
ROLE_PROFILE: dict[str, tuple[set[str], set[str]]] = {
    # role: (must have, must not have)
    "admin": (
        BASE | {"agency:write", "user:read", "user:write", "role:assign", "api_client:write"},
        {"audit:read", "audit:verify"},
    ),
    "auditor": (
        BASE | {"audit:read", "audit:verify", "user:read", "api_client:read"},
        {"user:write", "role:assign", "agency:write", "api_client:write"},
    ),
    "agency_admin": (
        BASE | {"user:read", "user:write"},
        {"role:assign", "agency:write", "audit:read", "api_client:read"},
    ),
    "member": (
        BASE,
        {"user:read", "user:write", "role:assign", "agency:write", "audit:read", "api_client:read"},
    ),
}


def assert_permissions(permissions: list[str], roles: list[str], profile: str) -> None:
    """The reported permissions are the role mapping's, sorted, and have the role's shape."""
    must, must_not = ROLE_PROFILE[profile]
    assert permissions == sorted(user_permissions(roles))
    assert must <= set(permissions), must - set(permissions)
    assert not must_not & set(permissions), must_not & set(permissions)


# who am I ------------------------------------------------------------------------------------
def test_me_for_a_user_who_logged_in(
    client: TestClient, session: Session, security: Security, principals: Principals
) -> None:
    person = make_user(session, security, principals.other)
    token = login_ok(client, person.email)["access_token"]

    r = client.get(ME_URL, headers=bearer(token))

    assert r.status_code == 200, r.text
    assert r.json() == {
        "kind": "user",
        "id": str(person.id),
        "name": "Test User",
        "email": person.email,
        "agency": {"id": str(principals.other.id), "name": "Other Agency"},
        "roles": [],
        "scopes": [],
        "permissions": sorted(user_permissions([])),
        "mfa_enabled": False,
        "mfa_required": False,
        "panel_memberships": [],
    }
    assert_permissions(r.json()["permissions"], [], "member")
    event = one_event(session, "self.read", r)
    assert (event.outcome, event.actor_type, event.actor_id) == ("success", "user", person.id)
    assert event.actor_agency_id == principals.other.id


def test_me_for_an_admin(client: TestClient, principals: Principals) -> None:
    body = client.get(ME_URL, headers=principals.admin.headers).json()

    assert body["kind"] == "user"
    assert body["id"] == str(principals.admin.id)
    assert body["agency"] == {"id": str(principals.home.id), "name": "Home Agency"}
    assert body["roles"] == ["admin"]
    assert_permissions(body["permissions"], ["admin"], "admin")
    assert (body["mfa_enabled"], body["mfa_required"]) == (True, True)


@pytest.mark.parametrize(
    ("who", "roles"),
    [("auditor", ["auditor"]), ("agency_admin", ["agency_admin"]), ("member", [])],
)
def test_me_lists_roles_and_their_permissions(
    client: TestClient, principals: Principals, who: str, roles: list[str]
) -> None:
    principal = getattr(principals, who)

    body = client.get(ME_URL, headers=principal.headers).json()

    assert body["id"] == str(principal.id)
    assert body["agency"]["id"] == str(principal.agency_id)
    assert body["roles"] == roles
    assert body["scopes"] == []
    assert_permissions(body["permissions"], roles, who)


def test_me_for_an_api_client(client: TestClient, session: Session, principals: Principals) -> None:
    r = client_token_response(client, principals.client.id)
    assert r.status_code == 200, r.text

    me = client.get(ME_URL, headers=bearer(r.json()["access_token"]))

    assert me.status_code == 200, me.text
    body = me.json()
    assert body["kind"] == "api_client"
    assert body["id"] == str(principals.client.id)
    assert body["name"].startswith("Client ")
    assert body["email"] is None
    assert body["agency"] == {"id": str(principals.other.id), "name": "Other Agency"}
    assert body["roles"] == []
    assert body["scopes"] == ["agencies:read"]
    assert body["permissions"] == sorted(client_permissions(["agencies:read"]))
    assert {"agency:read", "self:read"} <= set(body["permissions"])
    assert not {"self:manage", "user:read", "api_client:read"} & set(body["permissions"])
    assert (body["mfa_enabled"], body["mfa_required"]) == (False, False)
    event = one_event(session, "self.read", me)
    assert (event.actor_type, event.actor_id) == ("api_client", principals.client.id)


def test_me_for_an_api_client_without_scopes(client: TestClient, principals: Principals) -> None:
    body = client.get(ME_URL, headers=principals.bare_client.headers).json()

    assert body["kind"] == "api_client"
    assert body["scopes"] == []
    assert body["permissions"] == ["self:read"]


def test_me_needs_a_token(client: TestClient) -> None:
    assert_bearer_401(client.get(ME_URL))


# changing one's password -----------------------------------------------------------------------
@pytest.fixture
def person(session: Session, security: Security, principals: Principals) -> User:
    return make_user(
        session, security, principals.other, email="jo.bloggs.longname@agency.example.org"
    )


@pytest.mark.parametrize(
    ("current", "new", "message"),
    [
        (PASSWORD, "short-pw-11", "at least 12 characters"),
        (PASSWORD, "jo.bloggs.longname@agency.example.org", "email"),
        (PASSWORD, "  JO.Bloggs.LongName@Agency.Example.org ", "email"),
        (PASSWORD, "jo.bloggs.longname", "email"),
        ("not-my-current-password", NEW_PASSWORD, "current password"),
    ],
    ids=["too-short", "email", "email-other-case", "email-local-part", "wrong-current"],
)
def test_password_change_refusals(
    client: TestClient,
    session: Session,
    security: Security,
    person: User,
    current: str,
    new: str,
    message: str,
) -> None:
    tokens = login_ok(client, person.email)
    headers = bearer(tokens["access_token"])
    old_hash = person.password_hash

    r = client.post(
        PASSWORD_URL, json={"current_password": current, "new_password": new}, headers=headers
    )

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert message in (r.json()["detail"] or "")
    assert new.strip() not in r.text  # the attempted password is never echoed
    session.refresh(person)
    assert person.password_hash == old_hash
    # Nothing was ended by the refused change.
    assert client.get(ME_URL, headers=headers).status_code == 200


def test_password_of_exactly_the_minimum_length_is_accepted(
    client: TestClient, settings: Settings, person: User
) -> None:
    headers = bearer(login_ok(client, person.email)["access_token"])
    new = "x" * settings.password_min_length

    r = client.post(
        PASSWORD_URL, json={"current_password": PASSWORD, "new_password": new}, headers=headers
    )

    assert r.status_code == 204, r.text
    login_ok(client, person.email, new)


def test_password_change_ends_every_session(
    client: TestClient, session: Session, person: User
) -> None:
    this_device = login_ok(client, person.email)
    other_device = login_ok(client, person.email)
    headers = bearer(this_device["access_token"])

    r = client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )

    assert r.status_code == 204, r.text
    assert r.content == b""
    event = one_event(session, "self.password_change", r)
    assert (event.actor_id, event.changes) == (person.id, {"password": "changed"})
    assert NEW_PASSWORD not in str(event.changes) + str(event.detail)
    for tokens in (this_device, other_device):
        assert_bearer_401(client.get(ME_URL, headers=bearer(tokens["access_token"])))
        assert_invalid_grant(
            refresh(client, tokens["refresh_token"]), "The refresh token is not valid"
        )
    assert_invalid_grant(password_login(client, person.email, PASSWORD))
    fresh = login_ok(client, person.email, NEW_PASSWORD)
    assert client.get(ME_URL, headers=bearer(fresh["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": "x" * 257},
        {"current_password": PASSWORD, "new_password": ""},
    ],
    ids=["no-new", "no-current", "unknown-field", "too-long", "empty"],
)
def test_password_change_body_is_validated(
    client: TestClient, principals: Principals, body: dict[str, str]
) -> None:
    r = client.post(PASSWORD_URL, json=body, headers=principals.member.headers)

    assert r.status_code == 422, r.text
    assert r.json()["errors"]
    assert PASSWORD not in r.text


def test_api_clients_have_no_password_to_change(client: TestClient, principals: Principals) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (
        client.post(PASSWORD_URL, json=body, headers=principals.client.headers).status_code == 403
    )
    assert_bearer_401(client.post(PASSWORD_URL, json=body))
