"""The audit log: every access recorded in its transaction, sealed into a verifiable chain."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlmodel import col

from app.config import Settings
from app.models.agency import Agency
from app.models.audit import (
    AuditEvent,
    AuditSeal,
    AuditSubject,
    AuditUnsealed,
    subject_epoch,
)
from app.services.audit_chain import (
    _UUID_TEXT,
    _subject_cases,
    chain_key,
    seal_next,
    seal_pending,
)
from app.services.audit_log import AuditFilter
from tests.builders import Principals, disable_append_only


def _key(settings: Settings) -> bytes:
    return chain_key(settings.secret_key, settings.audit_key)


def _seal(session: Session, settings: Settings) -> int:
    total = 0
    while sealed := seal_pending(session, _key(settings), batch=7):
        total += sealed
    session.commit()
    return total


def _events(session: Session, **where: object) -> list[AuditEvent]:
    session.expire_all()
    stmt = select(AuditEvent).order_by(AuditEvent.id)  # type: ignore[arg-type]
    for column, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, column) == value)
    return list(session.scalars(stmt))


def test_a_read_is_recorded_with_who_what_when_where_and_why(
    client: TestClient, session: Session, principals: Principals
) -> None:
    headers = {**principals.member.headers, "X-Request-ID": "req-123", "X-Purpose": "MARAC prep"}
    before = datetime.now(UTC) - timedelta(seconds=1)
    r = client.get(f"/api/v1/agencies/{principals.home.id}", headers=headers)
    assert r.status_code == 200
    (event,) = _events(session, action="agency.read")
    assert event.actor_type == "user"
    assert event.actor_id == principals.member.id
    assert event.actor_agency_id == principals.member.agency_id
    assert event.resource_type == "agency"
    assert event.resource_id == str(principals.home.id)
    assert event.outcome == "success"
    assert event.request_id == "req-123"
    assert event.purpose == "MARAC prep"
    assert event.source_ip
    assert event.occurred_at >= before


def test_a_refused_read_is_recorded(
    client: TestClient, session: Session, principals: Principals
) -> None:
    missing = uuid.uuid4()
    r = client.get(f"/api/v1/agencies/{missing}", headers=principals.member.headers)
    assert r.status_code == 404
    (event,) = _events(session, action="access.refused")
    assert event.outcome == "not_found"
    assert event.resource_id == str(missing)
    assert event.actor_id == principals.member.id
    assert event.detail is not None
    assert event.detail["route"] == "GET /api/v1/agencies/{agency_id}"


def test_a_failed_change_leaves_no_success_event_and_no_change(
    client: TestClient, session: Session, principals: Principals
) -> None:
    r = client.post(
        "/api/v1/agencies",
        json={"name": principals.home.name.upper(), "kind": "police"},
        headers=principals.admin.headers,
    )
    assert r.status_code == 409
    assert _events(session, action="agency.create") == []
    (refusal,) = _events(session, action="access.refused")
    assert refusal.outcome == "conflict"


def test_when_the_event_cannot_be_written_the_change_is_not_made(
    app: FastAPI, session: Session, principals: Principals
) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
        )
    else:
        session.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END"
            )
        )
    session.commit()
    r = client.patch(
        f"/api/v1/agencies/{principals.home.id}",
        json={"short_name": "CHANGED"},
        headers=principals.admin.headers,
    )
    assert r.status_code >= 500
    assert r.headers["content-type"].startswith("application/problem+json")
    session.expire_all()
    agency = session.get(Agency, principals.home.id)
    assert agency is not None
    assert agency.short_name is None
    assert agency.version == 1


def test_sealed_chain_verifies(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    for _ in range(5):
        client.get(f"/api/v1/agencies/{principals.home.id}", headers=principals.member.headers)
    sealed = _seal(session, settings)
    assert sealed >= 5
    assert session.scalar(select(AuditUnsealed.event_id)) is None  # type: ignore[call-overload]
    r = client.get("/api/v1/audit/verify", headers=principals.auditor.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    assert body["first_break"] is None
    assert body["sealed_events"] == sealed
    assert body["head_chain_index"] == sealed - 1
    assert len(body["head_hash"]) == 64


def test_sealing_continues_the_chain_across_batches(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    client.get("/api/v1/me", headers=principals.member.headers)
    first = _seal(session, settings)
    client.get("/api/v1/me", headers=principals.member.headers)
    second = _seal(session, settings)
    seals = list(session.scalars(select(AuditSeal).order_by(AuditSeal.chain_index)))  # type: ignore[arg-type]
    assert [s.chain_index for s in seals] == list(range(first + second))
    for earlier, later in itertools.pairwise(seals):
        assert later.prev_hash == earlier.hash


def test_the_sealer_and_the_verification_read_every_kind_of_content_alike(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    """The sealer reads events through the driver, the verification through SQLAlchemy: an
    event with every column filled (ids, text beyond ASCII, nested JSON, nulls) must verify."""
    full = AuditEvent(
        occurred_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),  # no microseconds: an edge
        actor_type="user",
        actor_id=uuid.uuid4(),
        actor_agency_id=uuid.uuid4(),
        action="case.update",
        outcome="success",
        resource_type="case",
        resource_id="DVM-2026-0007",
        case_id=uuid.uuid4(),
        person_id=uuid.uuid4(),
        purpose="Núñez: risk review — “urgent”",
        source_ip="2001:db8::1",
        request_id="req-1",
        changes={"risk_level": ["medium", "high"], "notes": [None, "Zoë's key worker \u2603"]},
        detail={"route": "PATCH /api/v1/cases/{case_id}", "n": 1.5, "ok": True, "list": [1, {}]},
    )
    session.add(full)
    session.flush()
    session.add(AuditUnsealed(event_id=full.id))
    session.commit()
    client.get("/api/v1/me", headers=principals.member.headers)
    assert _seal(session, settings) >= 2
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is True, body


def test_verify_finds_an_edited_event(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    for _ in range(3):
        client.get(f"/api/v1/agencies/{principals.home.id}", headers=principals.member.headers)
    _seal(session, settings)
    victim = _events(session, action="agency.read")[1]
    disable_append_only(session, "audit_event")
    session.execute(
        text("UPDATE audit_event SET actor_id = NULL WHERE id = :id"), {"id": victim.id}
    )
    session.commit()
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is False
    assert body["first_break"]["event_id"] == victim.id
    assert "altered" in body["first_break"]["reason"]


def test_an_unreadable_subject_list_is_sealed_and_reported_not_stuck_in_the_queue(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    """Written behind the service's back with a subject that is no id: the sealer must go
    on (a stuck queue would leave every later event unsealed), and verify must say so."""
    client.get("/api/v1/me", headers=principals.member.headers)
    odd = AuditEvent(
        actor_type="user",
        action="case.list",
        outcome="success",
        detail={"subjects": [["not-an-id", None], [str(uuid.uuid4()), None]]},
    )
    session.add(odd)
    session.flush()
    session.add(AuditUnsealed(event_id=odd.id))
    session.commit()
    _seal(session, settings)
    client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    assert session.scalar(select(func.count()).select_from(AuditUnsealed)) == 0
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is False
    assert body["first_break"]["event_id"] == odd.id
    assert "index" in body["first_break"]["reason"]


def test_the_sealer_indexes_exactly_the_case_ids_an_event_names(
    session: Session, settings: Settings
) -> None:
    """The sealer indexes the subjects (on SQLite from the events as it read them to seal
    them, on PostgreSQL the database from the events as stored); what it indexes is what
    verify_chain expects from the events as read: each [case id, ...] pair's case id that is
    a UUID's text, once, and nothing for anything else."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    details: list[object] = [
        {"subjects": [[a, str(uuid.uuid4())], [b, None], [a, None]]},  # a twice: once
        {"subjects": [[a.upper(), None], [a.replace("-", ""), None], ["x", None]]},
        {"subjects": [[a + "\n", None], [a + "0", None], [" " + a, None]]},
        {"subjects": [[], [1, 2], [None, a], {"case": a}, a, [[a]]]},
        {"subjects": a},
        {"subjects": [[b]]},
        {"other": [[a, None]]},
        [[a, None]],
        None,
    ]
    events = [
        AuditEvent(actor_type="user", action="case.list", outcome="success", detail=d)
        for d in details
    ]
    session.add_all(events)
    session.flush()
    session.add_all([AuditUnsealed(event_id=e.id) for e in events])
    session.commit()
    _seal(session, settings)
    indexed = {
        (epoch, str(case_id), event_id)
        for epoch, case_id, event_id in session.execute(
            select(AuditSubject.epoch, AuditSubject.case_id, AuditSubject.event_id).where(
                col(AuditSubject.event_id).in_([e.id for e in events])
            )
        )
    }
    expected = {
        (subject_epoch(event.id or 0), case_id, event.id)
        for event in events
        for case_id in _subject_cases(event.detail)
        if _UUID_TEXT.fullmatch(case_id)
    }
    assert indexed == expected
    assert {event_id for _, _, event_id in expected} == {events[0].id, events[5].id}


def test_a_batch_stops_at_its_budget_of_subjects_and_the_next_takes_the_rest(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    """The service's sealer bounds a batch by the cases its events showed (each one is
    indexed): a batch ends before the budget is passed, but always seals its first event,
    and the chain and the index come out the same as in one batch."""
    client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    for count in (3, 5, 2, 0):
        shown = [[str(uuid.uuid4()), None] for _ in range(count)]
        event = AuditEvent(
            actor_type="user", action="case.list", outcome="success", detail={"subjects": shown}
        )
        session.add(event)
        session.flush()
        session.add(AuditUnsealed(event_id=event.id))
    session.commit()
    key = _key(settings)
    # (sealed, whether a limit stopped the batch): the service's sealer goes on while true.
    assert seal_next(session, key, batch=10, subjects=4) == (1, True)  # 3; 5 more pass it
    assert seal_next(session, key, batch=10, subjects=4) == (1, True)  # over alone: alone
    assert seal_next(session, key, batch=10, subjects=4) == (2, False)  # 2, then 0: all
    assert seal_next(session, key, batch=10, subjects=4) == (0, False)
    session.commit()
    assert session.scalar(select(func.count()).select_from(AuditSubject)) == 10
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is True and body["unsealed_events"] == 0, body


def test_verify_finds_a_removed_seal(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    for _ in range(3):
        client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    disable_append_only(session, "audit_seal")
    session.execute(text("DELETE FROM audit_seal WHERE chain_index = 1"))
    session.commit()
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is False
    assert body["first_break"]["chain_index"] == 1
    assert "missing" in body["first_break"]["reason"]


def test_verify_finds_an_event_slipped_in_behind_the_service(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    forged = AuditEvent(actor_type="user", action="agency.read", outcome="success")
    session.add(forged)
    session.commit()
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is False
    assert body["first_break"]["event_id"] == forged.id


@pytest.mark.parametrize("table", ["audit_subject", "audit_unsealed"])
def test_verify_finds_an_index_or_queue_row_naming_no_event(
    client: TestClient, session: Session, settings: Settings, principals: Principals, table: str
) -> None:
    """The subject index and the queue name their event without a foreign key: a row
    written behind the service's back for an event that does not exist is reported."""
    client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    missing = (session.scalar(select(func.max(AuditEvent.id))) or 0) + 1000
    if table == "audit_subject":
        session.add(
            AuditSubject(epoch=subject_epoch(missing), case_id=uuid.uuid4(), event_id=missing)
        )
    else:
        session.add(AuditUnsealed(event_id=missing))
    session.commit()
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is False
    assert body["first_break"]["event_id"] == missing
    assert "does not exist" in body["first_break"]["reason"]


def test_verify_finds_an_index_row_filed_under_another_epoch_than_its_events(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    """Verification reads an event's index rows by its epoch. A row added for a real event
    under another epoch (one "who saw this case" searches) would invent a read that the
    event's own epoch does not show: it is reported for that event."""
    client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    assert client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()["ok"]
    event_id = session.scalar(select(func.max(AuditEvent.id))) or 0
    session.add(
        AuditSubject(epoch=subject_epoch(event_id) + 3, case_id=uuid.uuid4(), event_id=event_id)
    )
    session.commit()
    body = client.get("/api/v1/audit/verify", headers=principals.auditor.headers).json()
    assert body["ok"] is False
    assert body["first_break"]["event_id"] == event_id
    assert "another epoch" in body["first_break"]["reason"]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"]
)
def test_the_database_refuses_to_change_audit_events(
    client: TestClient, session: Session, principals: Principals, statement: str
) -> None:
    client.get("/api/v1/me", headers=principals.member.headers)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text(statement))


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_subject SET event_id = event_id + 1", "DELETE FROM audit_subject"]
)
def test_the_database_refuses_to_change_the_index_of_what_a_read_showed(
    client: TestClient, session: Session, principals: Principals, statement: str
) -> None:
    client.get("/api/v1/me", headers=principals.member.headers)
    event_id = session.scalar(select(func.max(AuditEvent.id)))
    session.execute(
        insert(AuditSubject).values(
            epoch=subject_epoch(event_id or 0), event_id=event_id, case_id=uuid.uuid4()
        )
    )
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text(statement))


def test_the_database_refuses_to_change_seals(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    client.get("/api/v1/me", headers=principals.member.headers)
    _seal(session, settings)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE audit_seal SET hash = 'x'"))


def test_auditors_filter_and_page_the_log(
    client: TestClient, session: Session, principals: Principals
) -> None:
    for _ in range(3):
        client.get(f"/api/v1/agencies/{principals.home.id}", headers=principals.member.headers)
    client.get("/api/v1/me", headers=principals.admin.headers)
    params = {"actor_id": str(principals.member.id), "action": "agency.read", "limit": 2}
    first = client.get("/api/v1/audit/events", params=params, headers=principals.auditor.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 2
    assert page["items"][0]["id"] > page["items"][1]["id"]  # newest first
    second = client.get(
        "/api/v1/audit/events",
        params={**params, "cursor": page["next_cursor"]},
        headers=principals.auditor.headers,
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = {e["id"] for e in page["items"]} | {e["id"] for e in second["items"]}
    assert len(ids) == 3
    every = page["items"] + second["items"]
    assert all(e["actor_id"] == str(principals.member.id) for e in every)
    by_agency = client.get(
        "/api/v1/audit/events",
        params={"agency_id": str(principals.admin.agency_id), "action": "self.read"},
        headers=principals.auditor.headers,
    ).json()
    assert [e["actor_id"] for e in by_agency["items"]] == [str(principals.admin.id)]
    # The auditor's own queries are audited too.
    assert _events(session, action="audit.query", actor_id=principals.auditor.id)


def test_the_case_and_person_filters_read_no_table_of_the_log_whole(
    session: Session, engine: Engine
) -> None:
    """ "Who saw this case / this person" must cost the same with millions of events recorded
    as with ten: every table is searched through a key, never read whole. (The events still
    waiting for the sealer were found by reading every event and looking each up in the
    queue, which SQLite chose with or without statistics.) On PostgreSQL, which reads small
    tables whole whatever their indexes, sequential scans are discouraged instead, so that
    the plan shows whether an index can serve each part at all."""
    sqlite_ = engine.dialect.name == "sqlite"
    case = str(uuid.uuid4())
    event = AuditEvent(
        actor_type="user", action="case.list", outcome="success", detail={"subjects": [[case]]}
    )
    session.add(event)
    session.flush()
    session.add(AuditUnsealed(event_id=event.id))
    session.flush()
    if not sqlite_:
        session.execute(text("SET LOCAL enable_seqscan = off"))
    for where in (AuditFilter(case_id=uuid.UUID(case)), AuditFilter(person_id=uuid.uuid4())):
        stmt = where.apply(select(AuditEvent.id)).order_by(col(AuditEvent.id).desc()).limit(51)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        if sqlite_:
            plan = [r[3] for r in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            # The epochs the subject index is searched in are counted, not read.
            whole = [
                line
                for line in plan
                if line.startswith("SCAN")
                and line not in ("SCAN CONSTANT ROW", "SCAN subject_epochs")
            ]
        else:
            plan = [r[0] for r in session.connection().exec_driver_sql("EXPLAIN " + sql)]
            whole = [line for line in plan if "Seq Scan" in line]
        assert "audit_subject" in "\n".join(plan) and whole == [], "\n".join(plan)
    assert [
        e.id
        for e in session.scalars(AuditFilter(case_id=uuid.UUID(case)).apply(select(AuditEvent)))
    ] == [event.id]


def test_time_window_filters(client: TestClient, session: Session, principals: Principals) -> None:
    client.get("/api/v1/me", headers=principals.member.headers)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    headers = principals.auditor.headers
    none = client.get("/api/v1/audit/events", params={"since": future}, headers=headers).json()
    assert none["items"] == []
    some = client.get(
        "/api/v1/audit/events", params={"since": past, "until": future}, headers=headers
    ).json()
    assert some["items"]
    backwards = client.get(
        "/api/v1/audit/events", params={"since": future, "until": past}, headers=headers
    )
    assert backwards.status_code == 422
    assert backwards.headers["content-type"].startswith("application/problem+json")


def test_csv_export(client: TestClient, session: Session, principals: Principals) -> None:
    client.get(
        f"/api/v1/agencies/{principals.home.id}",
        headers={**principals.member.headers, "X-Purpose": '=HYPERLINK("x")'},
    )
    r = client.get(
        "/api/v1/audit/events/export",
        params={"action": "agency.read"},
        headers=principals.auditor.headers,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    assert rows[0]["actor_id"] == str(principals.member.id)
    assert rows[0]["purpose"].startswith("'=")  # defused for spreadsheets
    assert _events(session, action="audit.export")


def test_non_auditors_cannot_read_the_log(client: TestClient, principals: Principals) -> None:
    for who in (principals.admin, principals.member, principals.client):
        for path in ("/api/v1/audit/events", "/api/v1/audit/verify", "/api/v1/audit/events/export"):
            assert client.get(path, headers=who.headers).status_code == 403


def test_a_batch_that_reaches_its_size_says_more_may_be_waiting(
    client: TestClient, session: Session, settings: Settings, principals: Principals
) -> None:
    for _ in range(3):
        client.get("/api/v1/me", headers=principals.member.headers)
    key = _key(settings)
    assert seal_next(session, key, batch=2) == (2, True)
    assert seal_next(session, key, batch=2) == (1, False)
    session.commit()
