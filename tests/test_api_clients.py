"""/api/v1/api-clients: partner systems' credentials. The secret is shown once, stored hashed."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.agency import Agency
from app.models.api_client import ApiClient
from app.models.audit import AuditEvent
from app.security import Security
from tests.builders import CLIENT_SECRET, Principals, make_client

CLIENTS = "/api/v1/api-clients"
TOKEN = "/api/v1/auth/token"
PUBLIC_FIELDS = {
    "id",
    "agency_id",
    "name",
    "scopes",
    "is_active",
    "secret_rotated_at",
    "last_used_at",
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


def client_token(
    client: TestClient, client_id: str, secret: str, scope: str | None = None
) -> Response:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return client.post(TOKEN, data=data, headers={"Authorization": f"Basic {basic}"})


def bearer_of(response: Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def audit_text(session: Session) -> str:
    rows = session.execute(select(AuditEvent.changes, AuditEvent.detail)).all()
    return json.dumps([[changes, detail] for changes, detail in rows])


def cursor_of(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.fixture
def created(client: TestClient, principals: Principals) -> Response:
    r = client.post(
        CLIENTS,
        json={
            "name": "  Police case system ",
            "agency_id": str(principals.other.id),
            "scopes": ["agencies:read"],
        },
        headers=principals.admin.headers,
    )
    assert r.status_code == 201, r.text
    return r


def test_create_shows_the_secret_once(
    client: TestClient,
    principals: Principals,
    session: Session,
    security: Security,
    created: Response,
) -> None:
    body = created.json()
    secret = body["client_secret"]
    assert len(secret) >= 32
    assert set(body) == PUBLIC_FIELDS | {"client_secret"}
    assert body["name"] == "Police case system"
    assert body["scopes"] == ["agencies:read"]
    assert body["agency_id"] == str(principals.other.id)
    assert created.headers["cache-control"] == "no-store"
    assert created.headers["location"] == f"{CLIENTS}/{body['id']}"
    assert created.headers["etag"] == '"1"'

    h = principals.admin.headers
    one = client.get(created.headers["location"], headers=h)
    assert one.status_code == 200
    assert set(one.json()) == PUBLIC_FIELDS
    listing = client.get(CLIENTS, headers=h)
    for r in (one, listing):
        assert secret not in r.text
        assert "secret_hash" not in r.text
        assert "client_secret" not in r.text

    stored = session.get(ApiClient, uuid.UUID(body["id"]))
    assert stored is not None
    assert stored.secret_hash != secret
    assert secret not in stored.secret_hash
    assert security.verify_secret(secret, stored.secret_hash)

    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "api_client.create"))
    assert event.resource_id == body["id"]
    assert event.changes == {
        "name": [None, "Police case system"],
        "agency_id": [None, str(principals.other.id)],
        "scopes": [None, ["agencies:read"]],
        "is_active": [None, True],
    }
    assert secret not in audit_text(session)


def test_the_secret_obtains_a_token_that_works(client: TestClient, created: Response) -> None:
    body = created.json()
    headers = bearer_of(client_token(client, body["id"], body["client_secret"]))
    assert client.get("/api/v1/agencies", headers=headers).status_code == 200
    me = client.get("/api/v1/me", headers=headers).json()
    assert (me["kind"], me["id"], me["scopes"]) == ("api_client", body["id"], ["agencies:read"])
    assert client_token(client, body["id"], "not-the-secret").status_code == 401


def test_rotate_secret_issues_a_new_one_and_retires_the_old(
    client: TestClient,
    principals: Principals,
    session: Session,
    security: Security,
    created: Response,
) -> None:
    body = created.json()
    old_secret = body["client_secret"]
    old_token = bearer_of(client_token(client, body["id"], old_secret))

    r = client.post(
        f"{CLIENTS}/{body['id']}/rotate-secret",
        headers={**principals.admin.headers, "If-Match": '"1"'},
    )

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["etag"] == '"2"'
    rotated = r.json()
    new_secret = rotated["client_secret"]
    assert new_secret != old_secret
    assert rotated["secret_rotated_at"] is not None
    assert rotated["version"] == 2

    problem(client.get("/api/v1/agencies", headers=old_token), 401)
    assert client_token(client, body["id"], old_secret).status_code == 401
    new_token = bearer_of(client_token(client, body["id"], new_secret))
    assert client.get("/api/v1/agencies", headers=new_token).status_code == 200

    session.expire_all()
    stored = session.get(ApiClient, uuid.UUID(body["id"]))
    assert stored is not None
    assert security.verify_secret(new_secret, stored.secret_hash)
    assert not security.verify_secret(old_secret, stored.secret_hash)
    text = audit_text(session)
    assert old_secret not in text and new_secret not in text
    [event] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "api_client.rotate_secret")
    )
    assert event.resource_id == body["id"]


def test_rotate_with_a_stale_if_match_is_412_and_keeps_the_secret(
    client: TestClient, principals: Principals, created: Response
) -> None:
    body = created.json()
    url = f"{CLIENTS}/{body['id']}"
    h = principals.admin.headers
    assert client.patch(url, json={"name": "Renamed"}, headers=h).status_code == 200
    problem(client.post(f"{url}/rotate-secret", headers={**h, "If-Match": '"1"'}), 412)
    assert client_token(client, body["id"], body["client_secret"]).status_code == 200


def test_rotating_an_unknown_client_is_404(client: TestClient, principals: Principals) -> None:
    r = client.post(f"{CLIENTS}/{uuid.uuid4()}/rotate-secret", headers=principals.admin.headers)
    problem(r, 404)


def test_patch_scopes_takes_effect_on_the_next_request(
    client: TestClient, principals: Principals, session: Session
) -> None:
    url = f"{CLIENTS}/{principals.client.id}"
    h = principals.admin.headers
    assert client.get("/api/v1/agencies", headers=principals.client.headers).status_code == 200

    r = client.patch(url, json={"scopes": []}, headers={**h, "If-Match": '"1"'})

    assert r.status_code == 200, r.text
    assert r.json()["scopes"] == []
    assert r.headers["etag"] == '"2"'
    assert "client_secret" not in r.json()
    problem(client.get("/api/v1/agencies", headers=principals.client.headers), 403)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "api_client.update")
    ).one()
    assert event.changes == {"scopes": [["agencies:read"], []]}

    # Granting the scope back restores access (the token asked for it when it was issued).
    r = client.patch(url, json={"scopes": ["agencies:read"]}, headers=h)
    assert r.json()["scopes"] == ["agencies:read"]
    assert client.get("/api/v1/agencies", headers=principals.client.headers).status_code == 200


def test_a_new_scope_does_not_widen_an_old_token(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    bare = session.get(ApiClient, principals.bare_client.id)
    assert bare is not None
    r = client.patch(
        f"{CLIENTS}/{bare.id}", json={"scopes": ["agencies:read"]}, headers=principals.admin.headers
    )
    assert r.status_code == 200
    problem(client.get("/api/v1/agencies", headers=principals.bare_client.headers), 403)
    fresh = bearer_of(client_token(client, str(bare.id), CLIENT_SECRET))
    assert client.get("/api/v1/agencies", headers=fresh).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["root:everything"]}, "body.scopes.0"),
        ({"scopes": "agencies:read"}, "body.scopes"),
        ({"scopes": None}, "body"),
        ({"name": None}, "body"),
        ({"name": ""}, "body.name"),
        ({"name": "n" * 201}, "body.name"),
        ({"client_secret": "chosen-by-me-0123456789"}, "body.client_secret"),
        ({"agency_id": str(uuid.uuid4())}, "body.agency_id"),
    ],
    ids=[
        "unknown scope",
        "scopes not a list",
        "null scopes",
        "null name",
        "empty name",
        "long name",
        "secret",
        "agency",
    ],
)
def test_patch_validation(
    client: TestClient, principals: Principals, session: Session, body: dict[str, Any], field: str
) -> None:
    r = client.patch(
        f"{CLIENTS}/{principals.client.id}", json=body, headers=principals.admin.headers
    )
    assert error_fields(problem(r, 422)) == {field}
    session.expire_all()
    assert session.get(ApiClient, principals.client.id).version == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["admin"]}, "body.scopes.0"),
        ({"name": "x", "agency_id": "{other}", "scopes": ["agencies:read"] * 50}, "body.scopes"),
        ({"name": "x", "agency_id": "nope"}, "body.agency_id"),
        ({"agency_id": "{other}"}, "body.name"),
        ({"name": "x", "agency_id": "{other}", "secret_hash": "x"}, "body.secret_hash"),
    ],
    ids=["unknown scope", "too many scopes", "agency id", "name missing", "secret_hash"],
)
def test_create_validation(
    client: TestClient, principals: Principals, session: Session, body: dict[str, Any], field: str
) -> None:
    body = {
        k: v.format(other=principals.other.id) if isinstance(v, str) else v for k, v in body.items()
    }
    before = session.scalar(select(func.count()).select_from(ApiClient))
    r = client.post(CLIENTS, json=body, headers=principals.admin.headers)
    assert field in error_fields(problem(r, 422))
    assert session.scalar(select(func.count()).select_from(ApiClient)) == before


def test_create_for_an_unknown_or_inactive_agency_is_422(
    client: TestClient, principals: Principals, session: Session
) -> None:
    closed = session.get(Agency, principals.other.id)
    assert closed is not None
    closed.is_active = False
    session.commit()
    before = session.scalar(select(func.count()).select_from(ApiClient))
    for agency_id in (uuid.uuid4(), closed.id):
        r = client.post(
            CLIENTS,
            json={"name": "x", "agency_id": str(agency_id)},
            headers=principals.admin.headers,
        )
        assert error_fields(problem(r, 422)) == {"body.agency_id"}
    assert session.scalar(select(func.count()).select_from(ApiClient)) == before


def test_deactivating_a_client_stops_its_tokens(client: TestClient, principals: Principals) -> None:
    r = client.patch(
        f"{CLIENTS}/{principals.client.id}",
        json={"is_active": False},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    problem(client.get("/api/v1/agencies", headers=principals.client.headers), 401)
    assert client_token(client, str(principals.client.id), CLIENT_SECRET).status_code == 401


def test_list_filters_and_pages(
    client: TestClient, principals: Principals, session: Session, security: Security
) -> None:
    for _ in range(3):
        make_client(session, security, principals.home)
    h = principals.auditor.headers
    everything = client.get(CLIENTS, params={"limit": 200}, headers=h).json()
    assert everything["next_cursor"] is None
    ids = [c["id"] for c in everything["items"]]
    assert len(ids) == 5
    created = [c["created_at"] for c in everything["items"]]
    assert created == sorted(created), "oldest first"

    walked: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(CLIENTS, params=params, headers=h).json()
        walked += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == ids

    home = client.get(CLIENTS, params={"agency_id": str(principals.home.id)}, headers=h).json()
    assert len(home["items"]) == 3
    assert client.get(CLIENTS, params={"is_active": "false"}, headers=h).json()["items"] == []


@pytest.mark.parametrize(
    "cursor",
    [
        # A naive timestamp: the column refuses it, which used to be a 500.
        cursor_of([datetime(2030, 1, 1).isoformat(), str(uuid.uuid4())]),
        cursor_of([12, str(uuid.uuid4())]),
        cursor_of(["2030-01-01T00:00:00+00:00", 12]),
        cursor_of(["yesterday", str(uuid.uuid4())]),
        "not a cursor",
    ],
    ids=["naive time", "number as time", "number as id", "words as time", "garbage"],
)
def test_a_forged_cursor_is_422(client: TestClient, principals: Principals, cursor: str) -> None:
    r = client.get(CLIENTS, params={"cursor": cursor}, headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {"query.cursor"}


def test_an_unknown_client_is_404(client: TestClient, principals: Principals) -> None:
    problem(client.get(f"{CLIENTS}/{uuid.uuid4()}", headers=principals.auditor.headers), 404)
    problem(
        client.patch(
            f"{CLIENTS}/{uuid.uuid4()}", json={"name": "x"}, headers=principals.admin.headers
        ),
        404,
    )
