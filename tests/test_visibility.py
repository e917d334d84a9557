"""Who sees what: the information-sharing rules of /work/shared/domain.md, through the real API.

One fixture world (``world``), built through the database (agencies, panels, users, roles,
API clients) and the API (referrals, screening, triage, an exclusion):

    agencies   council (local_authority), police, idva_service (IDVA), housing, health
    panels     DV MARAC      members: council, police, idva, housing (may refer), health
               Channel       members: council, police
               other MARAC   members: council              (a second DV MARAC)
    people     dv_coordinator, dv_chair (council), dv_representative (police),
               dv_observer (health), idva_representative (IDVA), referrer (housing, no
               panel role), channel_coordinator (council), channel_police (police
               practitioner, a representative), admin, auditor (council, TOTP enrolled)
    systems    police_client (police: cases:read + referrals:write),
               refwrite_client (housing: referrals:write only)
    referrals  dv_accepted   by the referrer, accepted into a DV case
               dv_untriaged  by refwrite_client, not yet triaged
               channel       by the Channel coordinator, screened by the police practitioner,
                             accepted into a Channel case
               other         by the other MARAC's coordinator, accepted there
               excluded      by the IDVA representative, accepted into a DV case from which
                             the coordinator then excludes the police
               unpublished   by the DV coordinator, accepted into a DV case that is listed only on
                             a conference whose agenda is not yet published
    meetings   a conference of each panel, its agenda published, listing the panel's cases
               (DV: dv_accepted and excluded); a second DV conference listing unpublished,
               its agenda not published; each with one attendee, and an action on each
               listed case (excluded: owned by the IDVA; channel: by the police; other and
               unpublished: by the council)

Need to know: a panel's coordinator and chair see all its cases; its other members (and
their agencies' systems) only those listed on a published agenda (or that their agency leads
or owns an action on, or they are keyworker for: none in this world).

Every expectation is written out by hand (who sees which case, which permission each route
needs, which principal holds it), deliberately not computed from app/permissions.py or
app/policies.py, so a change there shows up here as a failing cell to review.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session
from sqlmodel import col

from app.config import Settings
from app.models.agency import Agency, AgencyKind
from app.models.audit import (
    SUBJECT_EPOCH_EVENTS,
    AuditEvent,
    AuditSubject,
    AuditUnsealed,
    subject_epoch,
)
from app.models.panel import Panel
from app.permissions import Role, Scope
from app.security import Security
from app.services.audit_chain import chain_key, seal_pending
from tests.builders import (
    bearer,
    client_token,
    disable_append_only,
    dv_referral,
    give_role,
    make_agency,
    make_client,
    make_panel,
    make_user,
    user_token,
)

API = "/api/v1"

# ------------------------------------------------------------------------------------------
# Principals
# ------------------------------------------------------------------------------------------

DV_COORDINATOR = "dv_coordinator"
DV_CHAIR = "dv_chair"
DV_REPRESENTATIVE = "dv_representative"  # police
DV_OBSERVER = "dv_observer"  # health
IDVA_REPRESENTATIVE = "idva_representative"
REFERRER = "referrer"  # housing, no panel role
CHANNEL_COORDINATOR = "channel_coordinator"
CHANNEL_POLICE = "channel_police"  # the police Channel practitioner (a representative)
ADMIN = "admin"
AUDITOR = "auditor"
POLICE_CLIENT = "police_client"  # cases:read + referrals:write
REFWRITE_CLIENT = "refwrite_client"  # referrals:write only

PRINCIPALS = (
    DV_COORDINATOR,
    DV_CHAIR,
    DV_REPRESENTATIVE,
    DV_OBSERVER,
    IDVA_REPRESENTATIVE,
    REFERRER,
    CHANNEL_COORDINATOR,
    CHANNEL_POLICE,
    ADMIN,
    AUDITOR,
    POLICE_CLIENT,
    REFWRITE_CLIENT,
)

# ------------------------------------------------------------------------------------------
# Permissions (from app/permissions.py, written out) and the case-scoped route table
# ------------------------------------------------------------------------------------------

CASE_READ, CASE_WRITE = "case:read", "case:write"
REFERRAL_READ, REFERRAL_SUBMIT, REFERRAL_TRIAGE = (
    "referral:read",
    "referral:submit",
    "referral:triage",
)
CONFERENCE_READ, CONFERENCE_WRITE = "conference:read", "conference:write"
ACTION_READ, ACTION_WRITE = "action:read", "action:write"
CASE_SCOPED_PERMISSIONS = {
    CASE_READ,
    CASE_WRITE,
    REFERRAL_READ,
    REFERRAL_SUBMIT,
    REFERRAL_TRIAGE,
    CONFERENCE_READ,
    CONFERENCE_WRITE,
    ACTION_READ,
    ACTION_WRITE,
}

# What each principal holds of the permissions the case-scoped routes ask for.
# Every user without a partnership-wide role holds all of casework (USER_BASE + CASEWORK);
# admins and auditors only USER_BASE's referral:submit/read (NO_CASEWORK); API clients what
# their scopes grant (cases:read -> case:read; referrals:write -> referral:submit + read;
# neither client holds conferences:read or actions:read/write).
CASEWORK_USER = frozenset(CASE_SCOPED_PERMISSIONS)
HOLDS: dict[str, frozenset[str]] = {
    DV_COORDINATOR: CASEWORK_USER,
    DV_CHAIR: CASEWORK_USER,
    DV_REPRESENTATIVE: CASEWORK_USER,
    DV_OBSERVER: CASEWORK_USER,
    IDVA_REPRESENTATIVE: CASEWORK_USER,
    REFERRER: CASEWORK_USER,
    CHANNEL_COORDINATOR: CASEWORK_USER,
    CHANNEL_POLICE: CASEWORK_USER,
    ADMIN: frozenset({REFERRAL_READ, REFERRAL_SUBMIT}),
    AUDITOR: frozenset({REFERRAL_READ, REFERRAL_SUBMIT}),
    POLICE_CLIENT: frozenset({CASE_READ, REFERRAL_READ, REFERRAL_SUBMIT}),
    REFWRITE_CLIENT: frozenset({REFERRAL_READ, REFERRAL_SUBMIT}),
}


@dataclass(frozen=True)
class Target:
    """The ids one hidden (or non-existent) case is known by."""

    name: str
    case_id: uuid.UUID
    referral_id: uuid.UUID
    person_id: uuid.UUID  # the case's subject, on no other case or referral
    excluded_agency_id: uuid.UUID  # used for DELETE .../exclusions/{agency_id}
    conference_id: uuid.UUID  # a conference the case is listed on
    listing_id: uuid.UUID  # the case's listing on it
    attendance_id: uuid.UUID  # an attendee of that conference
    action_id: uuid.UUID  # an action on the case


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # exactly as in app.openapi()["paths"]
    permission: str  # from the route's require(...) in app/routers
    # Which id the 404 (and its audit event) names: case, referral or person; or conference
    # (a conference's agenda, attendance and minutes: the conference is looked up first) or
    # action. Who may see a conference or an action is not who may see its case: see
    # MAY_SEE_CONFERENCE and MAY_SEE_ACTION.
    resource: str
    body: Callable[[Target], dict[str, Any]] | None = None

    def url(self, t: Target) -> str:
        return self.path.format(
            case_id=t.case_id,
            referral_id=t.referral_id,
            person_id=t.person_id,
            agency_id=t.excluded_agency_id,
            conference_id=t.conference_id,
            listing_id=t.listing_id,
            attendance_id=t.attendance_id,
            action_id=t.action_id,
        )

    def resource_id(self, t: Target) -> uuid.UUID:
        return {
            "case": t.case_id,
            "referral": t.referral_id,
            "person": t.person_id,
            "conference": t.conference_id,
            "action": t.action_id,
        }[self.resource]


CONF = f"{API}/conferences/{{conference_id}}"


# Every route with a path id that names case-scoped data. Reads come first and writes last,
# so that, should a write wrongly succeed, the reads have already been judged.
CASE_SCOPED_ROUTES: list[Route] = [
    Route("GET", f"{API}/cases/{{case_id}}", CASE_READ, "case"),
    Route("GET", f"{API}/cases/{{case_id}}/consents", CASE_READ, "case"),
    Route("GET", f"{API}/cases/{{case_id}}/exclusions", CASE_WRITE, "case"),
    Route("GET", f"{API}/people/{{person_id}}", CASE_READ, "person"),
    Route("GET", f"{API}/referrals/{{referral_id}}", REFERRAL_READ, "referral"),
    Route("GET", f"{CONF}/listings", CONFERENCE_READ, "conference"),
    Route("GET", f"{CONF}/attendance", CONFERENCE_READ, "conference"),
    Route("GET", f"{CONF}/minutes", CONFERENCE_READ, "conference"),
    Route("GET", f"{API}/cases/{{case_id}}/actions", ACTION_READ, "case"),
    Route("GET", f"{API}/actions/{{action_id}}", ACTION_READ, "action"),
    Route(
        "PATCH", f"{API}/cases/{{case_id}}", CASE_WRITE, "case", body=lambda t: {"status": "open"}
    ),
    Route(
        "POST",
        f"{API}/cases/{{case_id}}/consents",
        CASE_WRITE,
        "case",
        body=lambda t: {"person_id": str(t.person_id), "purpose": "x", "status": "given"},
    ),
    Route(
        "POST",
        f"{API}/cases/{{case_id}}/exclusions",
        CASE_WRITE,
        "case",
        body=lambda t: {"agency_id": str(t.excluded_agency_id), "reason": "x"},
    ),
    Route(
        "PATCH",
        f"{API}/referrals/{{referral_id}}",
        REFERRAL_SUBMIT,
        "referral",
        body=lambda t: {"note": "x"},
    ),
    Route(
        "POST",
        f"{API}/referrals/{{referral_id}}/screening",
        REFERRAL_READ,
        "referral",
        body=lambda t: {"outcome": "suitable"},
    ),
    Route(
        "POST",
        f"{API}/referrals/{{referral_id}}/decision",
        REFERRAL_TRIAGE,
        "referral",
        body=lambda t: {"decision": "accept"},
    ),
    Route(
        "POST",
        f"{CONF}/listings",
        CONFERENCE_WRITE,
        "conference",
        body=lambda t: {"case_id": str(t.case_id)},
    ),
    Route(
        "PUT",
        f"{CONF}/listings/order",
        CONFERENCE_WRITE,
        "conference",
        body=lambda t: {"listing_ids": [str(t.listing_id)]},
    ),
    Route(
        "POST",
        f"{CONF}/attendance",
        CONFERENCE_WRITE,
        "conference",
        body=lambda t: {
            "agency_id": str(t.excluded_agency_id),
            "attendee_name": "x",
            "role": "representative",
            "status": "present",
        },
    ),
    Route(
        "PATCH",
        f"{CONF}/attendance/{{attendance_id}}",
        CONFERENCE_WRITE,
        "conference",
        body=lambda t: {"confidentiality_acknowledged": True},
    ),
    Route(
        "PUT",
        f"{CONF}/minutes/{{listing_id}}",
        CONFERENCE_WRITE,
        "conference",
        body=lambda t: {"discussion_summary": "x"},
    ),
    Route(
        "POST",
        f"{CONF}/minutes/{{listing_id}}/amendments",
        CONFERENCE_WRITE,
        "conference",
        body=lambda t: {"field": "decisions", "text": "x", "reason": "x"},
    ),
    Route(
        "POST",
        f"{API}/cases/{{case_id}}/actions",
        ACTION_WRITE,
        "case",
        body=lambda t: {
            "description": "x",
            "owner_agency_id": str(t.excluded_agency_id),
            "due_date": (date.today() + timedelta(days=30)).isoformat(),
        },
    ),
    Route(
        "PATCH",
        f"{API}/actions/{{action_id}}",
        ACTION_WRITE,
        "action",
        body=lambda t: {"note": "x"},
    ),
    Route("DELETE", f"{API}/cases/{{case_id}}/exclusions/{{agency_id}}", CASE_WRITE, "case"),
    Route("DELETE", f"{CONF}/listings/{{listing_id}}", CONFERENCE_WRITE, "conference"),
    Route("POST", f"{CONF}/publish", CONFERENCE_WRITE, "conference"),
]

# Routes with a path id that are NOT case-scoped: they name partnership administration (who
# the agencies, users, API clients and panels are) or a conference as a meeting (when and
# where, its chair and status, its calendar entry: no case or personal data), not case
# content, and have their own permission tests (tests/test_role_matrix.py,
# tests/test_agencies.py, tests/test_conferences.py, ...). Listed so that a new route with a
# path id must be classified here or above.
NOT_CASE_SCOPED_ROUTES: set[tuple[str, str]] = {
    ("GET", f"{API}/agencies/{{agency_id}}"),
    ("PATCH", f"{API}/agencies/{{agency_id}}"),
    ("GET", f"{API}/users/{{user_id}}"),
    ("PATCH", f"{API}/users/{{user_id}}"),
    ("GET", f"{API}/api-clients/{{client_id}}"),
    ("PATCH", f"{API}/api-clients/{{client_id}}"),
    ("POST", f"{API}/api-clients/{{client_id}}/rotate-secret"),
    ("GET", f"{API}/panels/{{panel_id}}"),
    ("PATCH", f"{API}/panels/{{panel_id}}"),
    ("GET", f"{API}/panels/{{panel_id}}/members"),
    ("PATCH", f"{API}/panels/{{panel_id}}/members"),
    ("GET", f"{API}/panels/{{panel_id}}/calendar.ics"),
    ("POST", f"{API}/panels/{{panel_id}}/calendar-feed"),
    ("GET", CONF),
    ("PATCH", CONF),
    ("POST", f"{CONF}/finalise"),
    ("GET", f"{CONF}/calendar.ics"),
}

CASE_SCOPED_PREFIXES = (f"{API}/cases", f"{API}/referrals", f"{API}/people")
# Words in a path template that name case-scoped data wherever the route lives.
# An agenda's listings, minutes and attendance and a case's actions are case content;
# publishing an agenda shares its listed cases with the panel's member agencies.
CASE_SCOPED_WORDS = (
    "case",
    "referral",
    "person",
    "people",
    "consent",
    "exclusion",
    "listing",
    "minutes",
    "attendance",
    "action",
    "publish",
)

# Which principals may see each hidden target (everyone else must get 404, or 403 without
# the route's permission). Nobody in the world is on the other MARAC; the police are excluded
# from "excluded" (its referral came from the IDVA representative); Channel is for its
# members only: its panel type is ``isolated`` (app/panels/base.py: "visible only to the
# panel's own members, never shared further"): the police API client reaches no Channel case,
# although its agency is a Channel member (so that the police practitioner can sit on it).
# "unpublished" is a DV case listed on no published agenda: only the panel's managers need it.
OTHER, EXCLUDED, CHANNEL, NONEXISTENT = "other_panel", "excluded", "channel", "nonexistent"
UNPUBLISHED = "unpublished"
DV_MEMBERS = {DV_COORDINATOR, DV_CHAIR, DV_REPRESENTATIVE, DV_OBSERVER, IDVA_REPRESENTATIVE}
MAY_SEE: dict[str, set[str]] = {
    OTHER: set(),
    EXCLUDED: {DV_COORDINATOR, DV_CHAIR, DV_OBSERVER, IDVA_REPRESENTATIVE},
    CHANNEL: {CHANNEL_COORDINATOR, CHANNEL_POLICE},
    UNPUBLISHED: {DV_COORDINATOR, DV_CHAIR},
    NONEXISTENT: set(),
}
# The conference each target's case is listed on: every user with a role on its panel sees
# it (its agenda shows them only the cases they may see); API clients here lack
# conferences:read.
MAY_SEE_CONFERENCE: dict[str, set[str]] = {
    OTHER: set(),
    EXCLUDED: DV_MEMBERS,
    CHANNEL: {CHANNEL_COORDINATOR, CHANNEL_POLICE},
    UNPUBLISHED: DV_MEMBERS,
    NONEXISTENT: set(),
}
# The action on each target's case: its owning agency's users on the panel, the panel's
# managers, and whoever may see the case (its action plan is part of it); never the
# excluded agency.
MAY_SEE_ACTION: dict[str, set[str]] = {
    OTHER: set(),
    EXCLUDED: {DV_COORDINATOR, DV_CHAIR, DV_OBSERVER, IDVA_REPRESENTATIVE},
    CHANNEL: {CHANNEL_COORDINATOR, CHANNEL_POLICE},
    UNPUBLISHED: {DV_COORDINATOR, DV_CHAIR},
    NONEXISTENT: set(),
}


def may_see(principal: str, target: str, route: Route) -> bool:
    table = {"conference": MAY_SEE_CONFERENCE, "action": MAY_SEE_ACTION}.get(
        route.resource, MAY_SEE
    )
    return principal in table[target]


def expected_refusal(principal: str, route: Route) -> int:
    """403 when the principal lacks the route's permission outright, else 404."""
    return 404 if route.permission in HOLDS[principal] else 403


# ------------------------------------------------------------------------------------------
# The fixture world
# ------------------------------------------------------------------------------------------


@dataclass
class Who:
    name: str
    id: uuid.UUID
    agency_id: uuid.UUID
    headers: dict[str, str]


@dataclass
class CaseFile:
    """A referral and, once accepted, its case; subject and other people by id."""

    referral_id: uuid.UUID
    case_id: uuid.UUID | None = None
    subject_id: uuid.UUID | None = None
    people: dict[str, uuid.UUID] = field(default_factory=dict)  # role -> person id


@dataclass(frozen=True)
class Meeting:
    """A conference, the ids of its listings by case, one attendee and actions by case."""

    conference_id: uuid.UUID
    listings: dict[uuid.UUID, uuid.UUID]  # case id -> listing id
    attendance_id: uuid.UUID
    actions: dict[uuid.UUID, uuid.UUID]  # case id -> action id


@dataclass
class World:
    agencies: dict[str, Agency]
    dv: Panel
    channel: Panel
    other: Panel
    who: dict[str, Who]
    dv_accepted: CaseFile
    dv_untriaged: CaseFile
    channel_case: CaseFile
    other_case: CaseFile
    excluded: CaseFile
    unpublished: CaseFile
    meetings: dict[str, Meeting]  # by target name

    def target(self, name: str) -> Target:
        police = self.agencies["police"].id
        if name == NONEXISTENT:
            ids = [uuid.uuid4() for _ in range(7)]
            return Target(name, ids[0], ids[1], ids[2], police, *ids[3:])
        file = {
            OTHER: self.other_case,
            EXCLUDED: self.excluded,
            CHANNEL: self.channel_case,
            UNPUBLISHED: self.unpublished,
        }[name]
        assert file.case_id and file.subject_id
        meeting = self.meetings[name]
        return Target(
            name,
            file.case_id,
            file.referral_id,
            file.subject_id,
            police,
            meeting.conference_id,
            meeting.listings[file.case_id],
            meeting.attendance_id,
            meeting.actions[file.case_id],
        )

    def h(self, name: str) -> dict[str, str]:
        return self.who[name].headers


def _person(given: str, family: str, born: str, postcode: str, **extra: Any) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": born,
        "postcode": postcode,
        **extra,
    }


def _dv_body(panel: Panel, victim: dict[str, Any], perpetrator: dict[str, Any]) -> dict[str, Any]:
    """A valid DV MARAC referral about people named nowhere else in the world."""
    body = dv_referral(panel.id, victim=victim)
    body["people"][1]["details"] = perpetrator  # type: ignore[index]
    return body


def _channel_body(panel: Panel, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "panel_id": str(panel.id),
        "referral_date": "2026-11-20",
        "referrer": {"name": "Channel Coordinator"},
        "people": [{"role": "subject", "details": subject}],
        "form": {
            "concern_type": "extreme_right_wing",
            "concerns": "Shares extreme right-wing material with classmates",
        },
        "consent": {
            "status": "not_sought",
            "lawful_basis": "ctsa_2015_s38",
            "reason": "Information gathering precedes seeking consent",
        },
    }


def _submit(client: TestClient, who: Who, body: dict[str, Any]) -> CaseFile:
    r = client.post(f"{API}/referrals", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return CaseFile(referral_id=uuid.UUID(r.json()["id"]))


def _accept(client: TestClient, manager: Who, file: CaseFile) -> CaseFile:
    r = client.post(
        f"{API}/referrals/{file.referral_id}/decision",
        json={"decision": "accept"},
        headers=manager.headers,
    )
    assert r.status_code == 200, r.text
    file.case_id = uuid.UUID(r.json()["case_id"])
    case = client.get(f"{API}/cases/{file.case_id}", headers=manager.headers)
    assert case.status_code == 200, case.text
    file.subject_id = uuid.UUID(case.json()["subject_person_id"])
    file.people = {p["role"]: uuid.UUID(p["person_id"]) for p in case.json()["people"]}
    return file


def _meeting(
    client: TestClient,
    manager: Who,
    panel: Panel,
    cases: dict[uuid.UUID, uuid.UUID],
    *,
    publish: bool,
) -> Meeting:
    """Through the API: a conference of the panel chaired by its manager, listing these
    cases (case id -> the agency owning an action on it), one attendee, the agenda
    published or not."""
    starts = date.today() + timedelta(days=7)
    r = client.post(
        f"{API}/conferences",
        json={
            "panel_id": str(panel.id),
            "starts_at": f"{starts.isoformat()}T10:00:00+00:00",
            "location": "Civic Offices, Bexleyheath",
            "chair_user_id": str(manager.id),
        },
        headers=manager.headers,
    )
    assert r.status_code == 201, r.text
    conference_id = uuid.UUID(r.json()["id"])
    url = f"{API}/conferences/{conference_id}"
    for case_id in cases:
        listed = client.post(
            f"{url}/listings", json={"case_id": str(case_id)}, headers=manager.headers
        )
        assert listed.status_code == 201, listed.text
    agenda = client.get(f"{url}/listings", headers=manager.headers)
    assert agenda.status_code == 200, agenda.text
    listings = {uuid.UUID(i["case_id"]): uuid.UUID(i["id"]) for i in agenda.json()["items"]}
    assert set(listings) == set(cases)
    attended = client.post(
        f"{url}/attendance",
        json={
            "agency_id": str(manager.agency_id),
            "attendee_name": "Panel coordinator",
            "role": "coordinator",
            "status": "present",
        },
        headers=manager.headers,
    )
    assert attended.status_code == 201, attended.text
    actions = {}
    for case_id, owner in cases.items():
        action = client.post(
            f"{API}/cases/{case_id}/actions",
            json={
                "description": "Target hardening at the victim's address",
                "owner_agency_id": str(owner),
                "due_date": (date.today() + timedelta(days=28)).isoformat(),
            },
            headers=manager.headers,
        )
        assert action.status_code == 201, action.text
        actions[case_id] = uuid.UUID(action.json()["id"])
    if publish:
        published = client.post(f"{url}/publish", headers=manager.headers)
        assert published.status_code == 200, published.text
    return Meeting(conference_id, listings, uuid.UUID(attended.json()["id"]), actions)


@pytest.fixture
def world(client: TestClient, session: Session, security: Security) -> World:
    tag = uuid.uuid4().hex[:6]
    agencies = {
        "council": make_agency(session, f"Council {tag}", AgencyKind.LOCAL_AUTHORITY),
        "police": make_agency(session, f"Police {tag}", AgencyKind.POLICE),
        "idva": make_agency(session, f"IDVA service {tag}", AgencyKind.IDVA_SERVICE),
        "housing": make_agency(session, f"Housing {tag}", AgencyKind.HOUSING),
        "health": make_agency(session, f"Health {tag}", AgencyKind.HEALTH),
    }
    a = agencies
    dv = make_panel(
        session,
        "dv_marac",
        [a["council"], a["police"], a["idva"], a["housing"], a["health"]],
        name=f"DV MARAC {tag}",
    )
    channel = make_panel(session, "channel", [a["council"], a["police"]], name=f"Channel {tag}")
    other = make_panel(session, "dv_marac", [a["council"]], name=f"Other MARAC {tag}")

    who: dict[str, Who] = {}

    def person(
        name: str,
        agency: str,
        panel: Panel | None = None,
        role: str | None = None,
        roles: list[Role] | None = None,
    ) -> Who:
        secret = pyotp.random_base32() if roles else None  # admin/auditor: full tokens
        user = make_user(session, security, a[agency], roles=roles, totp_secret=secret)
        if panel is not None and role is not None:
            give_role(session, panel, user.id, role)
        who[name] = Who(name, user.id, a[agency].id, bearer(user_token(security, user)))
        return who[name]

    def system(name: str, agency: str, scopes: list[Scope]) -> Who:
        api_client = make_client(session, security, a[agency], scopes)
        who[name] = Who(
            name, api_client.id, a[agency].id, bearer(client_token(security, api_client))
        )
        return who[name]

    person(DV_COORDINATOR, "council", dv, "coordinator")
    person(DV_CHAIR, "council", dv, "chair")
    person(DV_REPRESENTATIVE, "police", dv, "representative")
    person(DV_OBSERVER, "health", dv, "observer")
    person(IDVA_REPRESENTATIVE, "idva", dv, "representative")
    person(REFERRER, "housing")
    person(CHANNEL_COORDINATOR, "council", channel, "coordinator")
    person(CHANNEL_POLICE, "police", channel, "representative")
    person(ADMIN, "council", roles=[Role.ADMIN])
    person(AUDITOR, "council", roles=[Role.AUDITOR])
    system(POLICE_CLIENT, "police", [Scope.CASES_READ, Scope.REFERRALS_WRITE])
    system(REFWRITE_CLIENT, "housing", [Scope.REFERRALS_WRITE])
    other_coordinator = person("other_coordinator", "council", other, "coordinator")

    dv_accepted = _accept(
        client,
        who[DV_COORDINATOR],
        _submit(
            client,
            who[REFERRER],
            _dv_body(
                dv,
                _person(
                    "Alice",
                    "Ashdown",
                    "1985-01-11",
                    "DA6 7AA",
                    safe_contact={"phone": "07700 900001", "safe_times": "mornings"},
                ),
                _person("Barnaby", "Blackwood", "1982-02-12", "DA6 7AB"),
            ),
        ),
    )
    dv_untriaged = _submit(
        client,
        who[REFWRITE_CLIENT],
        _dv_body(
            dv,
            _person("Cordelia", "Castleton", "1991-03-13", "DA7 4CC"),
            _person("Desmond", "Drummond", "1989-04-14", "DA7 4CD"),
        ),
    )
    channel_file = _submit(
        client,
        who[CHANNEL_COORDINATOR],
        _channel_body(
            channel,
            _person("Ezekiel", "Eastwood", "2003-05-15", "DA8 1EE"),
        ),
    )
    screened = client.post(
        f"{API}/referrals/{channel_file.referral_id}/screening",
        json={"outcome": "suitable"},
        headers=who[CHANNEL_POLICE].headers,
    )
    assert screened.status_code == 200, screened.text
    assert screened.json()["status"] == "screened"
    channel_case = _accept(client, who[CHANNEL_COORDINATOR], channel_file)
    other_case = _accept(
        client,
        other_coordinator,
        _submit(
            client,
            other_coordinator,
            _dv_body(
                other,
                _person("Felicity", "Fairbairn", "1979-06-16", "DA14 6FF"),
                _person("Gideon", "Greystoke", "1977-07-17", "DA14 6FG"),
            ),
        ),
    )
    excluded = _accept(
        client,
        who[DV_COORDINATOR],
        _submit(
            client,
            who[IDVA_REPRESENTATIVE],
            _dv_body(
                dv,
                _person(
                    "Harriet",
                    "Holloway",
                    "1993-08-18",
                    "DA15 8HH",
                    safe_contact={"phone": "07700 900002"},
                ),
                _person("Ignatius", "Ironside", "1990-09-19", "DA15 8HI"),
            ),
        ),
    )
    exclusion = client.post(
        f"{API}/cases/{excluded.case_id}/exclusions",
        json={"agency_id": str(a["police"].id), "reason": "The perpetrator is a police officer"},
        headers=who[DV_COORDINATOR].headers,
    )
    assert exclusion.status_code == 201, exclusion.text
    unpublished = _accept(
        client,
        who[DV_COORDINATOR],
        _submit(
            client,
            who[DV_COORDINATOR],
            _dv_body(
                dv,
                _person("Juniper", "Jessop", "1987-10-21", "DA5 1JJ"),
                _person("Kenneth", "Kingsley", "1984-11-22", "DA5 1JK"),
            ),
        ),
    )

    assert dv_accepted.case_id and excluded.case_id and unpublished.case_id
    assert channel_case.case_id and other_case.case_id
    dv_meeting = _meeting(
        client,
        who[DV_COORDINATOR],
        dv,
        {dv_accepted.case_id: a["council"].id, excluded.case_id: a["idva"].id},
        publish=True,
    )
    meetings = {
        EXCLUDED: dv_meeting,
        UNPUBLISHED: _meeting(
            client,
            who[DV_COORDINATOR],
            dv,
            {unpublished.case_id: a["council"].id},
            publish=False,
        ),
        CHANNEL: _meeting(
            client,
            who[CHANNEL_COORDINATOR],
            channel,
            {channel_case.case_id: a["police"].id},
            publish=True,
        ),
        OTHER: _meeting(
            client, other_coordinator, other, {other_case.case_id: a["council"].id}, publish=True
        ),
    }

    return World(
        agencies,
        dv,
        channel,
        other,
        who,
        dv_accepted,
        dv_untriaged,
        channel_case,
        other_case,
        excluded,
        unpublished,
        meetings,
    )


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _ids(response: Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def _last_event(session: Session) -> AuditEvent:
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()  # type: ignore[union-attr]
    assert event is not None
    return event


def _events(session: Session, action: str, **where: Any) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)  # type: ignore[arg-type]
    for column, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, column) == value)
    return list(session.scalars(stmt.order_by(AuditEvent.id)))  # type: ignore[arg-type]


def _s(value: uuid.UUID | None) -> str:
    return str(value)


# ------------------------------------------------------------------------------------------
# The route table
# ------------------------------------------------------------------------------------------


def _path_id_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (METHOD, path) of the app whose path has a parameter, from its OpenAPI document
    (FastAPI 0.16x nests included routers, so ``app.routes`` is not flat)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "{" in path
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_route_table_covers_every_route_with_a_path_id(app: FastAPI) -> None:
    routes = _path_id_routes(app)
    in_table = {(r.method, r.path) for r in CASE_SCOPED_ROUTES}
    assert len(in_table) == len(CASE_SCOPED_ROUTES), "a route is listed twice"

    # Every route under the case-scoped prefixes, or whose path names case-scoped data, is in
    # the table: add a row to CASE_SCOPED_ROUTES for any new one.
    case_scoped = {
        (m, p)
        for m, p in routes
        if p.startswith(CASE_SCOPED_PREFIXES)
        or any(word in p.lower() for word in CASE_SCOPED_WORDS)
    }
    assert case_scoped == in_table, (
        f"not covered: {sorted(case_scoped - in_table)}; stale: {sorted(in_table - case_scoped)}"
    )
    # And every route with a path id is classified one way or the other.
    unclassified = routes - in_table - NOT_CASE_SCOPED_ROUTES
    assert not unclassified, f"classify these routes with a path id: {sorted(unclassified)}"
    assert routes >= NOT_CASE_SCOPED_ROUTES, sorted(NOT_CASE_SCOPED_ROUTES - routes)


def test_route_table_names_the_permission_each_route_requires(
    world: World, client: TestClient, session: Session, security: Security
) -> None:
    """The permission column is what the route's require(...) asks for: a client holding no
    permission at all is refused on every row with a 403 that names it."""
    bare = make_client(session, security, world.agencies["police"], [])
    headers = bearer(client_token(security, bare))
    target = world.target(NONEXISTENT)
    got, want = {}, {}
    for route in CASE_SCOPED_ROUTES:
        body = route.body(target) if route.body else None
        r = client.request(route.method, route.url(target), json=body, headers=headers)
        key = f"{route.method} {route.path}"
        got[key] = (r.status_code, r.json()["detail"])
        want[key] = (403, f"This needs the '{route.permission}' permission, which you do not hold")
    assert got == want


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_hidden_ids_answer_404_or_403_on_every_case_scoped_route(
    principal: str, world: World, client: TestClient, session: Session
) -> None:
    """For each principal, each case-scoped route and each id the principal may not see
    (another panel's, the excluded case's, Channel's, one that names nothing): 404, or 403
    when the principal lacks the route's permission outright; and an audit event for each."""
    who = world.who[principal]
    mismatches: list[str] = []
    calls = 0
    for target_name in MAY_SEE:
        target = world.target(target_name)
        for route in CASE_SCOPED_ROUTES:
            if may_see(principal, target_name, route):
                continue
            body = route.body(target) if route.body else None
            request_id = f"vis-{uuid.uuid4().hex}"
            headers = {**who.headers, "X-Request-ID": request_id}
            r = client.request(route.method, route.url(target), json=body, headers=headers)
            calls += 1
            want = expected_refusal(principal, route)
            cell = f"{principal} {route.method} {route.path} [{target_name}]"
            if r.status_code != want:
                mismatches.append(f"{cell}: {r.status_code} (want {want}) {r.text[:160]}")
                continue
            refusals = _events(session, "access.refused", request_id=request_id)
            if len(refusals) != 1:
                mismatches.append(f"{cell}: {len(refusals)} access.refused events, want 1")
                continue
            event = refusals[0]
            seen: tuple[object, ...]
            wanted: tuple[object, ...]
            if want == 404:
                seen = (
                    r.json()["detail"],
                    event.outcome,
                    event.actor_id,
                    event.resource_type,
                    event.resource_id,
                )
                wanted = (
                    f"No {route.resource} with that id is visible to you",
                    "not_found",
                    who.id,
                    route.resource,
                    str(route.resource_id(target)),
                )
            else:
                # Who and which case a 403's event names: see
                # test_a_refusal_for_want_of_permission_names_who_and_which_case.
                seen = (
                    f"'{route.permission}'" in r.json()["detail"],
                    event.outcome,
                    (event.detail or {}).get("permission"),
                )
                wanted = (True, "denied", route.permission)
            if seen != wanted:
                mismatches.append(f"{cell}: (detail, audit event) {seen}, want {wanted}")
    assert calls > 0
    assert not mismatches, "\n".join(mismatches)


# ------------------------------------------------------------------------------------------
# Referrers
# ------------------------------------------------------------------------------------------


def test_referrer_sees_their_referrals_status_and_nothing_of_any_case(
    world: World, client: TestClient
) -> None:
    h = world.h(REFERRER)
    mine = client.get(f"{API}/referrals/{world.dv_accepted.referral_id}", headers=h)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["status"] == "accepted"
    assert body["case_id"] is None
    assert body["is_repeat"] is None
    assert body["repeat_of_case_id"] is None
    assert body["possible_duplicates"] is None
    assert {p["role"] for p in body["people"]} == {"victim", "perpetrator"}
    assert all(p["person_id"] is None for p in body["people"])

    assert _ids(client.get(f"{API}/referrals", headers=h)) == {str(world.dv_accepted.referral_id)}
    listed = client.get(f"{API}/referrals", headers=h).json()["items"][0]
    assert listed["case_id"] is None and all(p["person_id"] is None for p in listed["people"])

    expected: dict[str, int] = {
        f"{API}/cases/{world.dv_accepted.case_id}": 404,  # the case their referral opened
        f"{API}/cases/{world.dv_accepted.case_id}/consents": 404,
        f"{API}/people/{world.dv_accepted.subject_id}": 404,  # the victim they referred
        f"{API}/cases/{world.excluded.case_id}": 404,
        f"{API}/referrals/{world.dv_untriaged.referral_id}": 404,  # others' referrals
        f"{API}/referrals/{world.excluded.referral_id}": 404,
        f"{API}/referrals/{world.channel_case.referral_id}": 404,
        f"{API}/referrals/{world.other_case.referral_id}": 404,
    }
    got = {url: client.get(url, headers=h).status_code for url in expected}
    assert got == expected
    cases = client.get(f"{API}/cases", headers=h)
    assert cases.status_code == 200 and cases.json()["items"] == []
    search = client.get(f"{API}/people", params={"name": "Alice Ashdown"}, headers=h)
    assert search.status_code == 200 and search.json() == []


def test_api_client_referrer_sees_its_referral_status_only(
    world: World, client: TestClient
) -> None:
    h = world.h(REFWRITE_CLIENT)
    mine = client.get(f"{API}/referrals/{world.dv_untriaged.referral_id}", headers=h)
    assert mine.status_code == 200, mine.text
    assert mine.json()["status"] == "submitted"
    assert all(p["person_id"] is None for p in mine.json()["people"])
    assert _ids(client.get(f"{API}/referrals", headers=h)) == {str(world.dv_untriaged.referral_id)}
    expected = {
        f"{API}/referrals/{world.dv_accepted.referral_id}": 404,
        f"{API}/cases/{world.dv_accepted.case_id}": 403,  # no cases:read scope at all
        f"{API}/cases": 403,
        f"{API}/people/{world.dv_accepted.subject_id}": 403,
    }
    assert {url: client.get(url, headers=h).status_code for url in expected} == expected


# ------------------------------------------------------------------------------------------
# Panel managers and members
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("manager", [DV_COORDINATOR, DV_CHAIR])
def test_coordinators_and_chairs_see_every_referral_and_case_of_their_panel(
    manager: str, world: World, client: TestClient
) -> None:
    h = world.h(manager)
    dv_referrals = {
        world.dv_accepted.referral_id,
        world.dv_untriaged.referral_id,
        world.excluded.referral_id,
        world.unpublished.referral_id,
    }
    # Published or not: they run the panel.
    dv_cases = {world.dv_accepted.case_id, world.excluded.case_id, world.unpublished.case_id}
    assert _ids(client.get(f"{API}/referrals", headers=h)) == {str(i) for i in dv_referrals}
    assert _ids(client.get(f"{API}/cases", headers=h)) == {str(i) for i in dv_cases}
    for referral_id in dv_referrals:
        r = client.get(f"{API}/referrals/{referral_id}", headers=h)
        assert r.status_code == 200, r.text
        assert all(p["person_id"] is not None for p in r.json()["people"])
    untriaged = client.get(f"{API}/referrals/{world.dv_untriaged.referral_id}", headers=h).json()
    assert untriaged["status"] == "submitted"
    accepted = client.get(f"{API}/referrals/{world.dv_accepted.referral_id}", headers=h).json()
    assert accepted["case_id"] == str(world.dv_accepted.case_id)
    for file in (world.dv_accepted, world.excluded, world.unpublished):
        assert client.get(f"{API}/cases/{file.case_id}", headers=h).status_code == 200
        assert client.get(f"{API}/cases/{file.case_id}/consents", headers=h).status_code == 200
        for person_id in file.people.values():
            assert client.get(f"{API}/people/{person_id}", headers=h).status_code == 200
    # And nothing of the other panels.
    for file in (world.channel_case, world.other_case):
        assert client.get(f"{API}/cases/{file.case_id}", headers=h).status_code == 404
        assert client.get(f"{API}/referrals/{file.referral_id}", headers=h).status_code == 404
        assert client.get(f"{API}/people/{file.subject_id}", headers=h).status_code == 404


@pytest.mark.parametrize("member", [DV_REPRESENTATIVE, DV_OBSERVER, IDVA_REPRESENTATIVE])
def test_representatives_and_observers_see_published_cases_but_not_untriaged_referrals(
    member: str, world: World, client: TestClient
) -> None:
    h = world.h(member)
    police = member == DV_REPRESENTATIVE
    # Both published; the IDVA representative submitted the excluded case's referral; the
    # police are out of it. The case on the unpublished agenda is not theirs to see yet.
    visible_cases = {world.dv_accepted.case_id} | (set() if police else {world.excluded.case_id})
    assert _ids(client.get(f"{API}/cases", headers=h)) == {str(i) for i in visible_cases}

    expected = {
        f"{API}/cases/{world.dv_accepted.case_id}": 200,
        f"{API}/cases/{world.dv_accepted.case_id}/consents": 200,
        f"{API}/referrals/{world.dv_accepted.referral_id}": 200,  # triaged, behind its case
        f"{API}/people/{world.dv_accepted.subject_id}": 200,
        f"{API}/referrals/{world.dv_untriaged.referral_id}": 404,  # not yet triaged
        f"{API}/cases/{world.excluded.case_id}": 404 if police else 200,
        f"{API}/cases/{world.channel_case.case_id}": 404,
        f"{API}/cases/{world.other_case.case_id}": 404,
        f"{API}/cases/{world.unpublished.case_id}": 404,  # listed, but not published
        f"{API}/cases/{world.unpublished.case_id}/consents": 404,
        f"{API}/referrals/{world.unpublished.referral_id}": 404,  # triaged, case not seen
        f"{API}/people/{world.unpublished.subject_id}": 404,
    }
    got = {url: client.get(url, headers=h).status_code for url in expected}
    assert got == expected
    listed = _ids(client.get(f"{API}/referrals", headers=h))
    assert str(world.dv_untriaged.referral_id) not in listed
    assert str(world.unpublished.referral_id) not in listed
    assert str(world.dv_accepted.referral_id) in listed
    # The unpublished agenda shows them nothing yet; the published one its cases they may see.
    unpublished = world.meetings[UNPUBLISHED].conference_id
    agenda = client.get(f"{API}/conferences/{unpublished}/listings", headers=h)
    assert agenda.status_code == 200 and agenda.json()["items"] == [], agenda.text
    published = world.meetings[EXCLUDED].conference_id
    agenda = client.get(f"{API}/conferences/{published}/listings", headers=h)
    assert {i["case_id"] for i in agenda.json()["items"]} == {str(i) for i in visible_cases}
    # Unpublished people are not theirs to find either.
    found = client.get(f"{API}/people", params={"name": "Juniper Jessop"}, headers=h)
    assert found.status_code == 200 and found.json() == [], found.text
    # Untriaged referrals' people are not theirs to find either.
    untriaged_victim = client.get(f"{API}/people", params={"name": "Cordelia Castleton"}, headers=h)
    assert untriaged_victim.status_code == 200 and untriaged_victim.json() == []


def test_victims_safe_contact_only_for_those_who_need_it(world: World, client: TestClient) -> None:
    url = f"{API}/people/{world.dv_accepted.subject_id}"
    safe = {
        name: client.get(url, headers=world.h(name)).json()["safe_contact"]
        for name in (
            DV_COORDINATOR,
            DV_CHAIR,
            IDVA_REPRESENTATIVE,
            DV_REPRESENTATIVE,
            DV_OBSERVER,
            POLICE_CLIENT,
        )
    }
    assert safe == {
        DV_COORDINATOR: {
            "phone": "07700 900001",
            "email": None,
            "safe_times": "mornings",
            "notes": None,
        },
        DV_CHAIR: {"phone": "07700 900001", "email": None, "safe_times": "mornings", "notes": None},
        IDVA_REPRESENTATIVE: {
            "phone": "07700 900001",
            "email": None,
            "safe_times": "mornings",
            "notes": None,
        },
        DV_REPRESENTATIVE: None,
        DV_OBSERVER: None,
        POLICE_CLIENT: None,
    }


# ------------------------------------------------------------------------------------------
# Exclusion
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("police", [DV_REPRESENTATIVE, POLICE_CLIENT])
def test_excluded_agency_sees_nothing_of_the_case(
    police: str, world: World, client: TestClient
) -> None:
    h = world.h(police)
    ex = world.excluded
    expected = {
        f"{API}/cases/{ex.case_id}": 404,
        f"{API}/cases/{ex.case_id}/consents": 404,
        f"{API}/referrals/{ex.referral_id}": 404,
        f"{API}/people/{ex.people['victim']}": 404,  # on that case only
        f"{API}/people/{ex.people['perpetrator']}": 404,
        # Control: the same principal still sees the panel's other case.
        f"{API}/cases/{world.dv_accepted.case_id}": 200,
        f"{API}/referrals/{world.dv_accepted.referral_id}": 200,
    }
    got = {url: client.get(url, headers=h).status_code for url in expected}
    assert got == expected
    assert str(ex.case_id) not in _ids(client.get(f"{API}/cases", headers=h))
    assert str(ex.referral_id) not in _ids(client.get(f"{API}/referrals", headers=h))
    by_panel = client.get(f"{API}/cases", params={"panel_id": str(world.dv.id)}, headers=h)
    assert _ids(by_panel) == {str(world.dv_accepted.case_id)}


def test_excluded_agency_search_does_not_find_the_cases_people(
    world: World, client: TestClient
) -> None:
    h = world.h(DV_REPRESENTATIVE)
    for name in ("Harriet Holloway", "Ignatius Ironside"):
        found = client.get(f"{API}/people", params={"name": name}, headers=h)
        assert found.status_code == 200 and found.json() == [], found.text
    # Control: a coordinator does find them.
    found = client.get(
        f"{API}/people", params={"name": "Harriet Holloway"}, headers=world.h(DV_COORDINATOR)
    )
    assert [c["person"]["id"] for c in found.json()] == [str(world.excluded.subject_id)]


def test_manager_from_an_excluded_agency_sees_nothing_of_the_case(
    world: World, client: TestClient, session: Session, security: Security
) -> None:
    """A panel's chair can come from the excluded agency (police often chair a MARAC): the
    exclusion binds them too, for the case, its referral and the people on it."""
    police_chair = make_user(session, security, world.agencies["police"])
    give_role(session, world.dv, police_chair.id, "chair")
    h = bearer(user_token(security, police_chair))
    ex = world.excluded
    expected = {
        f"{API}/cases/{ex.case_id}": 404,
        f"{API}/referrals/{ex.referral_id}": 404,
        f"{API}/people/{ex.people['victim']}": 404,
        f"{API}/people/{ex.people['perpetrator']}": 404,
        # Control: they run the panel, so they see its untriaged referral and its people.
        f"{API}/referrals/{world.dv_untriaged.referral_id}": 200,
        f"{API}/cases/{world.dv_accepted.case_id}": 200,
    }
    got = {url: client.get(url, headers=h).status_code for url in expected}
    assert got == expected
    found = client.get(f"{API}/people", params={"name": "Harriet Holloway"}, headers=h)
    assert found.status_code == 200 and found.json() == [], found.text


# ------------------------------------------------------------------------------------------
# Channel
# ------------------------------------------------------------------------------------------

# What each principal gets for the Channel case's case, consents, referral and subject.
#                         case consents referral person
CHANNEL_EXPECTED: dict[str, tuple[int, int, int, int]] = {
    DV_COORDINATOR: (404, 404, 404, 404),
    DV_CHAIR: (404, 404, 404, 404),
    DV_REPRESENTATIVE: (404, 404, 404, 404),  # police, but not on the Channel panel
    DV_OBSERVER: (404, 404, 404, 404),
    IDVA_REPRESENTATIVE: (404, 404, 404, 404),
    REFERRER: (404, 404, 404, 404),
    ADMIN: (403, 403, 404, 403),
    AUDITOR: (403, 403, 404, 403),
    POLICE_CLIENT: (404, 404, 404, 404),  # its agency sits on Channel, but Channel is isolated
    REFWRITE_CLIENT: (403, 403, 404, 403),
    CHANNEL_COORDINATOR: (200, 200, 200, 200),
    CHANNEL_POLICE: (200, 200, 200, 200),
}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_channel_cases_are_visible_only_to_the_channel_panel(
    principal: str, world: World, client: TestClient
) -> None:
    assert set(CHANNEL_EXPECTED) == set(PRINCIPALS)
    h = world.h(principal)
    ch = world.channel_case
    urls = (
        f"{API}/cases/{ch.case_id}",
        f"{API}/cases/{ch.case_id}/consents",
        f"{API}/referrals/{ch.referral_id}",
        f"{API}/people/{ch.subject_id}",
    )
    got = tuple(client.get(url, headers=h).status_code for url in urls)
    assert got == CHANNEL_EXPECTED[principal]
    sees = CHANNEL_EXPECTED[principal][0] == 200
    cases = client.get(f"{API}/cases", headers=h)
    if cases.status_code == 200:
        assert (str(ch.case_id) in _ids(cases)) is sees
    else:
        assert cases.status_code == 403 and not sees
    referrals = _ids(client.get(f"{API}/referrals", headers=h))
    assert (str(ch.referral_id) in referrals) is sees


# ------------------------------------------------------------------------------------------
# Admins and auditors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [ADMIN, AUDITOR])
def test_admins_and_auditors_see_no_case_content(
    principal: str, world: World, client: TestClient
) -> None:
    h = world.h(principal)
    case_id, person_id = world.dv_accepted.case_id, world.dv_accepted.subject_id
    expected: dict[tuple[str, str], int] = {
        ("GET", f"{API}/cases"): 403,
        ("GET", f"{API}/cases/{case_id}"): 403,
        ("GET", f"{API}/cases/{case_id}/consents"): 403,
        ("GET", f"{API}/people?name=Alice+Ashdown"): 403,
        ("GET", f"{API}/people/{person_id}"): 403,
        ("POST", f"{API}/referrals/{world.dv_untriaged.referral_id}/decision"): 403,
        ("GET", f"{API}/referrals/{world.dv_accepted.referral_id}"): 404,
        ("GET", f"{API}/referrals/{world.dv_untriaged.referral_id}"): 404,
    }
    got = {
        (m, url): client.request(
            m, url, headers=h, json={"decision": "accept"} if m == "POST" else None
        ).status_code
        for m, url in expected
    }
    assert got == expected
    listed = client.get(f"{API}/referrals", headers=h)
    assert listed.status_code == 200 and listed.json()["items"] == []


# ------------------------------------------------------------------------------------------
# Audit
# ------------------------------------------------------------------------------------------


def test_every_read_and_refusal_is_audited_with_the_case_and_person(
    world: World, client: TestClient, session: Session
) -> None:
    case, subject = world.dv_accepted.case_id, world.dv_accepted.subject_id
    coordinator = world.who[DV_COORDINATOR]

    assert client.get(f"{API}/cases/{case}", headers=coordinator.headers).status_code == 200
    read = _last_event(session)
    assert (read.action, read.outcome, read.actor_id, read.actor_agency_id) == (
        "case.read",
        "success",
        coordinator.id,
        coordinator.agency_id,
    )
    assert (read.case_id, read.person_id, read.resource_id) == (case, subject, str(case))

    r = client.get(f"{API}/referrals/{world.dv_accepted.referral_id}", headers=coordinator.headers)
    assert r.status_code == 200
    read = _last_event(session)
    assert (read.action, read.case_id, read.person_id) == ("referral.read", case, subject)

    assert client.get(f"{API}/people/{subject}", headers=coordinator.headers).status_code == 200
    read = _last_event(session)
    assert (read.action, read.person_id, read.resource_id) == ("person.read", subject, str(subject))

    listed = client.get(f"{API}/cases", headers=coordinator.headers)
    assert listed.status_code == 200
    listing = _last_event(session)
    assert listing.action == "case.list"
    assert {c for c, _ in (listing.detail or {})["subjects"]} == _ids(listed)

    rep = world.who[DV_REPRESENTATIVE]
    hidden = world.excluded
    assert client.get(f"{API}/cases/{hidden.case_id}", headers=rep.headers).status_code == 404
    refused = _last_event(session)
    assert (refused.action, refused.outcome, refused.actor_id) == (
        "access.refused",
        "not_found",
        rep.id,
    )
    assert (refused.resource_type, refused.resource_id) == ("case", str(hidden.case_id))
    assert (refused.detail or {})["route"] == "GET /api/v1/cases/{case_id}"

    assert client.get(f"{API}/people/{hidden.subject_id}", headers=rep.headers).status_code == 404
    refused = _last_event(session)
    assert (refused.action, refused.outcome) == ("access.refused", "not_found")
    assert (refused.resource_type, refused.resource_id) == ("person", str(hidden.subject_id))

    r = client.get(f"{API}/referrals/{hidden.referral_id}", headers=rep.headers)
    assert r.status_code == 404
    refused = _last_event(session)
    assert (refused.action, refused.resource_type, refused.resource_id) == (
        "access.refused",
        "referral",
        str(hidden.referral_id),
    )

    # An auditor can answer "who tried to see this case?" from the log.
    attempts = _events(session, "access.refused", resource_id=str(hidden.case_id))
    assert [e.actor_id for e in attempts] == [rep.id]


def test_a_list_read_is_found_by_case_and_by_person_and_its_index_is_verified(
    world: World, client: TestClient, session: Session, settings: Settings
) -> None:
    """A list read is one event naming every case it showed and each case's subject; the
    auditor's "who saw this case / this person" finds it, and verification notices when the
    index behind those filters no longer says what the sealed event says."""
    case, subject = world.dv_accepted.case_id, world.dv_accepted.subject_id
    coordinator, auditor = world.who[DV_COORDINATOR], world.who[AUDITOR]
    listed = client.get(f"{API}/cases", headers=coordinator.headers)
    assert str(case) in _ids(listed)
    listing = _last_event(session)
    shown = dict((listing.detail or {})["subjects"])
    assert set(shown) == _ids(listed) and shown[str(case)] == str(subject)

    def found(**params: str) -> list[int]:
        r = client.get(f"{API}/audit/events", params=params, headers=auditor.headers)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    def found_both_ways() -> None:
        assert listing.id in found(case_id=str(case), action="case.list")
        assert listing.id in found(person_id=str(subject), action="case.list")
        # A case of another panel, which the DV coordinator's list cannot have shown.
        assert str(world.other_case.case_id) not in shown
        assert listing.id not in found(case_id=str(world.other_case.case_id), action="case.list")

    # Waiting for the sealer, the event is found by its own detail...
    assert session.get(AuditUnsealed, listing.id) is not None
    found_both_ways()
    # ...and once sealed, through the index the sealer wrote.
    key = chain_key(settings.secret_key, settings.audit_key)
    while seal_pending(session, key):
        pass
    session.commit()
    assert session.get(AuditUnsealed, listing.id) is None
    indexed = session.scalars(
        select(AuditSubject.case_id).where(AuditSubject.event_id == listing.id)
    ).all()
    assert {str(i) for i in indexed} == set(shown)
    found_both_ways()
    assert client.get(f"{API}/audit/verify", headers=auditor.headers).json()["ok"] is True
    disable_append_only(session, "audit_subject")
    session.execute(
        delete(AuditSubject).where(
            AuditSubject.event_id == listing.id, AuditSubject.case_id == case
        )
    )
    session.commit()
    verdict = client.get(f"{API}/audit/verify", headers=auditor.headers).json()
    assert verdict["ok"] is False
    assert verdict["first_break"]["event_id"] == listing.id
    assert "index" in verdict["first_break"]["reason"]


def _skip_event_ids(session: Session, count: int) -> None:
    """Make the next event's id ``count`` past the last: on SQLite, which numbers a row one
    past the highest, with a queued (so sealed and verified) filler event; on PostgreSQL by
    moving the sequence on."""
    last = session.scalar(select(func.max(AuditEvent.id))) or 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('audit_event', 'id'), :n)"),
            {"n": last + count},
        )
        return
    session.add(AuditEvent(id=last + count, actor_type="system", action="x", outcome="success"))
    session.add(AuditUnsealed(event_id=last + count))
    session.commit()


def test_reads_in_different_epochs_of_the_subject_index_are_all_found(
    world: World, client: TestClient, session: Session, settings: Settings
) -> None:
    """The subject index is keyed by the event's epoch first, and "who saw this case / this
    person" looks in every epoch. A row filed under another epoch than its event's is not
    what the sealer wrote (and under no epoch the search counts, it is missed by those
    filters): verification reports it."""
    case, subject = world.dv_accepted.case_id, world.dv_accepted.subject_id
    auditor = world.who[AUDITOR]
    readers = [world.who[DV_COORDINATOR], world.who[DV_CHAIR]]
    listings = []
    for reader in readers:
        assert str(case) in _ids(client.get(f"{API}/cases", headers=reader.headers))
        listings.append(_last_event(session))
        _skip_event_ids(session, 3 * SUBJECT_EPOCH_EVENTS)
    key = chain_key(settings.secret_key, settings.audit_key)
    while seal_pending(session, key):
        pass
    session.commit()
    first, second = listings
    assert subject_epoch(second.id or 0) - subject_epoch(first.id or 0) >= 3

    def found(**params: str) -> set[int]:
        r = client.get(f"{API}/audit/events", params=params, headers=auditor.headers)
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()["items"]}

    both = {first.id, second.id}
    assert found(case_id=str(case), action="case.list") == both
    assert found(person_id=str(subject), action="case.list") == both
    assert found(case_id=str(case), person_id=str(subject), action="case.list") == both
    assert client.get(f"{API}/audit/verify", headers=auditor.headers).json()["ok"] is True

    disable_append_only(session, "audit_subject")
    session.execute(
        update(AuditSubject)
        .where(col(AuditSubject.event_id) == second.id, col(AuditSubject.case_id) == case)
        .values(epoch=-1)
    )
    session.commit()
    assert found(case_id=str(case), action="case.list") == {first.id}
    verdict = client.get(f"{API}/audit/verify", headers=auditor.headers).json()
    assert verdict["ok"] is False
    assert verdict["first_break"]["event_id"] == second.id
    assert "index" in verdict["first_break"]["reason"]


def test_a_refusal_for_want_of_permission_names_who_and_which_case(
    world: World, client: TestClient, session: Session
) -> None:
    """Every refusal is recorded with who was refused and the case id: an admin's attempt on
    a case is a 403 (no case:read at all), and the log must still say who tried to open which
    case (an auditor's "who tried to see this case?" must find it)."""
    admin = world.who[ADMIN]
    case = world.dv_accepted.case_id
    request_id = f"vis-{uuid.uuid4().hex}"
    r = client.get(f"{API}/cases/{case}", headers={**admin.headers, "X-Request-ID": request_id})
    assert r.status_code == 403
    [refused] = _events(session, "access.refused", request_id=request_id)
    assert (refused.outcome, (refused.detail or {}).get("permission")) == ("denied", CASE_READ)
    problems = []
    if (refused.actor_type, refused.actor_id, refused.actor_agency_id) != (
        "user",
        admin.id,
        admin.agency_id,
    ):
        problems.append(
            f"actor is {refused.actor_type} {refused.actor_id} {refused.actor_agency_id}, "
            f"want user {admin.id} {admin.agency_id}"
        )
    named = {refused.resource_id, _s(refused.case_id), *map(str, (refused.detail or {}).values())}
    if str(case) not in named:
        problems.append(
            f"case {case} is not named: resource_id={refused.resource_id} "
            f"case_id={refused.case_id} detail={refused.detail}"
        )
    assert not problems, "; ".join(problems)


# ------------------------------------------------------------------------------------------
# 404s do not reveal existence
# ------------------------------------------------------------------------------------------


def _problem(r: Response) -> dict[str, Any]:
    body = dict(r.json())
    body.pop("instance")  # the request's own path
    body.pop("request_id")  # per request
    return {**body, "content_type": r.headers["content-type"], "status_code": r.status_code}


@pytest.mark.parametrize(
    ("principal", "path", "hidden"),
    [
        (DV_REPRESENTATIVE, "cases/{}", "excluded_case"),
        (DV_OBSERVER, "cases/{}", "unpublished_case"),
        (IDVA_REPRESENTATIVE, "people/{}", "unpublished_person"),
        (DV_REPRESENTATIVE, "cases/{}/consents", "excluded_case"),
        (DV_REPRESENTATIVE, "referrals/{}", "untriaged_referral"),
        (DV_REPRESENTATIVE, "people/{}", "excluded_person"),
        (DV_COORDINATOR, "cases/{}", "channel_case"),
        (POLICE_CLIENT, "cases/{}", "other_case"),
        (REFERRER, "referrals/{}", "untriaged_referral"),
        (ADMIN, "referrals/{}", "untriaged_referral"),
        (ADMIN, "cases/{}", "other_case"),  # 403 either way, and the same 403
    ],
)
def test_not_found_does_not_differ_between_missing_and_hidden(
    principal: str, path: str, hidden: str, world: World, client: TestClient
) -> None:
    ids = {
        "excluded_case": world.excluded.case_id,
        "excluded_person": world.excluded.subject_id,
        "untriaged_referral": world.dv_untriaged.referral_id,
        "channel_case": world.channel_case.case_id,
        "other_case": world.other_case.case_id,
        "unpublished_case": world.unpublished.case_id,
        "unpublished_person": world.unpublished.subject_id,
    }
    h = world.h(principal)
    missing = client.get(f"{API}/{path.format(uuid.uuid4())}", headers=h)
    concealed = client.get(f"{API}/{path.format(ids[hidden])}", headers=h)
    assert missing.status_code in (403, 404)
    assert _problem(concealed) == _problem(missing)
    assert str(ids[hidden]) not in concealed.json()["detail"]


# ------------------------------------------------------------------------------------------
# Channel's police gateway
# ------------------------------------------------------------------------------------------


def test_police_practitioner_screens_channel_referrals(world: World, client: TestClient) -> None:
    """Channel referrals go to the police practitioner on the panel first (the "gateway"):
    they must be able to see the submitted referral they are to screen, and screen it."""
    fresh = _submit(
        client,
        world.who[CHANNEL_COORDINATOR],
        _channel_body(
            world.channel,
            _person("Jasper", "Jetstone", "2004-10-20", "DA16 3JJ"),
        ),
    )
    police = world.h(CHANNEL_POLICE)
    seen = client.get(f"{API}/referrals/{fresh.referral_id}", headers=police)
    assert seen.status_code == 200, seen.text
    screened = client.post(
        f"{API}/referrals/{fresh.referral_id}/screening",
        json={"outcome": "suitable"},
        headers=police,
    )
    assert screened.status_code == 200, screened.text
    assert screened.json()["status"] == "screened"
    # Still nobody outside the Channel panel sees it, police or not.
    for outsider in (DV_REPRESENTATIVE, DV_COORDINATOR, POLICE_CLIENT):
        r = client.get(f"{API}/referrals/{fresh.referral_id}", headers=world.h(outsider))
        assert r.status_code == 404, (outsider, r.text)
    # And the coordinator can now accept it.
    accepted = client.post(
        f"{API}/referrals/{fresh.referral_id}/decision",
        json={"decision": "accept"},
        headers=world.h(CHANNEL_COORDINATOR),
    )
    assert accepted.status_code == 200, accepted.text
