"""Actions through the real API: set in a conference or between meetings, updated by the
owning agency with history, ETags against lost updates, overdue lists, the case close rule."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import today
from app.models.action import Action
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.case import Case
from app.permissions import Scope
from app.security import Security
from app.services import action_lists, agenda_reads
from tests.builders import bearer, client_token, make_client
from tests.conferencing import (
    conf_url,
    meeting_in_progress,
    new_case,
    ok,
    problem,
    schedule,
    set_status,
)
from tests.test_referrals import Headers, World, person_headers, world


def due(days: int) -> str:
    return (today() + timedelta(days=days)).isoformat()


def set_action(
    client: TestClient, w: World, case_id: str, owner: uuid.UUID, days: int = 14, **extra: Any
) -> dict[str, Any]:
    body = {
        "description": "Police to check address markers",
        "owner_agency_id": str(owner),
        "due_date": due(days),
        **extra,
    }
    return ok(client.post(f"/api/v1/cases/{case_id}/actions", json=body, headers=w.coord), 201)


def update(
    client: TestClient,
    headers: Headers,
    action: dict[str, Any],
    etag: str | None = None,
    **body: Any,
) -> Any:
    extra = {"If-Match": etag} if etag else {}
    return client.patch(f"/api/v1/actions/{action['id']}", json=body, headers={**headers, **extra})


def make_overdue(session: Session, action_id: str, days: int) -> None:
    """Actions cannot be set in the past through the API; age one as time would."""
    action = session.get(Action, uuid.UUID(action_id))
    assert action is not None
    action.due_date = today() - timedelta(days=days)
    session.flush()


def test_an_action_set_in_conference_is_carried_out_by_its_agency(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    conference, (listing_id,) = meeting_in_progress(client, w, [case["id"]])

    r = client.post(
        f"/api/v1/cases/{case['id']}/actions",
        json={
            "conference_id": conference["id"],
            "description": "Flag the address for a priority police response",
            "owner_agency_id": str(w.police.id),
            "due_date": due(7),
            "priority": "high",
        },
        headers={**w.coord, "Idempotency-Key": "act-1"},
    )
    action = ok(r, 201)
    assert r.headers["location"] == f"/api/v1/actions/{action['id']}"
    assert action["status"] == "open" and action["is_overdue"] is False
    assert action["case_reference"] == case["reference"]
    assert [h["note"] for h in action["history"]] == ["Action set"]
    replay = client.post(
        f"/api/v1/cases/{case['id']}/actions",
        json={
            "conference_id": conference["id"],
            "description": "Flag the address for a priority police response",
            "owner_agency_id": str(w.police.id),
            "due_date": due(7),
            "priority": "high",
        },
        headers={**w.coord, "Idempotency-Key": "act-1"},
    )
    assert replay.status_code == 201 and replay.json()["id"] == action["id"]
    assert replay.headers["idempotent-replayed"] == "true"

    # The police representative reports progress, then done; each update is history.
    noted = update(client, w.rep, action, '"1"', note="Marker requested from CAD")
    assert noted.headers["etag"] == '"2"'
    done = ok(update(client, w.rep, action, '"2"', status="done", note="Marker live"))
    assert done["status"] == "done" and done["resolved_at"]
    assert [(h["status_from"], h["status_to"], h["note"]) for h in done["history"]] == [
        (None, "open", "Action set"),
        ("open", None, "Marker requested from CAD"),
        ("open", "done", "Marker live"),
    ]
    # Once resolved the agency cannot change it; the coordinator may reopen it.
    problem(update(client, w.rep, action, note="More"), 409)
    reopened = ok(update(client, w.coord, action, status="open", note="Marker lapsed"))
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    not_done = ok(
        update(client, w.rep, action, status="not_done", not_done_reason="overtaken_by_events")
    )
    assert not_done["not_done_reason"] == "overtaken_by_events"

    events = session.scalars(select(AuditEvent).where(AuditEvent.resource_id == action["id"])).all()
    assert {e.action for e in events} >= {"action.create", "action.update", "access.refused"}
    # Every event, the refused update included, can be found by the case.
    assert all(str(e.case_id) == case["id"] for e in events)
    assert all(
        str(e.person_id) == case["subject_person_id"]
        for e in events
        if e.action != "access.refused"
    )
    # The minutes of the case show the actions this conference set, as they stand.
    ok(
        client.put(
            conf_url(conference, f"/minutes/{listing_id}"),
            json={"decisions": "Address to be flagged"},
            headers=w.coord,
        )
    )
    (entry,) = ok(client.get(conf_url(conference, "/minutes"), headers=w.coord))["entries"]
    assert [(a["id"], a["status"]) for a in entry["actions_set"]] == [(action["id"], "not_done")]


def test_a_stale_etag_is_refused_and_no_update_is_lost(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    action = set_action(client, w, case["id"], w.police.id)
    etag = client.get(f"/api/v1/actions/{action['id']}", headers=w.rep).headers["etag"]

    # Two people read version 1; the first to write wins, the second is told to re-read.
    ok(update(client, w.rep, action, etag, note="Visited the address"))
    stale = problem(update(client, w.coord, action, etag, due_date=due(30)), 412)
    assert "ETag" in stale["detail"]
    current = ok(client.get(f"/api/v1/actions/{action['id']}", headers=w.coord))
    assert current["due_date"] == action["due_date"] and current["version"] == 2
    # Without If-Match, updates apply one after the other and every note is kept.
    for n in range(3):
        ok(update(client, w.rep, action, note=f"Update {n}"))
    notes = [
        h["note"]
        for h in ok(client.get(f"/api/v1/actions/{action['id']}", headers=w.rep))["history"]
    ]
    assert notes == ["Action set", "Visited the address", "Update 0", "Update 1", "Update 2"]


def test_who_may_update_an_action(client: TestClient, session: Session, security: Security) -> None:
    w = world(session, security)
    case = new_case(client, w)
    action = set_action(client, w, case["id"], w.police.id)
    _, police_observer = person_headers(session, security, w.police, w.panel, "observer")

    # The owning agency: notes and status, not its terms.
    problem(update(client, w.rep, action, due_date=due(60)), 403)
    problem(update(client, w.rep, action, owner_agency_id=str(w.idva.id)), 403)
    problem(update(client, police_observer, action, note="x"), 403)  # observers read only
    # Another agency that cannot see the case: no such action.
    problem(update(client, w.idva_rep, action, note="x"), 404)
    problem(client.get(f"/api/v1/actions/{action['id']}", headers=w.idva_rep), 404)
    # The owning agency's system with actions:write reports progress.
    system = make_client(session, security, w.police, [Scope.ACTIONS_WRITE])
    ok(update(client, bearer(client_token(security, system)), action, note="From the RMS"))
    reader = make_client(session, security, w.police, [Scope.ACTIONS_READ])
    problem(update(client, bearer(client_token(security, reader)), action, note="x"), 403)
    # The coordinator changes terms and reassigns (the named person is cleared with it).
    moved = ok(update(client, w.coord, action, owner_agency_id=str(w.idva.id), due_date=due(21)))
    assert moved["owner_agency_id"] == str(w.idva.id) and moved["owner_user_id"] is None
    assert moved["history"][-1]["changes"]["owner_agency_id"] == [str(w.police.id), str(w.idva.id)]
    # Now the IDVA owns it and the police no longer see it.
    ok(update(client, w.idva_rep, action, note="Picked up"))
    problem(client.get(f"/api/v1/actions/{action['id']}", headers=w.rep), 404)


def test_overdue_actions_per_agency_and_per_panel(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    first, second = new_case(client, w, "First"), new_case(client, w, "Second")
    late_police = set_action(client, w, first["id"], w.police.id, 7)
    late_idva = set_action(client, w, second["id"], w.idva.id, 7)
    on_time = set_action(client, w, second["id"], w.police.id, 30)
    make_overdue(session, late_police["id"], 3)
    make_overdue(session, late_idva["id"], 10)

    def listed(headers: Headers, **params: str) -> list[str]:
        return [
            a["id"]
            for a in ok(client.get("/api/v1/actions", params=params, headers=headers))["items"]
        ]

    # The coordinator sees the whole panel, soonest due first.
    assert listed(w.coord, overdue="true") == [late_idva["id"], late_police["id"]]
    assert listed(w.coord, overdue="true", agency_id=str(w.police.id)) == [late_police["id"]]
    assert listed(w.coord, panel_id=str(w.panel.id)) == [
        late_idva["id"],
        late_police["id"],
        on_time["id"],
    ]
    assert listed(w.coord, overdue="false") == [on_time["id"]]
    # An agency sees its own.
    assert listed(w.rep) == [late_police["id"], on_time["id"]]
    assert listed(w.rep, overdue="true") == [late_police["id"]]
    assert listed(w.idva_rep, overdue="true") == [late_idva["id"]]
    system = make_client(session, security, w.police, [Scope.ACTIONS_READ])
    assert listed(bearer(client_token(security, system)), overdue="true") == [late_police["id"]]
    page = ok(client.get("/api/v1/actions", params={"overdue": "true"}, headers=w.coord))
    assert all(a["is_overdue"] for a in page["items"])
    # Paging walks every action once.
    one = ok(client.get("/api/v1/actions", params={"limit": 1}, headers=w.coord))
    two = ok(
        client.get(
            "/api/v1/actions", params={"limit": 1, "cursor": one["next_cursor"]}, headers=w.coord
        )
    )
    assert [one["items"][0]["id"], two["items"][0]["id"]] == [late_idva["id"], late_police["id"]]
    # The list read is audited once per case it showed, with the case's subject.
    subjects = {
        (str(e.case_id), str(e.person_id))
        for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "action.list"))
        if e.case_id is not None
    }
    assert (first["id"], first["subject_person_id"]) in subjects

    # A case with overdue actions is suggested for the next agenda, and its outstanding
    # actions appear there for review once it is listed.
    conference = ok(
        client.post(
            "/api/v1/conferences",
            json={
                "panel_id": str(w.panel.id),
                "starts_at": "2027-03-01T10:00:00+00:00",
                "location": "Civic Offices",
                "chair_user_id": str(w.chair_user.id),
            },
            headers=w.coord,
        ),
        201,
    )
    first_row = ok(client.get(conf_url(conference, "/listings"), headers=w.coord))
    reasons = {s["case_id"]: s for s in first_row["suggestions"]}
    assert reasons[first["id"]]["overdue_actions"] == 1
    assert "overdue_actions" in reasons[first["id"]]["reasons"]
    listed_agenda = ok(
        client.post(
            conf_url(conference, "/listings"), json={"case_id": second["id"]}, headers=w.coord
        ),
        201,
    )
    review = listed_agenda["items"][0]["outstanding_actions"]
    assert [a["id"] for a in review] == [late_idva["id"], on_time["id"]]
    assert [a["is_overdue"] for a in review] == [True, False]

    for params in ({"overdue": "maybe"}, {"status": "late"}, {"agency_id": "x"}, {"cursor": "zz"}):
        problem(client.get("/api/v1/actions", params=params, headers=w.coord), 422)


def test_a_case_closes_only_when_its_actions_are_resolved(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    url = f"/api/v1/cases/{case['id']}"
    first = set_action(client, w, case["id"], w.police.id)
    second = set_action(client, w, case["id"], w.idva.id)

    refused = problem(
        client.patch(
            url, json={"status": "closed", "close_reason": "Risk reduced"}, headers=w.coord
        ),
        409,
    )
    assert "2 action(s)" in refused["detail"]
    ok(update(client, w.rep, first, status="done"))
    # The chair may close it with the action still open: it is resolved with the reason.
    closed = ok(
        client.patch(
            url, json={"status": "closed", "close_reason": "Victim moved away"}, headers=w.chair
        )
    )
    assert closed["status"] == "closed"
    resolved = ok(client.get(f"/api/v1/actions/{second['id']}", headers=w.coord))
    assert resolved["status"] == "not_done" and resolved["not_done_reason"] == "other"
    assert resolved["not_done_detail"] == "Case closed by the chair: Victim moved away"
    assert ok(client.get(f"/api/v1/actions/{first['id']}", headers=w.coord))["status"] == "done"
    # A closed case takes no new actions and its actions no updates.
    problem(
        client.post(
            f"{url}/actions",
            json={"description": "x", "owner_agency_id": str(w.police.id), "due_date": due(3)},
            headers=w.coord,
        ),
        409,
    )
    problem(update(client, w.coord, first, note="late"), 409)

    # With every action resolved, the coordinator closes a case too.
    other = new_case(client, w, "Other")
    action = set_action(client, w, other["id"], w.police.id)
    ok(update(client, w.rep, action, status="not_done", not_done_reason="agency_did_not_act"))
    ok(
        client.patch(
            f"/api/v1/cases/{other['id']}",
            json={"status": "closed", "close_reason": "Risk reduced"},
            headers=w.coord,
        )
    )
    assert [
        a["id"] for a in ok(client.get(f"/api/v1/cases/{other['id']}/actions", headers=w.coord))
    ] == [action["id"]]


def test_action_input_is_validated_and_nothing_is_saved(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    other_case = new_case(client, w, "Elsewhere")
    conference, _ = meeting_in_progress(client, w, [other_case["id"]])
    ok(
        client.post(
            f"/api/v1/cases/{case['id']}/exclusions",
            json={"agency_id": str(w.idva.id), "reason": "Conflict of interest"},
            headers=w.coord,
        ),
        201,
    )
    url = f"/api/v1/cases/{case['id']}/actions"
    base = {"description": "Do it", "owner_agency_id": str(w.police.id), "due_date": due(7)}
    for bad in (
        {**base, "due_date": due(-1)},
        {**base, "due_date": "2300-01-01"},
        {**base, "owner_agency_id": str(uuid.uuid4())},
        {**base, "owner_agency_id": str(w.idva.id)},  # excluded from this case
        {**base, "owner_user_id": str(w.coordinator.id)},  # not of the owning agency
        {**base, "conference_id": conference["id"]},  # the case is not listed there
        {**base, "priority": "urgent"},
        {**base, "description": ""},
        {**base, "extra": 1},
    ):
        problem(client.post(url, json=bad, headers=w.coord), 422)
    problem(client.post(url, json=base, headers=w.rep), 404)  # not listed: not theirs to see
    problem(client.post(f"/api/v1/cases/{uuid.uuid4()}/actions", json=base, headers=w.coord), 404)
    assert ok(client.get(url, headers=w.coord)) == []

    action = set_action(client, w, case["id"], w.police.id)
    for bad_patch in (
        {},
        {"status": "not_done"},
        {"status": "not_done", "not_done_reason": "other"},
        {"status": "done", "not_done_reason": "other", "not_done_detail": "x"},
        {"not_done_detail": "x"},
        {"status": "finished"},
        {"note": None},
        {"due_date": None},
        {"surprise": 1},
    ):
        problem(update(client, w.coord, action, **bad_patch), 422)
    problem(update(client, w.coord, action, due_date="2300-01-01"), 422)
    problem(update(client, w.coord, action, owner_agency_id=str(w.idva.id)), 422)
    after = ok(client.get(f"/api/v1/actions/{action['id']}", headers=w.coord))
    assert after["version"] == 1 and len(after["history"]) == 1
    ok(set_status(client, w.coord, conference, "concluded"))


def test_correcting_why_an_action_was_not_done_is_kept_in_its_history(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    action = set_action(client, w, case["id"], w.police.id)
    ok(update(client, w.rep, action, status="not_done", not_done_reason="agency_did_not_act"))
    corrected = ok(
        update(
            client,
            w.coord,
            action,
            '"2"',
            status="not_done",
            not_done_reason="overtaken_by_events",
            note="Perpetrator recalled to prison",
        )
    )
    assert corrected["not_done_reason"] == "overtaken_by_events" and corrected["version"] == 3
    last = corrected["history"][-1]
    assert last["changes"]["not_done"] == [
        ["agency_did_not_act", None],
        ["overtaken_by_events", None],
    ]


def test_overdue_is_judged_on_the_day_of_each_request(
    client: TestClient, session: Session, security: Security, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agenda's and the action list's statements are prepared once and kept: today's
    date is bound on every request, never baked in on the day they were first built."""
    w = world(session, security)
    case = new_case(client, w)
    action = set_action(client, w, case["id"], w.police.id, 5)
    conference = schedule(client, w)

    def suggested() -> dict[str, Any]:
        agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.coord))
        return {s["case_id"]: s for s in agenda["suggestions"]}[case["id"]]

    def overdue_list() -> list[str]:
        page = ok(client.get("/api/v1/actions", params={"overdue": "true"}, headers=w.coord))
        return [a["id"] for a in page["items"]]

    assert suggested()["overdue_actions"] == 0
    assert overdue_list() == []
    later = today() + timedelta(days=6)
    monkeypatch.setattr(agenda_reads, "today", lambda: later)
    monkeypatch.setattr(action_lists, "today", lambda: later)
    assert suggested()["overdue_actions"] == 1
    assert suggested()["reasons"] == ["awaiting_listing", "overdue_actions"]
    assert overdue_list() == [action["id"]]


def test_a_case_heard_before_is_suggested_again_only_for_overdue_actions(
    client: TestClient, session: Session, security: Security, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suggestions' second query: open cases heard at an earlier conference come back
    only while they have overdue actions, with that as their only reason."""
    w = world(session, security)
    late, settled, waiting = (new_case(client, w, name) for name in ("Able", "Baker", "Cole"))
    set_action(client, w, late["id"], w.police.id, 5)
    set_action(client, w, settled["id"], w.police.id, 30)
    for heard in (late, settled):
        case = session.get(Case, uuid.UUID(heard["id"]))
        assert case is not None
        case.last_heard_at = utcnow() - timedelta(days=14)
    session.commit()
    conference = schedule(client, w)

    def suggested() -> dict[str, list[str]]:
        agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.coord))
        return {s["case_id"]: s["reasons"] for s in agenda["suggestions"]}

    assert suggested() == {waiting["id"]: ["awaiting_listing"]}
    later = today() + timedelta(days=6)
    monkeypatch.setattr(agenda_reads, "today", lambda: later)
    assert suggested() == {
        late["id"]: ["overdue_actions"],
        waiting["id"]: ["awaiting_listing"],
    }
