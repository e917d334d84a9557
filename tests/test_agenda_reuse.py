"""An agenda built for a caller is shown to them again, without being built anew, while
nothing it shows has changed (app.services.agenda_reads): the database changes its panel's
agenda token whenever a row any agenda statement reads changes (migration 7c41e2a9b053).

What could go wrong is an agenda shown as it was: each test here changes one thing an agenda
shows, through the API or as another program would change the database, and reads again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlmodel import col

from app.actor import Actor, ActorKind
from app.clock import today
from app.models.action import Action
from app.models.person import Person
from app.rawsql import Raw
from app.security import Security
from app.services import agenda_reads
from tests.conferencing import conf_url, list_case, new_case, ok, schedule
from tests.test_referrals import World, world


def _tables(statement: Any) -> set[str]:
    return {element.name for element in visitors.iterate(statement) if isinstance(element, Table)}


def _agenda_tables() -> set[str]:
    """Every table the agenda's statements read, for a panel's manager and for a member."""
    user = Actor(kind=ActorKind.USER, id=uuid.uuid4(), agency_id=uuid.uuid4())
    tables: set[str] = set()
    for manages in (True, False):
        tables |= _tables(agenda_reads._build_conference(user, None))
        tables |= _tables(agenda_reads._build_listings(user, manages))
        tables |= _tables(agenda_reads._build_outstanding(user, None))
        tables |= _tables(agenda_reads._build_suggestions(user, manages))
    return tables


def _triggered(session: Session) -> set[str]:
    if session.get_bind().dialect.name == "postgresql":
        sql = (
            "SELECT event_object_table FROM information_schema.triggers"
            " WHERE trigger_name = 'agenda_changed'"
        )
    else:
        sql = (
            "SELECT tbl_name FROM sqlite_master"
            " WHERE type = 'trigger' AND name LIKE 'agenda_changed_%'"
        )
    return {name for (name,) in session.execute(text(sql))}


def test_every_table_an_agenda_reads_changes_its_panels_token(session: Session) -> None:
    """A statement added to the agenda later that reads another table fails this until that
    table has its trigger too (so does a SQLite migration that rebuilds a table and drops
    its triggers with it)."""
    read = _agenda_tables()
    assert {"case_record", "case_action", "listing", "conference", "person"} <= read
    assert read <= _triggered(session)


@pytest.fixture
def listed(
    client: TestClient, session: Session, security: Security
) -> tuple[World, dict[str, Any], str]:
    """A world, one of its cases listed on an upcoming conference, and the agenda's url,
    read once by the coordinator (so their agenda is built and kept)."""
    w = world(session, security)
    case = new_case(client, w)
    conference = schedule(client, w)
    list_case(client, w.coord, conference, case["id"])
    url = conf_url(conference, "/listings")
    ok(client.get(url, headers=w.coord))
    return w, case, url


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The agenda statements sent from now on (the audit event's are not counted)."""
    sent: list[str] = []
    one, each = Raw.all_compiled, Raw.all_each

    def counted_one(self: Raw, sql: str, params: Any) -> Any:
        sent.append(sql)
        return one(self, sql, params)

    def counted_each(self: Raw, statements: Any, **kwargs: Any) -> Any:
        sent.extend(sql for sql, _ in statements)
        return each(self, statements, **kwargs)

    monkeypatch.setattr(Raw, "all_compiled", counted_one)
    monkeypatch.setattr(Raw, "all_each", counted_each)
    return sent


def test_an_unchanged_agenda_is_read_with_one_statement_and_audited_each_time(
    client: TestClient,
    session: Session,
    listed: tuple[World, dict[str, Any], str],
    monkeypatch: Any,
) -> None:
    w, _, url = listed
    audited = text(
        "SELECT count(*) FROM audit_event WHERE action = 'agenda.read' AND resource_id = :id"
    )
    reads = session.execute(audited, {"id": url.split("/")[4]}).scalar_one()
    before = ok(client.get(url, headers=w.coord))
    sent = _statements(monkeypatch)
    again = ok(client.get(url, headers=w.coord))
    assert again == before
    assert len(sent) == 1, sent  # the conference's row, with its panel's token
    assert session.execute(audited, {"id": url.split("/")[4]}).scalar_one() == reads + 2
    # Another caller's agenda is their own.
    sent.clear()
    ok(client.get(url, headers=w.chair))
    assert len(sent) > 1


def test_a_renamed_subject_is_shown_by_name_on_the_next_read(
    client: TestClient, session: Session, listed: tuple[World, dict[str, Any], str]
) -> None:
    w, case, url = listed
    session.execute(
        update(Person)
        .where(col(Person.id) == uuid.UUID(case["subject_person_id"]))
        .values(given_name="Janet")
    )
    session.commit()
    items = ok(client.get(url, headers=w.coord))["items"]
    assert items[0]["subject_name"].startswith("Janet ")


def test_a_new_action_and_a_changed_due_date_are_shown_on_the_next_read(
    client: TestClient, session: Session, listed: tuple[World, dict[str, Any], str]
) -> None:
    w, case, url = listed
    body = {
        "description": "Police to check address markers",
        "owner_agency_id": str(w.police.id),
        "due_date": (today() + timedelta(days=14)).isoformat(),
    }
    action = ok(client.post(f"/api/v1/cases/{case['id']}/actions", json=body, headers=w.coord), 201)
    items = ok(client.get(url, headers=w.coord))["items"]
    assert [a["id"] for a in items[0]["outstanding_actions"]] == [action["id"]]
    session.execute(
        update(Action)
        .where(col(Action.id) == uuid.UUID(action["id"]))
        .values(due_date=today() - timedelta(days=3))
    )
    session.commit()
    shown = ok(client.get(url, headers=w.coord))["items"][0]["outstanding_actions"]
    assert shown[0]["due_date"] == (today() - timedelta(days=3)).isoformat()
    assert shown[0]["is_overdue"] is True


def test_a_case_excluded_from_the_callers_agency_leaves_their_agenda_on_the_next_read(
    client: TestClient, session: Session, listed: tuple[World, dict[str, Any], str]
) -> None:
    w, case, url = listed
    ok(client.post(url.replace("/listings", "/publish"), headers=w.coord))
    assert [i["case_id"] for i in ok(client.get(url, headers=w.idva_rep))["items"]] == [case["id"]]
    ok(
        client.post(
            f"/api/v1/cases/{case['id']}/exclusions",
            json={"agency_id": str(w.idva.id), "reason": "Employs the perpetrator"},
            headers=w.coord,
        ),
        201,
    )
    assert ok(client.get(url, headers=w.idva_rep))["items"] == []


def test_a_changed_risk_level_is_shown_on_the_next_read(
    client: TestClient, session: Session, listed: tuple[World, dict[str, Any], str]
) -> None:
    w, case, url = listed
    current = client.get(f"/api/v1/cases/{case['id']}", headers=w.coord)
    r = client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"risk_level": "medium"},
        headers={**w.coord, "If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert ok(client.get(url, headers=w.coord))["items"][0]["risk_level"] == "medium"
