"""Who may call what: every admin-API route against every principal, from an explicit table.

The table is written out by hand from app/permissions.py (ROLE_PERMISSIONS, SCOPE_PERMISSIONS,
USER_BASE, CLIENT_BASE) and the visibility rules in app/policies.py; it is deliberately not
computed from them, so a change to either shows up here as a failing cell to review.

A route added under /api/v1 without a row here fails ``test_every_api_route_is_in_the_matrix``.

The admin API's rows are exact for real targets (an agency admin gets 404 for another agency's
user). The casework rows (panels, people, referrals, cases) pin the permission gate: their ids
name nothing, so a caller past the gate reaches the lookup and gets 404 (or 422 for a referral
to a panel that does not exist); who sees which panel's rows is for the casework tests. The
same goes for conferences and actions (conference:read/write, action:read/write: casework, so
never admins' or auditors'; the "client" principal holds no conferences or actions scope): a
conference's agenda, attendance and minutes answer 404 for the conference before any listing
or attendance id is looked at.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
import pyotp
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models.audit import AuditEvent
from app.security import Security
from tests.builders import PASSWORD, Principals, dv_referral, make_user

ADMIN, AUDITOR, AGENCY_ADMIN, MEMBER, CLIENT, BARE = (
    "admin",
    "auditor",
    "agency_admin",
    "member",
    "client",
    "bare_client",
)
ANONYMOUS = "anonymous"
PRINCIPALS = (ADMIN, AUDITOR, AGENCY_ADMIN, MEMBER, CLIENT, BARE)
PERSONS = (ADMIN, AUDITOR, AGENCY_ADMIN, MEMBER)

# Routes that take no bearer token: the OAuth2 endpoints themselves.
PUBLIC_ROUTES = {("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/revoke")}

# Which permission each route needs, as the 403 audit event must name it.
AGENCY_READ, AGENCY_WRITE = "agency:read", "agency:write"
USER_READ, USER_WRITE = "user:read", "user:write"
CLIENT_READ, CLIENT_WRITE = "api_client:read", "api_client:write"
AUDIT_READ, AUDIT_VERIFY = "audit:read", "audit:verify"
SELF_READ, SELF_MANAGE = "self:read", "self:manage"
PANEL_READ, PANEL_WRITE, PANEL_MEMBERS_READ = "panel:read", "panel:write", "panel_members:read"
PERSON_SEARCH = "person:search"
REFERRAL_SUBMIT, REFERRAL_READ, REFERRAL_TRIAGE = (
    "referral:submit",
    "referral:read",
    "referral:triage",
)
CASE_READ, CASE_WRITE = "case:read", "case:write"
CONFERENCE_READ, CONFERENCE_WRITE = "conference:read", "conference:write"
ACTION_READ, ACTION_WRITE = "action:read", "action:write"


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # exactly as in the FastAPI route table
    permission: str
    expected: dict[str, int]  # principal name -> status; ANONYMOUS is always 401
    target: str = ""  # what the path's id names, when the answer depends on it
    # The request body, from the principals and the id that names nothing.
    body: Callable[[Principals, uuid.UUID], dict[str, Any]] | None = field(
        default=None, compare=False
    )
    query: dict[str, str] | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        suffix = f" [{self.target}]" if self.target else ""
        return f"{self.method} {self.route}{suffix}"


def row(
    admin: int, auditor: int, agency_admin: int, member: int, client: int, bare: int
) -> dict[str, int]:
    return {
        ADMIN: admin,
        AUDITOR: auditor,
        AGENCY_ADMIN: agency_admin,
        MEMBER: member,
        CLIENT: client,
        BARE: bare,
    }


def _new_agency(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {"name": f"Matrix Agency {uuid.uuid4().hex[:8]}", "kind": "health"}


def _new_user(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    # In the agency the agency admin runs, so that both admins may create it.
    return {
        "email": f"matrix-{uuid.uuid4().hex[:8]}@agency.example.org",
        "full_name": "Matrix User",
        "agency_id": str(p.other.id),
        "password": "a-long-enough-password-123",
    }


def _new_client(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {"name": "Matrix client", "agency_id": str(p.other.id), "scopes": ["agencies:read"]}


def _new_panel(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {"panel_type": "dv_marac", "name": f"Matrix MARAC {unknown.hex[:6]}", "area": "Bexley"}


def _referral(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return dv_referral(unknown)


def _consent(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {"person_id": str(unknown), "purpose": "information_sharing", "status": "given"}


def _exclusion(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {"agency_id": str(p.home.id), "reason": "The perpetrator works there"}


def _conference(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    # The panel named is the id that names nothing: 404 for the panel past the gate.
    return {
        "panel_id": str(unknown),
        "starts_at": "2027-03-01T10:00:00+00:00",
        "location": "Civic Offices, Bexleyheath",
        "chair_user_id": str(p.member.id),
    }


def _attendee(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {
        "agency_id": str(p.home.id),
        "attendee_name": "Matrix Attendee",
        "role": "representative",
        "status": "present",
    }


def _action(p: Principals, unknown: uuid.UUID) -> dict[str, Any]:
    return {
        "description": "Refer to the sanctuary scheme",
        "owner_agency_id": str(p.home.id),
        "due_date": "2027-03-15",
    }


# Users of "other" (the agency admin's agency) vs users of "home" (where admin, auditor work).
OWN = "user in the agency admin's agency"
FOREIGN = "user in another agency"
UNKNOWN = "unknown id"

#                                       admin auditor a_admin member client bare
CASES: list[Case] = [
    Case("GET", "/api/v1/agencies", AGENCY_READ, row(200, 200, 200, 200, 200, 403)),
    Case("POST", "/api/v1/agencies", AGENCY_WRITE, row(201, 403, 403, 403, 403, 403),
         body=_new_agency),
    Case("GET", "/api/v1/agencies/{agency_id}", AGENCY_READ, row(200, 200, 200, 200, 200, 403)),
    Case("PATCH", "/api/v1/agencies/{agency_id}", AGENCY_WRITE, row(200, 403, 403, 403, 403, 403),
         body=lambda p, u: {"short_name": "OA"}),
    Case("GET", "/api/v1/users", USER_READ, row(200, 200, 200, 403, 403, 403)),
    Case("POST", "/api/v1/users", USER_WRITE, row(201, 403, 201, 403, 403, 403), body=_new_user),
    Case("GET", "/api/v1/users/{user_id}", USER_READ, row(200, 200, 200, 403, 403, 403),
         target=OWN),
    Case("GET", "/api/v1/users/{user_id}", USER_READ, row(200, 200, 404, 403, 403, 403),
         target=FOREIGN),
    Case("PATCH", "/api/v1/users/{user_id}", USER_WRITE, row(200, 403, 200, 403, 403, 403),
         target=OWN, body=lambda p, u: {"job_title": "Coordinator"}),
    Case("PATCH", "/api/v1/users/{user_id}", USER_WRITE, row(200, 403, 404, 403, 403, 403),
         target=FOREIGN, body=lambda p, u: {"job_title": "Coordinator"}),
    Case("GET", "/api/v1/api-clients", CLIENT_READ, row(200, 200, 403, 403, 403, 403)),
    Case("POST", "/api/v1/api-clients", CLIENT_WRITE, row(201, 403, 403, 403, 403, 403),
         body=_new_client),
    Case("GET", "/api/v1/api-clients/{client_id}", CLIENT_READ,
         row(200, 200, 403, 403, 403, 403)),
    Case("PATCH", "/api/v1/api-clients/{client_id}", CLIENT_WRITE,
         row(200, 403, 403, 403, 403, 403), body=lambda p, u: {"name": "Renamed client"}),
    Case("POST", "/api/v1/api-clients/{client_id}/rotate-secret", CLIENT_WRITE,
         row(200, 403, 403, 403, 403, 403)),
    Case("GET", "/api/v1/audit/events", AUDIT_READ, row(403, 200, 403, 403, 403, 403)),
    Case("GET", "/api/v1/audit/events/export", AUDIT_READ, row(403, 200, 403, 403, 403, 403)),
    Case("GET", "/api/v1/audit/verify", AUDIT_VERIFY, row(403, 200, 403, 403, 403, 403)),
    Case("GET", "/api/v1/me", SELF_READ, row(200, 200, 200, 200, 200, 200)),
    Case("POST", "/api/v1/me/password", SELF_MANAGE, row(204, 204, 204, 204, 403, 403),
         body=lambda p, u: {"current_password": PASSWORD, "new_password": "a-new-password-4567"}),
    # Permitted to every person; admin and auditor already have a second factor, so starting
    # (and hence confirming) an enrolment is refused on its merits (422), not for permission.
    Case("POST", "/api/v1/me/mfa/totp", SELF_MANAGE, row(422, 422, 201, 201, 403, 403)),
    Case("POST", "/api/v1/me/mfa/totp/confirm", SELF_MANAGE, row(422, 422, 204, 204, 403, 403),
         body=lambda p, u: {"code": "000000"}),  # replaced by a valid code after an enrolment
    # Casework: the permission gate (see the module docstring).
    Case("GET", "/api/v1/panel-types", PANEL_READ, row(200, 200, 200, 200, 403, 403)),
    Case("GET", "/api/v1/panels", PANEL_READ, row(200, 200, 200, 200, 403, 403)),
    Case("POST", "/api/v1/panels", PANEL_WRITE, row(201, 403, 403, 403, 403, 403),
         body=_new_panel),
    Case("GET", "/api/v1/panels/{panel_id}", PANEL_READ, row(404, 404, 404, 404, 403, 403),
         target=UNKNOWN),
    Case("PATCH", "/api/v1/panels/{panel_id}", PANEL_WRITE, row(404, 403, 403, 403, 403, 403),
         target=UNKNOWN, body=lambda p, u: {"area": "Bromley"}),
    Case("GET", "/api/v1/panels/{panel_id}/members", PANEL_MEMBERS_READ,
         row(404, 404, 404, 404, 403, 403), target=UNKNOWN),
    Case("PATCH", "/api/v1/panels/{panel_id}/members", PANEL_WRITE,
         row(404, 403, 403, 403, 403, 403), target=UNKNOWN, body=lambda p, u: {}),
    Case("GET", "/api/v1/people", PERSON_SEARCH, row(403, 403, 200, 200, 403, 403),
         query={"name": "Jane Doe"}),
    Case("GET", "/api/v1/people/{person_id}", CASE_READ, row(403, 403, 404, 404, 403, 403),
         target=UNKNOWN),
    Case("POST", "/api/v1/referrals", REFERRAL_SUBMIT, row(422, 422, 422, 422, 403, 403),
         body=_referral),  # 422: the panel_id names no panel
    Case("GET", "/api/v1/referrals", REFERRAL_READ, row(200, 200, 200, 200, 403, 403)),
    Case("GET", "/api/v1/referrals/{referral_id}", REFERRAL_READ,
         row(404, 404, 404, 404, 403, 403), target=UNKNOWN),
    Case("PATCH", "/api/v1/referrals/{referral_id}", REFERRAL_SUBMIT,
         row(404, 404, 404, 404, 403, 403), target=UNKNOWN, body=lambda p, u: {"note": "More"}),
    Case("POST", "/api/v1/referrals/{referral_id}/decision", REFERRAL_TRIAGE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"decision": "reject", "reason": "Below threshold"}),
    Case("POST", "/api/v1/referrals/{referral_id}/screening", REFERRAL_READ,
         row(404, 404, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"outcome": "suitable"}),
    Case("GET", "/api/v1/cases", CASE_READ, row(403, 403, 200, 200, 403, 403)),
    Case("GET", "/api/v1/cases/{case_id}", CASE_READ, row(403, 403, 404, 404, 403, 403),
         target=UNKNOWN),
    Case("PATCH", "/api/v1/cases/{case_id}", CASE_WRITE, row(403, 403, 404, 404, 403, 403),
         target=UNKNOWN, body=lambda p, u: {"risk_level": "high"}),
    Case("GET", "/api/v1/cases/{case_id}/consents", CASE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/cases/{case_id}/consents", CASE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN, body=_consent),
    Case("GET", "/api/v1/cases/{case_id}/exclusions", CASE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/cases/{case_id}/exclusions", CASE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN, body=_exclusion),
    Case("DELETE", "/api/v1/cases/{case_id}/exclusions/{agency_id}", CASE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    # Conferences: the id that names nothing is the conference's (the panel's for a feed or a
    # new conference); listing and attendance ids are other unknown ids.
    Case("POST", "/api/v1/conferences", CONFERENCE_WRITE, row(403, 403, 404, 404, 403, 403),
         target=UNKNOWN, body=_conference),
    Case("GET", "/api/v1/conferences", CONFERENCE_READ, row(403, 403, 200, 200, 403, 403)),
    Case("GET", "/api/v1/conferences/{conference_id}", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("PATCH", "/api/v1/conferences/{conference_id}", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"location": "Council Chamber"}),
    Case("POST", "/api/v1/conferences/{conference_id}/finalise", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("GET", "/api/v1/conferences/{conference_id}/calendar.ics", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("GET", "/api/v1/panels/{panel_id}/calendar.ics", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/panels/{panel_id}/calendar-feed", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("GET", "/api/v1/conferences/{conference_id}/listings", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/conferences/{conference_id}/listings", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"case_id": str(uuid.uuid4())}),
    Case("PUT", "/api/v1/conferences/{conference_id}/listings/order", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"listing_ids": [str(uuid.uuid4())]}),
    Case("DELETE", "/api/v1/conferences/{conference_id}/listings/{listing_id}", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/conferences/{conference_id}/publish", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("GET", "/api/v1/conferences/{conference_id}/attendance", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/conferences/{conference_id}/attendance", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN, body=_attendee),
    Case("PATCH", "/api/v1/conferences/{conference_id}/attendance/{attendance_id}",
         CONFERENCE_WRITE, row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"confidentiality_acknowledged": True}),
    Case("GET", "/api/v1/conferences/{conference_id}/minutes", CONFERENCE_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("PUT", "/api/v1/conferences/{conference_id}/minutes/{listing_id}", CONFERENCE_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"decisions": "Safety plan refreshed"}),
    Case("POST", "/api/v1/conferences/{conference_id}/minutes/{listing_id}/amendments",
         CONFERENCE_WRITE, row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"field": "decisions", "text": "Corrected", "reason": "Typo"}),
    # Actions.
    Case("GET", "/api/v1/actions", ACTION_READ, row(403, 403, 200, 200, 403, 403)),
    Case("GET", "/api/v1/actions/{action_id}", ACTION_READ, row(403, 403, 404, 404, 403, 403),
         target=UNKNOWN),
    Case("PATCH", "/api/v1/actions/{action_id}", ACTION_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN,
         body=lambda p, u: {"note": "Visited; locks fitted"}),
    Case("GET", "/api/v1/cases/{case_id}/actions", ACTION_READ,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN),
    Case("POST", "/api/v1/cases/{case_id}/actions", ACTION_WRITE,
         row(403, 403, 404, 404, 403, 403), target=UNKNOWN, body=_action),
]  # fmt: skip


def _path(case: Case, p: Principals, addressed: uuid.UUID) -> str:
    """The route with its ids filled in; ``addressed`` is the id the answer depends on."""
    return case.route.format(
        agency_id=p.other.id,
        user_id=p.member.id if case.target == OWN else addressed,
        client_id=p.client.id,
        panel_id=addressed,
        referral_id=addressed,
        case_id=addressed,
        person_id=addressed,
        conference_id=addressed,
        action_id=addressed,
        listing_id=uuid.uuid4(),  # the conference is looked up first
        attendance_id=uuid.uuid4(),
    )


def _call(
    client: TestClient,
    case: Case,
    p: Principals,
    headers: dict[str, str],
    addressed: uuid.UUID,
    principal: str,
) -> Any:
    body = case.body(p, addressed) if case.body else None
    if case.route.endswith("/mfa/totp/confirm") and principal in (AGENCY_ADMIN, MEMBER):
        started = client.post("/api/v1/me/mfa/totp", headers=headers)
        assert started.status_code == 201, started.text
        body = {"code": pyotp.TOTP(started.json()["secret"]).now()}
    return client.request(
        case.method,
        _path(case, p, addressed),
        headers=headers,
        json=body,
        params=case.query,
    )


def _refusals(session: Session, request_id: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(
        AuditEvent.action == "access.refused", AuditEvent.request_id == request_id
    )
    return list(session.scalars(stmt))


def _assert_problem(response: Any, status: int) -> None:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()


@pytest.mark.parametrize("principal", [*PRINCIPALS, ANONYMOUS])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_role_matrix(
    client: TestClient,
    principals: Principals,
    session: Session,
    security: Security,
    case: Case,
    principal: str,
) -> None:
    if case.target == FOREIGN:
        addressed = make_user(session, security, principals.home).id
    else:
        addressed = uuid.uuid4()  # names nothing
    request_id = f"matrix-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": request_id}
    if principal == ANONYMOUS:
        expected = 401
    else:
        headers |= getattr(principals, principal).headers
        expected = case.expected[principal]

    response = _call(client, case, principals, headers, addressed, principal)

    assert response.status_code == expected, (
        f"{case.id} as {principal}: {response.status_code} {response.text}"
    )
    route = f"{case.method} {case.route}"
    if expected == 401:
        _assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    elif expected == 403:
        _assert_problem(response, 403)
        refusals = _refusals(session, request_id)
        assert len(refusals) == 1, f"expected one access.refused event for {route}"
        event = refusals[0]
        assert event.outcome == "denied"
        assert event.detail == {"route": route, "permission": case.permission, "status": 403}
    elif expected == 404:
        _assert_problem(response, 404)
        refusals = _refusals(session, request_id)
        assert [e.outcome for e in refusals] == ["not_found"]
        assert refusals[0].resource_id == str(addressed)
        assert refusals[0].actor_id == getattr(principals, principal).id
    elif expected == 422:
        _assert_problem(response, 422)
    else:
        # Permitted and done: nothing was refused for this request.
        assert _refusals(session, request_id) == []


def test_matrix_has_a_cell_for_every_principal() -> None:
    for case in CASES:
        assert set(case.expected) == set(PRINCIPALS), case.id


def _route_table(app: FastAPI) -> list[Any]:
    """Every route the app serves. FastAPI 0.16x keeps included routers as lazy branches in
    ``app.routes``; ``iter_route_contexts`` (what the OpenAPI generator walks) flattens them."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_route_contexts is None:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _api_routes(app: FastAPI) -> set[tuple[str, str]]:
    table = {
        (method, route.path)
        for route in _route_table(app)
        if (route.path or "").startswith("/api/v1")
        # A mount or websocket has no methods: "*" keeps it visible (and failing) here.
        for method in (getattr(route, "methods", None) or {"*"})
    }
    assert table, "found no /api/v1 routes at all: the route table walk is broken"
    return table


def test_every_api_route_is_in_the_matrix(app: FastAPI) -> None:
    in_matrix = {(c.method, c.route) for c in CASES}
    routes = _api_routes(app)
    missing = routes - PUBLIC_ROUTES - in_matrix
    assert not missing, f"routes without a row in the role matrix: {sorted(missing)}"
    stale = in_matrix - routes
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"
    assert routes >= PUBLIC_ROUTES


def test_the_route_walk_sees_a_newly_added_route(settings: Settings, db: Database) -> None:
    # A fresh app (the shared one must not grow routes): prove the check above would catch
    # a route added later, whether on the app itself or through an included router.
    app = create_app(settings, db)
    router = APIRouter(prefix="/api/v1/widgets")
    router.add_api_route("", lambda: {}, methods=["GET"])
    app.include_router(router)
    app.add_api_route("/api/v1/gadgets/{gadget_id}", lambda gadget_id: {}, methods=["DELETE"])
    unlisted = _api_routes(app) - PUBLIC_ROUTES - {(c.method, c.route) for c in CASES}
    assert unlisted == {("GET", "/api/v1/widgets"), ("DELETE", "/api/v1/gadgets/{gadget_id}")}


def test_every_protected_route_declares_the_oauth2_requirement(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "OAuth2" in spec["components"]["securitySchemes"]
    seen: set[tuple[str, str]] = set()
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            key = (method.upper(), path)
            seen.add(key)
            if key in PUBLIC_ROUTES:
                assert "security" not in operation, key
            else:
                assert {"OAuth2": []} in operation.get("security", []), key
                assert {"401", "403"} <= operation["responses"].keys(), key
    assert seen == _api_routes(client.app)  # type: ignore[arg-type]
