"""The reads written straight to JSON (``app.json_body``: the case read and the busiest lists)
say exactly what their declared models say: the same keys, and every value in the form
pydantic writes it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from app.json_body import JSONBody
from app.models.action import ActionSummary
from app.models.agenda import AgendaPublic
from app.models.case import CasePublic, CaseSummary
from app.pagination import Page
from app.rawsql import Raw
from app.security import Security
from tests.conferencing import conf_url, list_case, new_case, ok, schedule
from tests.test_actions import make_overdue, set_action, update
from tests.test_referrals import world


def as_declared(response: Any, model: Any) -> dict[str, Any]:
    """The body, after checking it is what pydantic writes for it as ``model``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    adapter = TypeAdapter(model)
    body: dict[str, Any] = json.loads(response.content)
    assert json.loads(adapter.dump_json(adapter.validate_json(response.content))) == body
    return body


def test_json_body_writes_values_as_pydantic_does() -> None:
    values = {
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        "at_fraction": datetime(2026, 11, 20, 9, 30, 0, 1500, tzinfo=UTC),
        "on": date(2026, 11, 20),
        "none": None,
    }
    written = JSONBody(values).body
    assert written == TypeAdapter(dict[str, Any]).dump_json(values)
    assert json.loads(written)["at"] == "2026-11-20T09:30:00Z"


def test_case_read_case_list_action_list_and_agenda_bodies_match_their_models(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    listed, suggested = new_case(client, w, "Able"), new_case(client, w, "Baker")
    late = set_action(client, w, listed["id"], w.police.id, 10)
    make_overdue(session, late["id"], 3)
    session.commit()
    done = set_action(client, w, suggested["id"], w.police.id, 20)
    assert ok(update(client, w.rep, done, status="done", note="Marker live"))["resolved_at"]
    set_action(client, w, suggested["id"], w.police.id, 30)
    conference = schedule(client, w)
    list_case(client, w.coord, conference, listed["id"])

    read = client.get(f"/api/v1/cases/{listed['id']}", headers=w.coord)
    case = as_declared(read, CasePublic)
    assert read.headers["ETag"] == f'"{case["version"]}"'
    assert case["id"] == listed["id"] and case["opened_at"].endswith("Z")
    assert {p["role"] for p in case["people"]} == {p["role"] for p in listed["people"]}
    assert case["subject_person_id"] in {p["person_id"] for p in case["people"]}
    cases = as_declared(client.get("/api/v1/cases?limit=1", headers=w.coord), Page[CaseSummary])
    assert [c["id"] for c in cases["items"]] == [listed["id"]] and cases["next_cursor"]
    everything = as_declared(client.get("/api/v1/actions", headers=w.rep), Page[ActionSummary])
    assert {a["id"]: (a["status"], a["is_overdue"]) for a in everything["items"]} == {
        late["id"]: ("open", True),
        done["id"]: ("done", False),
        **{a["id"]: ("open", False) for a in everything["items"][2:]},
    }
    assert len(everything["items"]) == 3
    overdue = as_declared(
        client.get("/api/v1/actions?overdue=true", headers=w.rep), Page[ActionSummary]
    )
    assert [a["id"] for a in overdue["items"]] == [late["id"]]
    agenda = client.get(conf_url(conference, "/listings"), headers=w.coord)
    body = as_declared(agenda, AgendaPublic)
    assert agenda.headers["ETag"] == f'"{body["version"]}"'
    (item,) = body["items"]
    assert item["case_id"] == listed["id"]
    assert [a["id"] for a in item["outstanding_actions"]] == [late["id"]]
    assert [s["case_id"] for s in body["suggestions"]] == [suggested["id"]]


def test_timestamps_read_back_are_written_as_pydantic_writes_them(session: Session) -> None:
    """The driver's timestamps, as the list reads write them: with and without a fraction."""
    raw = Raw(session)
    for moment in (
        datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 20, 9, 30, 5, 120, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, 0, 999999, tzinfo=UTC),
    ):
        stored = raw.timestamp(moment)
        assert JSONBody({"at": raw.to_json_timestamp(stored)}).body == TypeAdapter(
            dict[str, datetime]
        ).dump_json({"at": moment})


def test_sqlite_ids_are_written_canonically_and_remembered_within_a_bound(
    monkeypatch: Any, session: Session
) -> None:
    from app import rawsql

    raw = Raw(session)
    ids = [uuid.uuid4() for _ in range(5)]
    monkeypatch.setattr(rawsql.Remembered, "LIMIT", 3)
    monkeypatch.setattr(rawsql, "_CANONICAL", rawsql.Remembered(rawsql._canonical_id))
    for value in ids:
        assert raw.to_json_id(value.hex) == str(value) == raw.to_id_text(value.hex)
        assert raw.to_json_id(value) is value and raw.to_id_text(value) == str(value)
        assert len(rawsql._CANONICAL) <= 3
    assert raw.to_json_id(None) is None and raw.to_id_text(None) is None
    assert raw.to_json_id(str(ids[0])) == str(ids[0])  # already canonical: as it is
