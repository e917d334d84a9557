"""Shared steps for the conference and action tests, all through the real API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.builders import dv_referral
from tests.test_referrals import Headers, World, decide, submit, victim

PROBLEM = "application/problem+json"


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    return body


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def new_case(client: TestClient, w: World, family: str = "Doe") -> dict[str, Any]:
    """A DV MARAC case opened from an accepted referral (as the coordinator reads it)."""
    who = victim("Jane", family, "1990-02-03")
    referral = submit(client, w.partner, dv_referral(w.panel.id, victim=who))
    case_id = ok(decide(client, w.coord, referral["id"], "accept"))["case_id"]
    return ok(client.get(f"/api/v1/cases/{case_id}", headers=w.coord))


def when(days: int = 7) -> str:
    return (datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)).isoformat()


def schedule(client: TestClient, w: World, days: int = 7, **extra: Any) -> dict[str, Any]:
    body = {
        "panel_id": str(w.panel.id),
        "starts_at": when(days),
        "duration_minutes": 120,
        "location": "Civic Offices, Bexleyheath",
        "chair_user_id": str(w.chair_user.id),
        **extra,
    }
    return ok(client.post("/api/v1/conferences", json=body, headers=w.coord), 201)


def conf_url(conference: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/conferences/{conference['id']}{tail}"


def list_case(
    client: TestClient, headers: Headers, conference: dict[str, Any], case_id: str
) -> dict[str, Any]:
    return ok(
        client.post(conf_url(conference, "/listings"), json={"case_id": case_id}, headers=headers),
        201,
    )


def set_status(
    client: TestClient, headers: Headers, conference: dict[str, Any], status: str, **extra: Any
) -> Any:
    return client.patch(conf_url(conference), json={"status": status, **extra}, headers=headers)


def attend(
    client: TestClient,
    headers: Headers,
    conference: dict[str, Any],
    agency_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    name: str | None = None,
    status: str = "present",
    role: str = "representative",
) -> dict[str, Any]:
    body: dict[str, Any] = {"agency_id": str(agency_id), "role": role, "status": status}
    if user_id is not None:
        body["user_id"] = str(user_id)
    if name is not None:
        body["attendee_name"] = name
    return ok(client.post(conf_url(conference, "/attendance"), json=body, headers=headers), 201)


def acknowledge(
    client: TestClient, headers: Headers, conference: dict[str, Any], attendance_id: str
) -> Any:
    return client.patch(
        conf_url(conference, f"/attendance/{attendance_id}"),
        json={"confidentiality_acknowledged": True},
        headers=headers,
    )


def minute(
    client: TestClient,
    headers: Headers,
    conference: dict[str, Any],
    listing_id: str,
    **fields: str,
) -> Any:
    body = fields or {
        "discussion_summary": "Police: two call-outs since referral. IDVA in contact.",
        "risks_identified": "Escalating threats; perpetrator released on bail.",
        "decisions": "Safety plan refreshed; target hardening requested.",
    }
    return client.put(conf_url(conference, f"/minutes/{listing_id}"), json=body, headers=headers)


def meeting_in_progress(
    client: TestClient, w: World, case_ids: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """A published conference with these cases listed, started, its one attendee present
    and acknowledged. Returns the conference and the listing ids, in agenda order."""
    conference = schedule(client, w)
    for case_id in case_ids:
        list_case(client, w.coord, conference, case_id)
    ok(client.post(conf_url(conference, "/publish"), headers=w.coord))
    ok(set_status(client, w.coord, conference, "in_progress"))
    present = attend(
        client, w.coord, conference, w.council.id, name="Coordinator", role="coordinator"
    )
    ok(acknowledge(client, w.coord, conference, present["id"]))
    agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.coord))
    return conference, [item["id"] for item in agenda["items"]]
