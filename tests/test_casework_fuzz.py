"""Schemathesis over the conference and action routes as the panel's coordinator, with the
path ids of a real conference, listing, attendance, case and action, so generated bodies and
queries reach the service code (not just a 404). No response may be a 5xx or break the
documented schema; invalid input must be refused.

The admin/auditor run in test_api_fuzz.py covers every route's validation; this one covers
what happens past the permission check.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from sqlalchemy.orm import Session

from app.security import Security
from tests.conferencing import attend, meeting_in_progress, new_case, ok
from tests.test_api_fuzz import CHECKS, FUZZ, OPERATIONS
from tests.test_referrals import world

CASEWORK = [
    (m, p)
    for m, p in OPERATIONS
    if p.startswith(("/api/v1/conferences", "/api/v1/actions"))
    or p.startswith("/api/v1/cases/{case_id}/actions")
    or p.endswith("/calendar.ics")
]


def test_the_casework_routes_are_all_here() -> None:
    assert ("PATCH", "/api/v1/actions/{action_id}") in CASEWORK
    assert ("PUT", "/api/v1/conferences/{conference_id}/minutes/{listing_id}") in CASEWORK
    assert len(CASEWORK) >= 18


@pytest.fixture
def ids_and_headers(
    client: TestClient, session: Session, security: Security
) -> tuple[dict[str, str], dict[str, str]]:
    w = world(session, security)
    case = new_case(client, w)
    conference, (listing_id,) = meeting_in_progress(client, w, [case["id"]])
    attendance = attend(client, w.coord, conference, w.police.id, name="DC Officer")
    action = ok(
        client.post(
            f"/api/v1/cases/{case['id']}/actions",
            json={
                "description": "Check markers",
                "owner_agency_id": str(w.police.id),
                "due_date": "2099-01-01",
            },
            headers=w.coord,
        ),
        201,
    )
    ids = {
        "conference_id": conference["id"],
        "listing_id": listing_id,
        "attendance_id": attendance["id"],
        "case_id": case["id"],
        "action_id": action["id"],
        "panel_id": str(w.panel.id),
    }
    return ids, w.coord


@pytest.mark.parametrize(("method", "path"), CASEWORK, ids=[f"{m} {p}" for m, p in CASEWORK])
def test_casework_operation_never_misbehaves(
    app: FastAPI,
    ids_and_headers: tuple[dict[str, str], dict[str, str]],
    method: str,
    path: str,
) -> None:
    ids, headers = ids_and_headers
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @FUZZ
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        params: dict[str, Any] = case.path_parameters or {}
        case.path_parameters = {name: ids.get(name, value) for name, value in params.items()}
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
