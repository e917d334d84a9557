"""Conferences through the real API: scheduling, agenda, attendance with the confidentiality
acknowledgement, minutes, finalising and amendments, rescheduling, iCalendar."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from app.config import Settings
from app.models.agency import AgencyKind
from app.models.audit import AuditEvent, AuditSubject
from app.models.panel import PanelRole
from app.permissions import Scope
from app.security import Security
from app.services.audit_chain import chain_key, seal_pending
from tests.builders import PASSWORD, bearer, client_token, make_agency, make_client, make_panel
from tests.conferencing import (
    acknowledge,
    attend,
    conf_url,
    list_case,
    meeting_in_progress,
    minute,
    new_case,
    ok,
    problem,
    schedule,
    set_status,
    when,
)
from tests.test_referrals import person_headers, world


def test_a_dv_marac_conference_from_scheduling_to_amended_minutes(
    client: TestClient, session: Session, security: Security, settings: Settings
) -> None:
    w = world(session, security)
    first, second = new_case(client, w, "Able"), new_case(client, w, "Baker")

    r = client.post(
        "/api/v1/conferences",
        json={
            "panel_id": str(w.panel.id),
            "starts_at": when(7),
            "online_link": "https://meet.example.org/marac",
            "chair_user_id": str(w.chair_user.id),
        },
        headers=w.coord,
    )
    conference = ok(r, 201)
    assert r.headers["location"] == f"/api/v1/conferences/{conference['id']}"
    assert r.headers["etag"] == '"1"'
    assert conference["status"] == "scheduled"
    assert conference["panel_type"] == "dv_marac"
    assert conference["duration_minutes"] == 120

    # Suggestions: both cases await their first hearing; neither is listed yet.
    agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.coord))
    suggested = {s["case_id"]: s["reasons"] for s in agenda["suggestions"]}
    assert suggested[first["id"]] == ["awaiting_listing"]
    assert suggested[second["id"]] == ["awaiting_listing"]

    list_case(client, w.coord, conference, first["id"])
    agenda = list_case(client, w.coord, conference, second["id"])
    assert [i["case_id"] for i in agenda["items"]] == [first["id"], second["id"]]
    assert agenda["items"][0]["subject_name"] == "Jane Able"
    assert {s["case_id"] for s in agenda["suggestions"]}.isdisjoint({first["id"], second["id"]})

    # Reorder (If-Match on the conference), stale ETag refused.
    listing_ids = [i["id"] for i in agenda["items"]]
    etag = client.get(conf_url(conference), headers=w.coord).headers["etag"]
    reordered = client.put(
        conf_url(conference, "/listings/order"),
        json={"listing_ids": listing_ids[::-1]},
        headers={**w.coord, "If-Match": etag},
    )
    assert [i["case_id"] for i in ok(reordered)["items"]] == [second["id"], first["id"]]
    problem(
        client.put(
            conf_url(conference, "/listings/order"),
            json={"listing_ids": listing_ids},
            headers={**w.coord, "If-Match": etag},
        ),
        412,
    )

    # Before publication a representative sees the conference but not its cases.
    assert ok(client.get(conf_url(conference), headers=w.rep))["listed_cases"] == 0
    assert ok(client.get(conf_url(conference, "/listings"), headers=w.rep))["items"] == []
    problem(client.get(f"/api/v1/cases/{first['id']}", headers=w.rep), 404)
    published = ok(client.post(conf_url(conference, "/publish"), headers=w.coord))
    assert published["agenda_published_at"] is not None
    problem(client.post(conf_url(conference, "/publish"), headers=w.coord), 409)
    assert ok(client.get(conf_url(conference), headers=w.rep))["listed_cases"] == 2
    rep_agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.rep))
    assert [i["case_id"] for i in rep_agenda["items"]] == [second["id"], first["id"]]
    assert rep_agenda["suggestions"] is None
    ok(client.get(f"/api/v1/cases/{first['id']}", headers=w.rep))

    # Attendance: the minutes wait for every attendee present to acknowledge.
    rep_user, rep = person_headers(session, security, w.police, w.panel, "representative")
    coordinator = attend(
        client, w.coord, conference, w.council.id, user_id=w.coordinator.id, role="coordinator"
    )
    police = attend(client, w.coord, conference, w.police.id, user_id=rep_user.id)
    idva = attend(client, w.coord, conference, w.idva.id, name="A. Advocate", status="apologies")
    assert coordinator["attendee_name"] == w.coordinator.full_name
    assert idva["confidentiality_acknowledged_at"] is None

    problem(minute(client, w.coord, conference, listing_ids[0]), 409)  # not started
    ok(set_status(client, w.coord, conference, "in_progress"))
    refused = problem(minute(client, w.coord, conference, listing_ids[0]), 409)
    assert set(refused["attendance_ids"]) == {coordinator["id"], police["id"]}

    # An attendee acknowledges for themselves; only that, and only their own line.
    acknowledged = ok(acknowledge(client, rep, conference, police["id"]))
    assert acknowledged["confidentiality_acknowledged_at"] is not None
    problem(acknowledge(client, rep, conference, coordinator["id"]), 403)
    problem(
        client.patch(
            conf_url(conference, f"/attendance/{police['id']}"),
            json={"status": "absent"},
            headers=rep,
        ),
        403,
    )
    ok(acknowledge(client, w.coord, conference, coordinator["id"]))
    entry = ok(minute(client, w.coord, conference, listing_ids[0]))
    assert entry["version"] == 1 and entry["case_id"] == first["id"]

    # Draft minutes are for the managers.
    problem(client.get(conf_url(conference, "/minutes"), headers=w.rep), 403)

    ok(set_status(client, w.coord, conference, "concluded"))
    heard = ok(client.get(f"/api/v1/cases/{first['id']}", headers=w.coord))
    assert datetime.fromisoformat(heard["last_heard_at"]) == datetime.fromisoformat(
        conference["starts_at"]
    )
    assert heard["version"] == first["version"] + 1  # a changed case has a new ETag

    # Only the chair finalises, and only when every listed case has its minutes.
    problem(client.post(conf_url(conference, "/finalise"), headers=w.coord), 403)
    missing = problem(client.post(conf_url(conference, "/finalise"), headers=w.chair), 409)
    assert missing["listing_ids"] == [listing_ids[1]]
    ok(minute(client, w.coord, conference, listing_ids[1]))
    final = ok(client.post(conf_url(conference, "/finalise"), headers=w.chair))
    assert final["status"] == "minutes_finalised" and final["finalised_at"]

    # Locked: edits refused, corrections are amendments that keep the original.
    problem(minute(client, w.coord, conference, listing_ids[0], decisions="Changed"), 409)
    problem(set_status(client, w.coord, conference, "in_progress"), 409)
    correction = {"field": "decisions", "text": "Safety plan refreshed.", "reason": "Typo"}
    amend_url = conf_url(conference, f"/minutes/{listing_ids[0]}/amendments")
    keyed = {**w.chair, "Idempotency-Key": "typo-1"}
    amended = ok(client.post(amend_url, json=correction, headers=keyed), 201)
    # A retry with the same key adds nothing; the same key with another body is refused.
    retry = client.post(amend_url, json=correction, headers=keyed)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == amended
    problem(client.post(amend_url, json={**correction, "reason": "Other"}, headers=keyed), 422)
    assert amended["decisions"] == "Safety plan refreshed; target hardening requested."
    assert amended["amendments"][0]["previous_text"] == amended["decisions"]
    assert amended["amendments"][0]["text"] == "Safety plan refreshed."

    # Finalised minutes circulate to every member, amendments included.
    circulated = ok(client.get(conf_url(conference, "/minutes"), headers=w.rep))
    assert circulated["finalised"] is True
    assert [e["case_id"] for e in circulated["entries"]] == [second["id"], first["id"]]
    assert circulated["entries"][1]["amendments"][0]["reason"] == "Typo"
    assert len(circulated["entries"][1]["amendments"]) == 1

    # Every read of the minutes is audited with each case it showed and the case's subject.
    reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "minutes.read")).all()
    assert reads
    for event in reads:
        assert [first["id"], first["subject_person_id"]] in (event.detail or {})["subjects"]
    key = chain_key(settings.secret_key, settings.audit_key)
    while seal_pending(session, key):  # the sealer indexes what each event showed
        pass
    session.commit()
    indexed = session.scalars(
        select(AuditSubject.event_id)
        .join(AuditEvent, AuditEvent.id == AuditSubject.event_id)
        .where(
            AuditEvent.action == "minutes.read",
            AuditSubject.case_id == uuid.UUID(first["id"]),
        )
    ).all()
    assert set(indexed) == {e.id for e in reads}
    amend_events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "minutes.amend")
    ).all()
    assert [str(e.case_id) for e in amend_events] == [first["id"]]


def test_rescheduling_keeps_history_and_cancelling_needs_a_reason(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    conference = schedule(client, w)
    url = conf_url(conference)

    moved = client.patch(
        url,
        json={"starts_at": when(14), "location": "Room 2", "reschedule_reason": "Clash"},
        headers={**w.coord, "If-Match": '"1"'},
    )
    body = ok(moved)
    assert moved.headers["etag"] == '"2"'
    (change,) = body["schedule_history"]
    assert change["previous_location"] == "Civic Offices, Bexleyheath"
    assert change["location"] == "Room 2" and change["reason"] == "Clash"
    assert datetime.fromisoformat(change["previous_starts_at"]) == datetime.fromisoformat(
        conference["starts_at"]
    )
    problem(
        client.patch(url, json={"location": "Room 3"}, headers={**w.coord, "If-Match": '"1"'}), 412
    )
    # The same time again changes nothing and adds no history.
    same = ok(client.patch(url, json={"location": "Room 2"}, headers=w.coord))
    assert len(same["schedule_history"]) == 1 and same["version"] == 2

    problem(set_status(client, w.coord, conference, "cancelled"), 422)
    problem(set_status(client, w.coord, conference, "concluded"), 409)
    problem(set_status(client, w.coord, conference, "minutes_finalised"), 422)
    problem(client.patch(url, json={"cancel_reason": "x"}, headers=w.coord), 422)
    cancelled = ok(set_status(client, w.coord, conference, "cancelled", cancel_reason="Strike"))
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "Strike"
    problem(set_status(client, w.coord, conference, "in_progress"), 409)
    problem(client.patch(url, json={"starts_at": when(20)}, headers=w.coord), 409)
    # Nothing of the refused requests was saved.
    assert ok(client.get(url, headers=w.coord))["version"] == cancelled["version"]


def test_a_case_is_listed_on_one_upcoming_conference_at_a_time(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    march, april = schedule(client, w, 7), schedule(client, w, 35)
    list_case(client, w.coord, march, case["id"])
    clash = problem(
        client.post(conf_url(april, "/listings"), json={"case_id": case["id"]}, headers=w.coord),
        409,
    )
    assert clash["conference_id"] == march["id"]
    problem(
        client.post(conf_url(march, "/listings"), json={"case_id": case["id"]}, headers=w.coord),
        409,
    )
    # Once March has sat, the case may go on April's agenda (for review).
    ok(set_status(client, w.coord, march, "in_progress"))
    ok(set_status(client, w.coord, march, "concluded"))
    agenda = list_case(client, w.coord, april, case["id"])
    assert agenda["items"][0]["case_id"] == case["id"]

    # Taking it off the agenda again; unknown listing ids are 404.
    listing_id = agenda["items"][0]["id"]
    assert (
        client.delete(conf_url(april, f"/listings/{listing_id}"), headers=w.coord).status_code
        == 204
    )
    problem(client.delete(conf_url(april, f"/listings/{listing_id}"), headers=w.coord), 404)


def test_who_may_see_and_run_a_conference(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    conference = schedule(client, w)
    url = conf_url(conference)

    for member in (w.chair, w.rep, w.idva_rep, w.observer):
        ok(client.get(url, headers=member))
    # Observers and representatives read; they do not schedule, list, publish or record.
    for reader in (w.observer, w.rep):
        problem(client.patch(url, json={"location": "X"}, headers=reader), 403)
        problem(
            client.post(
                conf_url(conference, "/listings"), json={"case_id": case["id"]}, headers=reader
            ),
            403,
        )
        problem(client.post(conf_url(conference, "/publish"), headers=reader), 403)
        problem(
            client.post(
                "/api/v1/conferences",
                json={
                    "panel_id": str(w.panel.id),
                    "starts_at": when(3),
                    "location": "X",
                    "chair_user_id": str(w.chair_user.id),
                },
                headers=reader,
            ),
            403,
        )
    # Not a member of the panel: no conference exists for them.
    other_agency = make_agency(session, f"Housing {uuid.uuid4().hex[:6]}", AgencyKind.HOUSING)
    _, outsider = person_headers(session, security, other_agency)
    problem(client.get(url, headers=outsider), 404)
    assert ok(client.get("/api/v1/conferences", headers=outsider))["items"] == []
    # A partner system with conferences:read of a member agency reads the schedule.
    system = make_client(session, security, w.police, [Scope.CONFERENCES_READ])
    ok(client.get(url, headers=bearer(client_token(security, system))))
    problem(client.get(url, headers=w.partner), 403)  # no conferences:read
    problem(client.get(url), 401)


def test_a_channel_conference_is_invisible_outside_channel(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security, "channel")
    conference = schedule(client, w)
    url = conf_url(conference)
    ok(client.get(url, headers=w.rep))
    # The police system of a Channel member agency still never sees it.
    system = make_client(session, security, w.police, [Scope.CONFERENCES_READ])
    system_headers = bearer(client_token(security, system))
    problem(client.get(url, headers=system_headers), 404)
    problem(client.get(conf_url(conference, "/calendar.ics"), headers=system_headers), 404)
    assert ok(client.get("/api/v1/conferences", headers=system_headers))["items"] == []
    # Nor does a DV MARAC member of the same agency.
    dv = make_panel(session, "dv_marac", [w.police])
    _, dv_rep = person_headers(session, security, w.police, dv, "representative")
    problem(client.get(url, headers=dv_rep), 404)


def test_an_excluded_agency_does_not_see_the_case_on_the_agenda_or_in_minutes(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    kept, hidden = new_case(client, w, "Kept"), new_case(client, w, "Hidden")
    ok(
        client.post(
            f"/api/v1/cases/{hidden['id']}/exclusions",
            json={"agency_id": str(w.police.id), "reason": "Employs the perpetrator"},
            headers=w.coord,
        ),
        201,
    )
    conference, listings = meeting_in_progress(client, w, [kept["id"], hidden["id"]])
    for listing_id in listings:
        ok(minute(client, w.coord, conference, listing_id))
    ok(set_status(client, w.coord, conference, "concluded"))
    ok(client.post(conf_url(conference, "/finalise"), headers=w.chair))

    agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.rep))
    assert [i["case_id"] for i in agenda["items"]] == [kept["id"]]
    minutes = ok(client.get(conf_url(conference, "/minutes"), headers=w.rep))
    assert [e["case_id"] for e in minutes["entries"]] == [kept["id"]]
    assert len(ok(client.get(conf_url(conference, "/minutes"), headers=w.idva_rep))["entries"]) == 2


def test_the_agenda_follows_a_change_of_what_the_caller_may_see_between_two_reads(
    client: TestClient, session: Session, security: Security
) -> None:
    """A caller's agenda is kept and shown again while nothing it shows has changed
    (app.services.agenda_reads): a change of their role, or the agenda's publication,
    plans it otherwise, and the next read shows what the change allows."""
    w = world(session, security)
    case = new_case(client, w)
    conference = schedule(client, w)
    list_case(client, w.coord, conference, case["id"])
    url = conf_url(conference, "/listings")
    user, coordinator = person_headers(session, security, w.council, w.panel, "coordinator")
    managed = ok(client.get(url, headers=coordinator))
    assert [i["case_id"] for i in managed["items"]] == [case["id"]]
    assert managed["suggestions"] is not None
    assert ok(client.get(url, headers=coordinator)) == managed  # as planned

    # No longer the coordinator but a representative: shown nothing before publication.
    session.execute(
        update(PanelRole).where(col(PanelRole.user_id) == user.id).values(role="representative")
    )
    session.commit()
    unpublished = ok(client.get(url, headers=coordinator))
    assert unpublished["items"] == [] and unpublished["suggestions"] is None

    ok(client.post(conf_url(conference, "/publish"), headers=w.coord))
    published = ok(client.get(url, headers=coordinator))
    assert [i["case_id"] for i in published["items"]] == [case["id"]]
    assert published["suggestions"] is None


def test_calendar_feeds_carry_the_meeting_and_nothing_personal(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w, "Zebedee")
    conference = schedule(client, w)
    list_case(client, w.coord, conference, case["id"])
    client.patch(
        conf_url(conference),
        json={"starts_at": when(9), "reschedule_reason": "Room"},
        headers=w.coord,
    )

    r = client.get(conf_url(conference, "/calendar.ics"), headers=w.rep)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/calendar")
    text = r.text
    assert "BEGIN:VCALENDAR" in text and "BEGIN:VEVENT" in text
    assert f"UID:{conference['id']}@safeguarding-panels" in text
    assert "SEQUENCE:1" in text and "LOCATION:Civic Offices\\, Bexleyheath" in text
    for personal in ("Zebedee", "Jane", case["reference"]):
        assert personal not in text

    other = schedule(client, w, 21)
    ok(set_status(client, w.coord, other, "cancelled", cancel_reason="Moved online"))
    feed = client.get(f"/api/v1/panels/{w.panel.id}/calendar.ics", headers=w.observer)
    assert feed.status_code == 200
    assert feed.text.count("BEGIN:VEVENT") == 2
    assert "STATUS:CANCELLED" in feed.text
    assert "Zebedee" not in feed.text
    other_agency = make_agency(session, f"Housing {uuid.uuid4().hex[:6]}", AgencyKind.HOUSING)
    _, outsider = person_headers(session, security, other_agency)
    problem(client.get(f"/api/v1/panels/{w.panel.id}/calendar.ics", headers=outsider), 404)


def test_conference_input_is_validated_and_nothing_is_saved(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    base = {
        "panel_id": str(w.panel.id),
        "starts_at": when(7),
        "location": "Civic Offices",
        "chair_user_id": str(w.chair_user.id),
    }
    rep_user, _ = person_headers(session, security, w.police, w.panel, "representative")
    # A chair who has left: still holding the role, but deactivated.
    gone, _ = person_headers(session, security, w.council, w.panel, "chair")
    gone.is_active = False
    session.commit()
    for bad in (
        {**base, "starts_at": "2026-12-01T10:00:00"},  # no offset
        {**base, "starts_at": "2500-01-01T10:00:00+00:00"},
        {**base, "duration_minutes": 5},
        {**base, "location": None},
        {**base, "online_link": "not a url"},
        {**base, "chair_user_id": str(rep_user.id)},  # not a chair or coordinator
        {**base, "chair_user_id": str(uuid.uuid4())},
        {**base, "chair_user_id": str(gone.id)},
        {**base, "surprise": True},
        {k: v for k, v in base.items() if k != "chair_user_id"},
    ):
        problem(client.post("/api/v1/conferences", json=bad, headers=w.coord), 422)
    problem(
        client.post(
            "/api/v1/conferences", json={**base, "panel_id": str(uuid.uuid4())}, headers=w.coord
        ),
        404,
    )
    assert ok(client.get("/api/v1/conferences", headers=w.coord))["items"] == []

    conference = schedule(client, w)
    for bad_listing in ({"case_id": str(uuid.uuid4())}, {"case_id": "x"}, {}):
        problem(
            client.post(conf_url(conference, "/listings"), json=bad_listing, headers=w.coord), 422
        )
    problem(
        client.put(
            conf_url(conference, "/listings/order"),
            json={"listing_ids": [str(uuid.uuid4())]},
            headers=w.coord,
        ),
        422,
    )
    problem(client.patch(conf_url(conference), json={}, headers=w.coord), 422)
    problem(client.patch(conf_url(conference), json={"starts_at": None}, headers=w.coord), 422)
    problem(client.get("/api/v1/conferences", params={"from": "yesterday"}, headers=w.coord), 422)
    problem(client.get("/api/v1/conferences", params={"status": "done"}, headers=w.coord), 422)


def test_a_calendar_client_subscribes_with_a_personal_feed_link(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    schedule(client, w)
    rep_user, rep = person_headers(session, security, w.police, w.panel, "representative")
    issued = client.post(f"/api/v1/panels/{w.panel.id}/calendar-feed", headers=rep)
    link = ok(issued, 201)
    assert link["path"].startswith(f"/api/v1/panels/{w.panel.id}/calendar.ics?feed_token=")

    # A calendar client sends no header: the link alone reads the feed, and only that feed.
    feed = client.get(link["path"])
    assert feed.status_code == 200 and "BEGIN:VEVENT" in feed.text
    token = link["path"].split("feed_token=")[1]
    other = make_panel(session, "dv_marac", [w.police])
    problem(client.get(f"/api/v1/panels/{other.id}/calendar.ics?feed_token={token}"), 401)
    problem(client.get(f"{link['path'][:-3]}abc"), 401)
    # It is no access token either.
    problem(client.get("/api/v1/conferences", headers=bearer(token)), 401)

    # A password change ends it, like every other session of the account.
    changed = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "another-long-password-2026"},
        headers=rep,
    )
    assert changed.status_code == 204, changed.text
    problem(client.get(link["path"]), 401)

    # Systems send their bearer token; outsiders get no link.
    system = make_client(session, security, w.police, [Scope.CONFERENCES_READ])
    system_headers = bearer(client_token(security, system))
    problem(client.post(f"/api/v1/panels/{w.panel.id}/calendar-feed", headers=system_headers), 403)
    via_bearer = client.get(f"/api/v1/panels/{w.panel.id}/calendar.ics", headers=system_headers)
    assert via_bearer.status_code == 200 and "BEGIN:VCALENDAR" in via_bearer.text
    other_agency = make_agency(session, f"Housing {uuid.uuid4().hex[:6]}", AgencyKind.HOUSING)
    _, outsider = person_headers(session, security, other_agency)
    problem(client.post(f"/api/v1/panels/{w.panel.id}/calendar-feed", headers=outsider), 404)
    del rep_user


def test_a_manager_from_an_excluded_agency_cannot_touch_the_hidden_listing(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    kept, hidden, last = (new_case(client, w, n) for n in ("Kept", "Hidden", "Last"))
    ok(
        client.post(
            f"/api/v1/cases/{hidden['id']}/exclusions",
            json={"agency_id": str(w.police.id), "reason": "Employs the perpetrator"},
            headers=w.coord,
        ),
        201,
    )
    conference = schedule(client, w)
    for case in (kept, hidden, last):
        list_case(client, w.coord, conference, case["id"])
    _, police_coordinator = person_headers(session, security, w.police, w.panel, "coordinator")

    # A count of listings tells something too: each sees what they may.
    assert ok(client.get(conf_url(conference), headers=w.coord))["listed_cases"] == 3
    assert ok(client.get(conf_url(conference), headers=police_coordinator))["listed_cases"] == 2
    assert ok(client.get(conf_url(conference), headers=w.rep))["listed_cases"] == 0

    agenda = ok(client.get(conf_url(conference, "/listings"), headers=w.coord))
    ids = {item["case_id"]: item["id"] for item in agenda["items"]}
    problem(
        client.delete(
            conf_url(conference, f"/listings/{ids[hidden['id']]}"), headers=police_coordinator
        ),
        404,
    )
    # Reordering names the listings one can see; the hidden one keeps its place.
    problem(
        client.put(
            conf_url(conference, "/listings/order"),
            json={"listing_ids": [ids[last["id"]], ids[hidden["id"]], ids[kept["id"]]]},
            headers=police_coordinator,
        ),
        422,
    )
    ok(
        client.put(
            conf_url(conference, "/listings/order"),
            json={"listing_ids": [ids[last["id"]], ids[kept["id"]]]},
            headers=police_coordinator,
        )
    )
    order = [
        i["case_id"]
        for i in ok(client.get(conf_url(conference, "/listings"), headers=w.coord))["items"]
    ]
    assert order == [last["id"], hidden["id"], kept["id"]]
