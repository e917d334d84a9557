"""/api/v1/agencies: create, validate, list with filters and cursors, read, update with If-Match."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.agency import Agency, AgencyKind
from app.models.audit import AuditEvent
from tests.builders import Principals, make_agency

AGENCIES = "/api/v1/agencies"


def problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def agency_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Agency)) or 0


def events(session: Session, action: str, resource_id: Any = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if resource_id is not None:
        stmt = stmt.where(AuditEvent.resource_id == str(resource_id))
    return list(session.scalars(stmt))


def cursor_of(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def walk(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, page by page, checking each page's shape on the way."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(AGENCIES, params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == params["limit"], "a page before the last one is full"
    raise AssertionError("pagination did not end")


# --- create ---------------------------------------------------------------------------------


def test_admin_creates_an_agency(
    client: TestClient, principals: Principals, session: Session
) -> None:
    body = {
        "name": "  Riverside Police  ",
        "kind": "police",
        "short_name": "RP",
        "contact_email": "marac@riverside.police.example",
    }
    r = client.post(AGENCIES, json=body, headers=principals.admin.headers)

    assert r.status_code == 201, r.text
    created = r.json()
    assert created["name"] == "Riverside Police"  # surrounding whitespace trimmed
    assert created["kind"] == "police"
    assert created["short_name"] == "RP"
    assert created["contact_email"] == "marac@riverside.police.example"
    assert created["is_active"] is True
    assert created["version"] == 1
    assert created["updated_at"] is None
    assert r.headers["location"] == f"{AGENCIES}/{created['id']}"
    assert r.headers["etag"] == '"1"'

    fetched = client.get(r.headers["location"], headers=principals.admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.headers["etag"] == '"1"'

    [event] = events(session, "agency.create", created["id"])
    assert event.actor_id == principals.admin.id
    assert event.outcome == "success"
    assert event.changes == {
        "name": [None, "Riverside Police"],
        "short_name": [None, "RP"],
        "kind": [None, "police"],
        "contact_email": [None, "marac@riverside.police.example"],
        "is_active": [None, True],
    }


@pytest.mark.parametrize("duplicate", ["Home Agency", "HOME AGENCY", "home agency", " Home agency"])
def test_a_duplicate_name_is_a_conflict_whatever_its_case(
    client: TestClient, principals: Principals, session: Session, duplicate: str
) -> None:
    before = agency_count(session)
    r = client.post(
        AGENCIES, json={"name": duplicate, "kind": "health"}, headers=principals.admin.headers
    )
    body = problem(r, 409)
    assert "already exists" in body["detail"]
    assert agency_count(session) == before


def test_unknown_fields_are_rejected_and_named(client: TestClient, principals: Principals) -> None:
    r = client.post(
        AGENCIES,
        json={"name": "Northgate Housing", "kind": "housing", "colour": "red", "rank": 1},
        headers=principals.admin.headers,
    )
    body = problem(r, 422)
    assert error_fields(body) == {"body.colour", "body.rank"}
    assert {e["type"] for e in body["errors"]} == {"extra_forbidden"}
    assert "body.colour" in body["detail"]


def test_an_unknown_kind_is_rejected(client: TestClient, principals: Principals) -> None:
    r = client.post(
        AGENCIES, json={"name": "Northgate Zoo", "kind": "zoo"}, headers=principals.admin.headers
    )
    body = problem(r, 422)
    assert error_fields(body) == {"body.kind"}


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("x" * 201, "body.name"),
        ("", "body.name"),
        ("   ", "body.name"),
        (None, "body.name"),
    ],
    ids=["201 chars", "empty", "blank", "null"],
)
def test_name_bounds(
    client: TestClient, principals: Principals, session: Session, name: str | None, field: str
) -> None:
    before = agency_count(session)
    r = client.post(AGENCIES, json={"name": name, "kind": "fire"}, headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {field}
    assert agency_count(session) == before


def test_a_name_of_exactly_200_characters_is_accepted(
    client: TestClient, principals: Principals
) -> None:
    r = client.post(
        AGENCIES, json={"name": "y" * 200, "kind": "fire"}, headers=principals.admin.headers
    )
    assert r.status_code == 201, r.text
    assert len(r.json()["name"]) == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ok", "kind": "fire", "short_name": "s" * 31}, "body.short_name"),
        ({"name": "Ok", "kind": "fire", "contact_email": "not-an-email"}, "body.contact_email"),
        ({"kind": "fire"}, "body.name"),
        ({"name": "Ok"}, "body.kind"),
    ],
    ids=["short_name too long", "bad email", "name missing", "kind missing"],
)
def test_other_create_validation(
    client: TestClient, principals: Principals, body: dict[str, Any], field: str
) -> None:
    r = client.post(AGENCIES, json=body, headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {field}


# --- read and list --------------------------------------------------------------------------


def test_an_unknown_agency_is_a_404(client: TestClient, principals: Principals) -> None:
    missing = uuid.uuid4()
    r = client.get(f"{AGENCIES}/{missing}", headers=principals.admin.headers)
    body = problem(r, 404)
    assert body["instance"] == f"{AGENCIES}/{missing}"


def test_a_malformed_agency_id_is_a_422(client: TestClient, principals: Principals) -> None:
    r = client.get(f"{AGENCIES}/not-a-uuid", headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {"path.agency_id"}


@pytest.fixture
def directory(session: Session, principals: Principals) -> dict[str, Agency]:
    """A few more agencies, beside Home Agency (local authority) and Other Agency (police)."""
    made = {
        "probation": make_agency(session, "Northshire Probation", AgencyKind.PROBATION),
        "health": make_agency(session, "Northshire Health Trust", AgencyKind.HEALTH),
        "health2": make_agency(session, "St Mary's Hospital", AgencyKind.HEALTH),
        "idva": make_agency(session, "Safe 100% IDVA", AgencyKind.IDVA_SERVICE),
        "closed": make_agency(session, "Old Refuge", AgencyKind.VOLUNTARY),
    }
    made["closed"].is_active = False
    session.commit()
    return made


def names(items: list[dict[str, Any]]) -> list[str]:
    return [i["name"] for i in items]


def test_list_filters(
    client: TestClient, principals: Principals, directory: dict[str, Agency]
) -> None:
    h = principals.member.headers

    def listed(**params: Any) -> list[str]:
        r = client.get(AGENCIES, params=params, headers=h)
        assert r.status_code == 200, r.text
        return sorted(names(r.json()["items"]))

    assert listed(kind="health") == ["Northshire Health Trust", "St Mary's Hospital"]
    assert listed(kind="police") == ["Other Agency"]
    assert listed(is_active="false") == ["Old Refuge"]
    assert "Old Refuge" not in listed(is_active="true")
    assert listed(name="NORTHSHIRE") == ["Northshire Health Trust", "Northshire Probation"]
    assert listed(name="northshire", kind="probation") == ["Northshire Probation"]
    # The name filter is a plain substring: "%" and "_" are not wildcards.
    assert listed(name="%") == ["Safe 100% IDVA"]
    assert listed(name="_") == []
    assert listed(kind="health", is_active="false") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "zoo"}, "query.kind"),
        ({"is_active": "perhaps"}, "query.is_active"),
        ({"name": "n" * 201}, "query.name"),
        ({"name": "a\x00b"}, "query.name"),
    ],
    ids=["kind", "is_active", "name too long", "name with NUL"],
)
def test_invalid_filters_are_422(
    client: TestClient, principals: Principals, params: dict[str, str], field: str
) -> None:
    r = client.get(AGENCIES, params=params, headers=principals.member.headers)
    assert error_fields(problem(r, 422)) == {field}


def test_cursor_pagination_walks_every_agency_once(
    client: TestClient, principals: Principals, directory: dict[str, Agency]
) -> None:
    h = principals.client.headers
    everything = client.get(AGENCIES, params={"limit": 200}, headers=h).json()
    assert everything["next_cursor"] is None
    expected = [a["id"] for a in everything["items"]]
    assert len(expected) >= 7

    walked = walk(client, h, limit=2)

    ids = [a["id"] for a in walked]
    assert len(ids) == len(set(ids)), "no agency appears twice"
    assert ids == expected, "the pages, joined, are the whole list in the same order"
    assert names(walked) == sorted(names(walked)), "alphabetical by name"


def test_pagination_with_a_filter_keeps_filtering(
    client: TestClient, principals: Principals, directory: dict[str, Agency]
) -> None:
    walked = walk(client, principals.admin.headers, limit=1, kind="health")
    assert names(walked) == ["Northshire Health Trust", "St Mary's Hospital"]


def test_the_last_full_page_has_no_next_cursor(client: TestClient, principals: Principals) -> None:
    total = len(client.get(AGENCIES, headers=principals.admin.headers).json()["items"])
    r = client.get(AGENCIES, params={"limit": total}, headers=principals.admin.headers)
    assert r.json()["next_cursor"] is None
    r = client.get(AGENCIES, params={"limit": total - 1}, headers=principals.admin.headers)
    assert r.json()["next_cursor"] is not None


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
def test_out_of_range_limits_are_422(
    client: TestClient, principals: Principals, limit: str
) -> None:
    r = client.get(AGENCIES, params={"limit": limit}, headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {"query.limit"}


def test_limits_at_the_bounds_are_accepted(client: TestClient, principals: Principals) -> None:
    for limit in (1, 200):
        r = client.get(AGENCIES, params={"limit": limit}, headers=principals.admin.headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) <= limit


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "é",
        cursor_of(["Home Agency"]),  # too few keys
        cursor_of(["Home Agency", "not-a-uuid"]),
        cursor_of(["Home Agency", 12345]),  # a number where a uuid belongs
        cursor_of([7, str(uuid.uuid4())]),  # a number where a name belongs
        cursor_of({"name": "Home Agency"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_a_cursor_the_service_did_not_issue_is_422(
    client: TestClient, principals: Principals, cursor: str
) -> None:
    r = client.get(AGENCIES, params={"cursor": cursor}, headers=principals.admin.headers)
    body = problem(r, 422)
    assert error_fields(body) == {"query.cursor"}


def test_a_cursor_over_512_characters_is_422(client: TestClient, principals: Principals) -> None:
    r = client.get(AGENCIES, params={"cursor": "a" * 513}, headers=principals.admin.headers)
    assert error_fields(problem(r, 422)) == {"query.cursor"}


def test_listing_is_audited(client: TestClient, principals: Principals, session: Session) -> None:
    r = client.get(AGENCIES, params={"limit": 1}, headers=principals.member.headers)
    assert r.status_code == 200
    [event] = events(session, "agency.list")
    assert event.actor_id == principals.member.id
    assert event.detail == {"returned": 1}


# --- update ---------------------------------------------------------------------------------


def test_patch_with_the_current_etag_updates_and_moves_the_etag(
    client: TestClient, principals: Principals, session: Session
) -> None:
    url = f"{AGENCIES}/{principals.other.id}"
    h = principals.admin.headers
    etag = client.get(url, headers=h).headers["etag"]
    assert etag == '"1"'

    r = client.patch(
        url,
        json={"name": "Other Constabulary", "kind": "probation", "contact_email": None},
        headers={**h, "If-Match": etag},
    )

    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    updated = r.json()
    assert updated["name"] == "Other Constabulary"
    assert updated["kind"] == "probation"
    assert updated["version"] == 2
    assert updated["updated_at"] is not None
    assert client.get(url, headers=h).headers["etag"] == '"2"'

    [event] = events(session, "agency.update", principals.other.id)
    assert event.actor_id == principals.admin.id
    # Only what changed, as [old, new]; contact_email was already null.
    assert event.changes == {
        "name": ["Other Agency", "Other Constabulary"],
        "kind": ["police", "probation"],
    }


def test_a_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, principals: Principals, session: Session
) -> None:
    url = f"{AGENCIES}/{principals.other.id}"
    h = principals.admin.headers
    first = client.patch(url, json={"short_name": "OA"}, headers={**h, "If-Match": '"1"'})
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'

    # A second coordinator, still holding version 1, tries to rename it.
    r = client.patch(url, json={"name": "Renamed"}, headers={**h, "If-Match": '"1"'})

    body = problem(r, 412)
    assert '"2"' in body["detail"]
    current = client.get(url, headers=h)
    assert current.json()["name"] == "Other Agency"
    assert current.json()["short_name"] == "OA"
    assert current.json()["version"] == 2
    assert len(events(session, "agency.update", principals.other.id)) == 1
    [refusal] = events(session, "access.refused", principals.other.id)
    assert refusal.outcome == "conflict"
    assert refusal.detail is not None and refusal.detail["status"] == 412


@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', "*"])
def test_if_match_forms_that_name_the_current_version(
    client: TestClient, principals: Principals, if_match: str
) -> None:
    r = client.patch(
        f"{AGENCIES}/{principals.other.id}",
        json={"short_name": "OA"},
        headers={**principals.admin.headers, "If-Match": if_match},
    )
    assert r.status_code == 200, r.text


def test_patch_without_if_match_is_allowed(client: TestClient, principals: Principals) -> None:
    r = client.patch(
        f"{AGENCIES}/{principals.other.id}",
        json={"short_name": "OA"},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200
    assert r.headers["etag"] == '"2"'


def test_a_patch_that_changes_nothing_keeps_the_version(
    client: TestClient, principals: Principals, session: Session
) -> None:
    r = client.patch(
        f"{AGENCIES}/{principals.other.id}",
        json={"name": "Other Agency", "kind": "police"},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert r.json()["updated_at"] is None
    [event] = events(session, "agency.update", principals.other.id)
    assert event.changes in (None, {})


@pytest.mark.parametrize("field", ["name", "kind", "is_active"])
def test_null_for_a_non_nullable_field_is_422(
    client: TestClient, principals: Principals, session: Session, field: str
) -> None:
    r = client.patch(
        f"{AGENCIES}/{principals.other.id}", json={field: None}, headers=principals.admin.headers
    )
    body = problem(r, 422)
    assert field in json.dumps(body["errors"])
    session.expire_all()
    assert session.get(Agency, principals.other.id).version == 1  # type: ignore[union-attr]


def test_nullable_fields_may_be_cleared(client: TestClient, principals: Principals) -> None:
    url = f"{AGENCIES}/{principals.other.id}"
    h = principals.admin.headers
    client.patch(url, json={"short_name": "OA", "contact_email": "a@b.example"}, headers=h)
    r = client.patch(url, json={"short_name": None, "contact_email": None}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["short_name"] is None
    assert r.json()["contact_email"] is None


@pytest.mark.parametrize(
    "body",
    [{"colour": "red"}, {"version": 9}, {"id": str(uuid.uuid4())}, {"name": "z" * 201}],
    ids=["unknown", "version", "id", "name too long"],
)
def test_patch_validation(client: TestClient, principals: Principals, body: dict[str, Any]) -> None:
    r = client.patch(
        f"{AGENCIES}/{principals.other.id}", json=body, headers=principals.admin.headers
    )
    assert error_fields(problem(r, 422)) == {f"body.{next(iter(body))}"}


def test_renaming_to_another_agencys_name_is_a_conflict(
    client: TestClient, principals: Principals
) -> None:
    url = f"{AGENCIES}/{principals.other.id}"
    r = client.patch(url, json={"name": "HOME agency"}, headers=principals.admin.headers)
    problem(r, 409)
    assert client.get(url, headers=principals.admin.headers).json()["name"] == "Other Agency"


def test_changing_only_the_case_of_its_own_name_is_allowed(
    client: TestClient, principals: Principals
) -> None:
    r = client.patch(
        f"{AGENCIES}/{principals.other.id}",
        json={"name": "OTHER AGENCY"},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "OTHER AGENCY"


def test_patching_an_unknown_agency_is_404(client: TestClient, principals: Principals) -> None:
    r = client.patch(
        f"{AGENCIES}/{uuid.uuid4()}", json={"short_name": "X"}, headers=principals.admin.headers
    )
    problem(r, 404)


def test_deactivating_an_agency_stops_its_tokens_at_once(
    client: TestClient, principals: Principals
) -> None:
    for p in (principals.agency_admin, principals.member, principals.client):
        assert client.get("/api/v1/me", headers=p.headers).status_code == 200

    r = client.patch(
        f"{AGENCIES}/{principals.other.id}",
        json={"is_active": False},
        headers=principals.admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False

    for p in (principals.agency_admin, principals.member, principals.client):
        problem(client.get("/api/v1/me", headers=p.headers), 401)
    # The directory still lists it, as inactive.
    listed = client.get(AGENCIES, params={"is_active": "false"}, headers=principals.admin.headers)
    assert [a["id"] for a in listed.json()["items"]] == [str(principals.other.id)]


def test_an_admin_cannot_deactivate_their_own_agency(
    client: TestClient, principals: Principals
) -> None:
    # It would end their own access (and every colleague's) at once, like deactivating
    # themselves, which is refused too.
    r = client.patch(
        f"{AGENCIES}/{principals.home.id}",
        json={"is_active": False},
        headers=principals.admin.headers,
    )
    problem(r, 409)
    assert client.get("/api/v1/me", headers=principals.admin.headers).status_code == 200


# --- Idempotency-Key ------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_creates_nothing_new(
    client: TestClient, principals: Principals, session: Session
) -> None:
    headers = {**principals.admin.headers, "Idempotency-Key": "create-riverside-1"}
    body = {"name": "Riverside Housing", "kind": "housing"}
    before = agency_count(session)

    first = client.post(AGENCIES, json=body, headers=headers)
    retry = client.post(AGENCIES, json=body, headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"] == '"1"'
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert agency_count(session) == before + 1
    assert len(events(session, "agency.create")) == 1


def test_the_same_idempotency_key_with_another_body_is_422(
    client: TestClient, principals: Principals, session: Session
) -> None:
    headers = {**principals.admin.headers, "Idempotency-Key": "create-riverside-2"}
    first = client.post(AGENCIES, json={"name": "Riverside A", "kind": "fire"}, headers=headers)
    assert first.status_code == 201
    before = agency_count(session)
    r = client.post(AGENCIES, json={"name": "Riverside B", "kind": "fire"}, headers=headers)
    problem(r, 422)
    assert agency_count(session) == before


def test_a_failed_request_does_not_use_up_its_idempotency_key(
    client: TestClient, principals: Principals
) -> None:
    headers = {**principals.admin.headers, "Idempotency-Key": "create-after-conflict"}
    problem(
        client.post(AGENCIES, json={"name": "Home Agency", "kind": "fire"}, headers=headers), 409
    )
    r = client.post(AGENCIES, json={"name": "Homeward Agency", "kind": "fire"}, headers=headers)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_idempotency_key_out_of_bounds_is_422(
    client: TestClient, principals: Principals, key: str
) -> None:
    r = client.post(
        AGENCIES,
        json={"name": "Bounded", "kind": "fire"},
        headers={**principals.admin.headers, "Idempotency-Key": key},
    )
    assert error_fields(problem(r, 422)) == {"header.Idempotency-Key"}
