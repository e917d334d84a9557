"""The HTTP conventions every route keeps: problem+json errors, request ids, security headers,
the body-size limit, and never a 500 for bad input."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models.agency import Agency
from app.models.audit import AuditEvent
from tests.builders import Principals

AGENCIES = "/api/v1/agencies"
USERS = "/api/v1/users"
PROBLEM_JSON = "application/problem+json"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
# Looks like a password; must never come back in a response.
SECRET = "Hunter2-Correct-Horse-Battery-4471"


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document for ``status``, tied to the request that caused it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str) and body[member], member
    assert body["type"] == "about:blank" or body["type"].startswith("urn:")
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    return body


def agency_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Agency)) or 0


@pytest.fixture
def lenient(app: FastAPI) -> Iterator[TestClient]:
    """A client that reports a server error as a 500 response instead of raising it."""
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# --- every error is problem+json ------------------------------------------------------------

Call = Callable[[TestClient, Principals], Response]
ERRORS: list[tuple[str, Call, int]] = [
    ("unknown path", lambda c, p: c.get("/api/v1/nowhere", headers=p.admin.headers), 404),
    ("unknown path, no token", lambda c, p: c.get("/api/v1/nowhere"), 404),
    ("unknown top-level path", lambda c, p: c.get("/nowhere"), 404),
    (
        "unknown agency",
        lambda c, p: c.get(f"{AGENCIES}/{uuid.uuid4()}", headers=p.admin.headers),
        404,
    ),
    ("wrong method", lambda c, p: c.delete(AGENCIES, headers=p.admin.headers), 405),
    (
        "wrong method on an item",
        lambda c, p: c.put(f"{AGENCIES}/{p.home.id}", json={}, headers=p.admin.headers),
        405,
    ),
    ("body validation", lambda c, p: c.post(AGENCIES, json={}, headers=p.admin.headers), 422),
    (
        "query validation",
        lambda c, p: c.get(AGENCIES, params={"limit": "x"}, headers=p.admin.headers),
        422,
    ),
    (
        "path validation",
        lambda c, p: c.get(f"{AGENCIES}/12", headers=p.admin.headers),
        422,
    ),
    (
        "domain validation",
        lambda c, p: c.post(
            USERS,
            json={
                "email": "short@agency.example.org",
                "full_name": "Short",
                "agency_id": str(p.home.id),
                "password": "short",
            },
            headers=p.admin.headers,
        ),
        422,
    ),
    ("no token", lambda c, p: c.get(AGENCIES), 401),
    (
        "forged token",
        lambda c, p: c.get(AGENCIES, headers={"Authorization": f"Bearer {p.admin.token}x"}),
        401,
    ),
    (
        "wrong scheme",
        lambda c, p: c.get(AGENCIES, headers={"Authorization": f"Basic {p.admin.token}"}),
        401,
    ),
    ("not permitted", lambda c, p: c.get(USERS, headers=p.member.headers), 403),
    (
        "conflict",
        lambda c, p: c.post(
            AGENCIES, json={"name": "Home Agency", "kind": "police"}, headers=p.admin.headers
        ),
        409,
    ),
    (
        "stale version",
        lambda c, p: c.patch(
            f"{AGENCIES}/{p.home.id}",
            json={"short_name": "H"},
            headers={**p.admin.headers, "If-Match": '"9"'},
        ),
        412,
    ),
]


@pytest.mark.parametrize(("call", "status"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_every_error_is_problem_json(
    lenient: TestClient, principals: Principals, call: Call, status: int
) -> None:
    assert_problem(call(lenient, principals), status)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", AGENCIES, {"GET", "POST"}),
        ("PUT", f"{AGENCIES}/{uuid.uuid4()}", {"GET", "PATCH"}),
        ("GET", f"/api/v1/api-clients/{uuid.uuid4()}/rotate-secret", {"POST"}),
        ("DELETE", "/api/v1/me", {"GET"}),
    ],
)
def test_405_names_every_allowed_method(
    client: TestClient, principals: Principals, method: str, path: str, allowed: set[str]
) -> None:
    r = client.request(method, path, headers=principals.admin.headers)
    assert_problem(r, 405)
    assert set(r.headers["allow"].replace(" ", "").split(",")) == allowed


def test_401_carries_a_bearer_challenge(client: TestClient, principals: Principals) -> None:
    missing = client.get(AGENCIES)
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == 'Bearer realm="api"'
    invalid = client.get(AGENCIES, headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(invalid, 401)
    assert invalid.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"'


def test_validation_errors_list_the_fields_without_echoing_input(
    client: TestClient, principals: Principals
) -> None:
    r = client.post(
        USERS,
        json={
            "email": SECRET,  # not an email
            "full_name": "",
            "agency_id": str(principals.home.id),
            "password": SECRET * 10,  # over 256 characters
            "passwd": SECRET,  # unknown field
        },
        headers=principals.admin.headers,
    )

    body = assert_problem(r, 422)
    assert SECRET not in r.text
    assert "Hunter2" not in r.text
    assert body["type"] == "urn:safeguarding-panels:problem:validation"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"body.email", "body.full_name", "body.password", "body.passwd"}
    for error in body["errors"]:
        assert set(error) == {"field", "message", "type"}, "no input, ctx or url"


def test_form_validation_does_not_echo_the_password(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "magic", "username": "someone@example.org", "password": SECRET},
    )
    body = assert_problem(r, 422)
    assert SECRET not in r.text
    assert "body.grant_type" in {e["field"] for e in body["errors"]}


def test_domain_validation_errors_also_list_the_field(
    client: TestClient, principals: Principals
) -> None:
    r = client.post(
        USERS,
        json={
            "email": "new.person@agency.example.org",
            "full_name": "New Person",
            "agency_id": str(principals.home.id),
            "password": "Hunter2-ab",
        },
        headers=principals.admin.headers,
    )
    body = assert_problem(r, 422)
    assert "Hunter2-ab" not in r.text
    assert [e["field"] for e in body["errors"]] == ["body.password"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "Broken", "kind": ', "application/json"),
        (b'{"name": "Broken" "kind": "police"}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b'"a string"', "application/json"),
        (b'{"name": "Plain", "kind": "police"}', "text/plain"),
    ],
    ids=["truncated", "missing comma", "not utf-8", "array", "null", "string", "text/plain"],
)
def test_a_body_that_is_not_a_json_object_is_422(
    lenient: TestClient,
    principals: Principals,
    session: Session,
    content: bytes,
    content_type: str,
) -> None:
    before = agency_count(session)
    r = lenient.post(
        AGENCIES,
        content=content,
        headers={**principals.admin.headers, "Content-Type": content_type},
    )
    body = assert_problem(r, 422)
    assert body["errors"], "the offending part is named"
    assert agency_count(session) == before


# --- request ids ----------------------------------------------------------------------------


def test_a_request_id_is_generated_when_absent(
    client: TestClient, principals: Principals, session: Session
) -> None:
    first = client.get(AGENCIES, headers=principals.admin.headers)
    second = client.get(AGENCIES, headers=principals.admin.headers)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED_ID.match(i) for i in ids)
    assert ids[0] != ids[1]
    audited = set(session.scalars(select(AuditEvent.request_id)))
    assert set(ids) <= audited, "the audit log ties each event to its request"


@pytest.mark.parametrize("request_id", ["req-42", "A.b_c:d-E", "x" * 128, str(uuid.uuid4())])
def test_a_valid_request_id_is_echoed(
    client: TestClient, principals: Principals, session: Session, request_id: str
) -> None:
    ok = client.get(AGENCIES, headers={**principals.admin.headers, "X-Request-ID": request_id})
    assert ok.headers["x-request-id"] == request_id
    assert request_id in set(session.scalars(select(AuditEvent.request_id)))
    refused = client.get(USERS, headers={**principals.member.headers, "X-Request-ID": request_id})
    assert refused.headers["x-request-id"] == request_id
    assert assert_problem(refused, 403)["request_id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["has spaces", "<script>alert(1)</script>", "x" * 129, "semi;colon", 'quo"te', b"caf\xe9"],
    ids=["spaces", "markup", "too long", "semicolon", "quote", "latin-1"],
)
def test_an_invalid_request_id_is_replaced(client: TestClient, request_id: str | bytes) -> None:
    r = client.get("/api/v1/nowhere", headers={"X-Request-ID": request_id})
    replaced = r.headers["x-request-id"]
    assert GENERATED_ID.match(replaced)
    assert assert_problem(r, 404)["request_id"] == replaced
    shown = request_id.decode("latin-1") if isinstance(request_id, bytes) else request_id
    assert shown not in r.text


# --- headers --------------------------------------------------------------------------------


def _assert_security_headers(r: Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "max-age=" in r.headers["strict-transport-security"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c, p: c.get(AGENCIES, headers=p.admin.headers),
        lambda c, p: c.post(
            AGENCIES, json={"name": "Headers Ltd", "kind": "other"}, headers=p.admin.headers
        ),
        lambda c, p: c.get(AGENCIES),
        lambda c, p: c.get("/api/v1/nowhere"),
        lambda c, p: c.get("/api/v1/audit/events/export", headers=p.auditor.headers),
        lambda c, p: c.post(
            f"/api/v1/api-clients/{p.client.id}/rotate-secret", headers=p.admin.headers
        ),
        lambda c, p: c.get("/healthz"),
        lambda c, p: c.get("/openapi.json"),
    ],
    ids=["list", "create", "401", "404", "csv export", "rotate secret", "healthz", "openapi"],
)
def test_every_api_response_has_the_security_headers(
    client: TestClient, principals: Principals, call: Call
) -> None:
    r = call(client, principals)
    assert r.status_code < 500
    _assert_security_headers(r)
    assert r.headers.get_list("cache-control") == ["no-store"], "exactly one, never cached"
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert r.headers["x-request-id"]


def test_the_docs_page_may_load_its_scripts(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    _assert_security_headers(r)
    # Swagger UI runs scripts: the API's "load nothing" policy must not reach it.
    assert "default-src 'none'" not in r.headers.get("content-security-policy", "")


# --- body size ------------------------------------------------------------------------------


def _agency_json_of_size(size: int) -> bytes:
    """A JSON agency body of exactly ``size`` bytes (its name far too long to be valid)."""
    skeleton = b'{"name": "", "kind": "police"}'
    body = skeleton.replace(b'""', b'"' + b"n" * (size - len(skeleton)) + b'"')
    assert len(body) == size
    return body


def test_a_body_over_the_limit_is_413_and_creates_nothing(
    client: TestClient, principals: Principals, session: Session, settings: Settings
) -> None:
    assert settings.max_body_bytes == 1024 * 1024
    before = agency_count(session)
    r = client.post(
        AGENCIES,
        content=_agency_json_of_size(settings.max_body_bytes + 1),
        headers={**principals.admin.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(r, 413)
    assert str(settings.max_body_bytes) in body["detail"]
    _assert_security_headers(r)
    assert agency_count(session) == before


def test_a_body_at_the_limit_is_read(
    client: TestClient, principals: Principals, settings: Settings
) -> None:
    r = client.post(
        AGENCIES,
        content=_agency_json_of_size(settings.max_body_bytes),
        headers={**principals.admin.headers, "Content-Type": "application/json"},
    )
    # Read and validated, not refused for its size: the name is too long.
    assert [e["field"] for e in assert_problem(r, 422)["errors"]] == ["body.name"]


def test_a_chunked_body_over_the_limit_is_413_and_creates_nothing(
    client: TestClient, principals: Principals, session: Session, settings: Settings
) -> None:
    # No Content-Length: the limit must hold while the body is read, not only up front.
    payload = _agency_json_of_size(settings.max_body_bytes + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    before = agency_count(session)
    r = client.post(
        AGENCIES,
        content=chunks(),
        headers={**principals.admin.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)
    _assert_security_headers(r)
    assert agency_count(session) == before


def test_a_chunked_form_over_the_limit_is_413(client: TestClient, settings: Settings) -> None:
    payload = b"grant_type=password&username=a&password=" + b"p" * settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield payload[:1000]
        yield payload[1000:]

    r = client.post(
        "/api/v1/auth/token",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(r, 413)


def test_an_oversized_body_is_refused_before_authentication(client: TestClient) -> None:
    r = client.post(
        AGENCIES, content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 413)


# --- never a 500 ----------------------------------------------------------------------------


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


NASTY: list[tuple[str, Call]] = [
    (
        "huge limit",
        lambda c, p: c.get(AGENCIES, params={"limit": "9" * 40}, headers=p.admin.headers),
    ),
    ("float limit", lambda c, p: c.get(AGENCIES, params={"limit": "2.5"}, headers=p.admin.headers)),
    (
        "NUL cursor",
        lambda c, p: c.get(AGENCIES, params={"cursor": "\x00"}, headers=p.admin.headers),
    ),
    (
        "huge number in an audit cursor",
        lambda c, p: c.get(
            "/api/v1/audit/events", params={"cursor": cursor_of([2**70])}, headers=p.auditor.headers
        ),
    ),
    (
        "boolean in an audit cursor",
        lambda c, p: c.get(
            "/api/v1/audit/events", params={"cursor": cursor_of([True])}, headers=p.auditor.headers
        ),
    ),
    (
        "NUL in an audit filter",
        lambda c, p: c.get(
            "/api/v1/audit/events", params={"resource_type": "a\x00"}, headers=p.auditor.headers
        ),
    ),
    (
        "NUL in a user filter",
        lambda c, p: c.get(USERS, params={"email": "\x00"}, headers=p.admin.headers),
    ),
    ("NUL in a path id", lambda c, p: c.get(f"{USERS}/%00", headers=p.admin.headers)),
    (
        "non-ASCII path id",
        lambda c, p: c.get(f"{AGENCIES}/%C3%A9%F0%9F%92%A5", headers=p.admin.headers),
    ),
    (
        "NUL in a body string",
        lambda c, p: c.post(
            AGENCIES, json={"name": "a\x00b", "kind": "police"}, headers=p.admin.headers
        ),
    ),
    (
        "NUL in a PATCH",
        lambda c, p: c.patch(
            f"{AGENCIES}/{p.other.id}", json={"short_name": "\x00"}, headers=p.admin.headers
        ),
    ),
    (
        "lone surrogate in a body",
        lambda c, p: c.post(
            AGENCIES,
            content=b'{"name": "\\ud800", "kind": "police"}',
            headers={**p.admin.headers, "Content-Type": "application/json"},
        ),
    ),
    (
        "deeply nested body",
        lambda c, p: c.post(
            AGENCIES,
            content=b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b', "kind": "police"}',
            headers={**p.admin.headers, "Content-Type": "application/json"},
        ),
    ),
    (
        "huge number in a body",
        lambda c, p: c.post(
            USERS,
            content=b'{"email": 1' + b"0" * 5000 + b"}",
            headers={**p.admin.headers, "Content-Type": "application/json"},
        ),
    ),
    (
        "long If-Match",
        lambda c, p: c.patch(
            f"{AGENCIES}/{p.other.id}",
            json={"short_name": "X"},
            headers={**p.admin.headers, "If-Match": '"' + "9" * 300 + '"'},
        ),
    ),
    (
        "odd If-Match",
        lambda c, p: c.patch(
            f"{AGENCIES}/{p.other.id}",
            json={"short_name": "X"},
            headers={**p.admin.headers, "If-Match": ',,W/,"",*x'},
        ),
    ),
    (
        "huge bearer token",
        lambda c, p: c.get(AGENCIES, headers={"Authorization": "Bearer " + "a" * 20000}),
    ),
    (
        "JWT-shaped garbage",
        lambda c, p: c.get(AGENCIES, headers={"Authorization": "Bearer e30.e30.e30"}),
    ),
    (
        "long purpose header",
        lambda c, p: c.get(AGENCIES, headers={**p.admin.headers, "X-Purpose": "p" * 5000}),
    ),
    (
        "bad Content-Length",
        lambda c, p: c.post(
            AGENCIES,
            content=b"{}",
            headers={**p.admin.headers, "Content-Type": "application/json", "Content-Length": "x"},
        ),
    ),
]


@pytest.mark.parametrize("call", [n[1] for n in NASTY], ids=[n[0] for n in NASTY])
def test_bad_input_is_never_a_500(lenient: TestClient, principals: Principals, call: Call) -> None:
    r = call(lenient, principals)
    assert r.status_code < 500, r.text
    _assert_security_headers(r)
    if r.status_code >= 400:
        assert_problem(r, r.status_code)


def test_a_nul_character_in_a_filter_is_422_on_every_database(
    client: TestClient, principals: Principals
) -> None:
    r = client.get(AGENCIES, params={"name": "\x00"}, headers=principals.admin.headers)
    assert [e["field"] for e in assert_problem(r, 422)["errors"]] == ["query.name"]


def test_an_unexpected_error_is_a_plain_500_problem(
    settings: Settings, db: Database, session: Session
) -> None:
    # A fresh app (the shared one must not grow routes) with a route that fails.
    app = create_app(settings, db)

    @app.get("/api/v1/broken")
    async def broken() -> None:
        raise RuntimeError(f"internal detail {SECRET}")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/broken", headers={"X-Request-ID": "trace-500"})

    body = assert_problem(r, 500)
    assert body["request_id"] == "trace-500"
    assert SECRET not in r.text
    assert "RuntimeError" not in r.text
    _assert_security_headers(r)
    assert r.headers["cache-control"] == "no-store"
