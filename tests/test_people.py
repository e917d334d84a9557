"""People through the real API: candidate search with match scores among the people the
caller may see, linking referrals to known people, duplicate suspicion, and victims' safe
contact details shown only to those who need them."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg
import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.actor import Actor, ActorKind
from app.errors import transient
from app.models.agency import AgencyKind
from app.models.person import Person, PersonDuplicate
from app.models.referral import Referral
from app.permissions import Role, Scope
from app.rawsql import Raw
from app.security import Security
from app.services.matching import (
    Query,
    given_key,
    identity_lock_key,
    lookup,
    name_key,
    scored,
)
from tests.builders import (
    bearer,
    client_token,
    dv_referral,
    give_role,
    make_agency,
    make_client,
    make_panel,
    make_user,
    publish_cases,
    user_token,
)
from tests.test_referrals import (
    Headers,
    admin_headers,
    decide,
    person_headers,
    submit,
    victim,
    world,
)

SAFE = {"phone": "07700 900123", "safe_times": "weekdays 10-12"}


def search(client: TestClient, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/people", params=params, headers=headers)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


def people_of(client: TestClient, coord: Headers, referral_id: str) -> dict[str, str]:
    """role -> person_id of a referral, as its panel's coordinator sees it."""
    r = client.get(f"/api/v1/referrals/{referral_id}", headers=coord)
    assert r.status_code == 200, r.text
    return {p["role"]: p["person_id"] for p in r.json()["people"]}


def person_count(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Person)) or 0)


# Search ---------------------------------------------------------------------------------------


def test_search_is_limited_to_people_the_caller_may_see(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    victim_id = people_of(client, w.coord, referral["id"])["victim"]

    found = search(client, w.coord, name="Jane Doe", date_of_birth="1990-04-01", postcode="DA6 7AT")
    assert [c["person"]["id"] for c in found] == [victim_id]
    assert found[0]["score"] == 1.0
    assert set(found[0]["matched_on"]) == {"family_name", "given_name", "date_of_birth", "postcode"}

    # Someone with no panel role sees nobody, and so does a representative while the referral
    # is untriaged (they see people on cases, not on referrals waiting for triage).
    _, nobody = person_headers(session, security, w.police)
    assert search(client, nobody, name="Jane Doe") == []
    assert search(client, w.rep, name="Jane Doe") == []
    # A coordinator of another panel does not see this panel's people.
    other = make_panel(session, "dv_marac", [w.council])
    _, other_coord = person_headers(session, security, w.council, other, "coordinator")
    assert search(client, other_coord, name="Doe") == []

    case_id = decide(client, w.coord, referral["id"], "accept").json()["case_id"]
    # Once triaged, the panel's managers still find her; other members only once her case
    # is on a published agenda.
    assert [c["person"]["id"] for c in search(client, w.chair, name="Jane Doe")] == [victim_id]
    assert search(client, w.rep, name="Jane Doe") == []
    assert search(client, w.observer, name="Doe") == []
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case_id])
    assert [c["person"]["id"] for c in search(client, w.rep, name="Jane Doe")] == [victim_id]
    assert [c["person"]["id"] for c in search(client, w.observer, name="Doe")] == [victim_id]
    assert search(client, nobody, name="Jane Doe") == []
    assert search(client, other_coord, name="Doe") == []


def test_search_needs_the_casework_permission(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    submit(client, w.partner, dv_referral(w.panel.id))
    assert client.get("/api/v1/people", params={"name": "Doe"}).status_code == 401
    admin = admin_headers(session, security)
    assert client.get("/api/v1/people", params={"name": "Doe"}, headers=admin).status_code == 403
    auditor_agency = make_agency(session, "Audit office", AgencyKind.OTHER)
    auditor = make_user(
        session, security, auditor_agency, roles=[Role.AUDITOR], totp_secret=pyotp.random_base32()
    )
    r = client.get(
        "/api/v1/people", params={"name": "Doe"}, headers=bearer(user_token(security, auditor))
    )
    assert r.status_code == 403
    system = make_client(session, security, w.police, [Scope.CASES_READ, Scope.REFERRALS_WRITE])
    r = client.get(
        "/api/v1/people", params={"name": "Doe"}, headers=bearer(client_token(security, system))
    )
    assert r.status_code == 403


def test_matching_tolerates_nicknames_initials_case_accents_and_postcode_spacing(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    body = dv_referral(
        w.panel.id,
        victim={
            "given_name": "Robert",
            "family_name": "O'Brien-Smith",
            "aliases": ["Robbie Brown"],
            "date_of_birth": "1985-07-14",
            "postcode": "da6 7at",
        },
    )
    body["people"].append(
        {
            "role": "child_in_household",
            "details": {"given_name": "Zoë", "family_name": "Ñúñez", "postcode": "SE9 1AA"},
        }
    )
    referral = submit(client, w.partner, body)
    ids = people_of(client, w.coord, referral["id"])
    robert, zoe = ids["victim"], ids["child_in_household"]

    def best(**params: Any) -> dict[str, Any]:
        found = search(client, w.coord, **params)
        assert found, params
        return found[0]

    nickname = best(name="Bob OBrien-Smith")
    assert nickname["person"]["id"] == robert
    assert {"given_name", "family_name"} <= set(nickname["matched_on"])
    assert best(name="bobby o'brien smith".replace(" smith", "-smith"))["person"]["id"] == robert
    initial = best(name="R. O'Brien-Smith")
    assert initial["person"]["id"] == robert
    assert "initial" in initial["matched_on"]
    assert initial["score"] < nickname["score"]
    by_alias = best(name="Brown", date_of_birth="1985-07-14")
    assert by_alias["person"]["id"] == robert
    assert by_alias["matched_on"] == ["alias", "date_of_birth"]
    by_dob = best(date_of_birth="1985-07-14")
    assert by_dob["person"]["id"] == robert
    assert by_dob["matched_on"] == ["date_of_birth"]
    for spelling in ("DA67AT", "da6 7at", "DA6 7AT"):
        by_postcode = best(postcode=spelling)
        assert by_postcode["person"]["id"] == robert
        assert by_postcode["matched_on"] == ["postcode"]
    # The stored postcode is normalised to upper case.
    assert by_postcode["person"]["postcode"] == "DA6 7AT"
    district = best(name="O'Brien-Smith", postcode="DA6 9ZZ")
    assert "postcode_district" in district["matched_on"]
    accented = best(name="Zoe Nunez")
    assert accented["person"]["id"] == zoe
    assert accented["person"]["given_name"] == "Zoë"
    # A full match outranks a partial one; every score is within 0..1.
    full = search(
        client, w.coord, name="Robert O'Brien-Smith", date_of_birth="1985-07-14", postcode="DA6 7AT"
    )
    assert full[0]["person"]["id"] == robert
    assert full[0]["score"] == 1.0
    assert all(0 <= c["score"] <= 1 for c in full)
    assert search(client, w.coord, name="Nobody Known") == []


def test_search_ranks_candidates_best_first(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    exact = submit(
        client, w.partner, dv_referral(w.panel.id, victim=victim("Amy", "Clark", "1990-01-01"))
    )
    near = submit(
        client,
        w.partner,
        dv_referral(w.panel.id, victim=victim("Beth", "Clark", "1991-01-01", postcode="SE1 1AA")),
    )
    found = search(client, w.coord, name="Amy Clark", date_of_birth="1990-01-01")
    ids = [c["person"]["id"] for c in found]
    assert ids[0] == people_of(client, w.coord, exact["id"])["victim"]
    assert people_of(client, w.coord, near["id"])["victim"] in ids
    scores = [c["score"] for c in found]
    assert scores == sorted(scores, reverse=True)
    assert len(search(client, w.coord, name="Clark", limit=1)) == 1


def test_search_parameters_are_validated(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    for params in (
        {},
        {"date_of_birth": "1990-02-30"},
        {"postcode": "DA6 7AT 12345"},
        {"name": "x" * 201},
        {"name": "Doe", "limit": 0},
        {"name": "Doe", "limit": 51},
    ):
        r = client.get("/api/v1/people", params=params, headers=w.coord)
        assert r.status_code == 422, params
        assert r.headers["content-type"].startswith("application/problem+json")


# Linking referrals to people ----------------------------------------------------------------


def test_a_referral_about_a_known_person_links_to_them(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    before = person_count(session)
    # Same name and date of birth (a nickname, another postcode, other case): the same person.
    second = submit(
        client,
        w.ref,
        dv_referral(w.panel.id, victim=victim("JANE", "doe", "1990-04-01", postcode="SE2 0AA")),
    )
    assert person_count(session) == before  # victim and perpetrator both known
    a, b = people_of(client, w.coord, first["id"]), people_of(client, w.coord, second["id"])
    assert a == b
    assert (
        client.get(f"/api/v1/referrals/{second['id']}", headers=w.coord).json()[
            "possible_duplicates"
        ]
        == 0
    )

    case_id = decide(client, w.coord, first["id"], "accept").json()["case_id"]
    case = client.get(f"/api/v1/cases/{case_id}", headers=w.coord).json()
    assert case["subject_person_id"] == a["victim"]
    assert {p["person_id"] for p in case["people"]} == {a["victim"], a["perpetrator"]}
    # The second referral joins the same case: one person, one case.
    assert decide(client, w.coord, second["id"], "accept").json()["case_id"] == case_id

    nickname = submit(
        client,
        w.partner,
        dv_referral(w.panel.id, victim=victim("Bob", "Smith", "1970-01-01")),
    )
    formal = submit(
        client,
        w.partner,
        dv_referral(w.panel.id, victim=victim("Robert", "Smith", "1970-01-01")),
    )
    assert (
        people_of(client, w.coord, nickname["id"])["victim"]
        == people_of(client, w.coord, formal["id"])["victim"]
    )


def test_a_likely_duplicate_is_flagged_and_never_merged(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    jane = people_of(client, w.coord, first["id"])["victim"]
    before = person_count(session)
    # Same family name and date of birth, another first name: a new record, flagged.
    body = dv_referral(w.panel.id, victim=victim("Janet", "Doe", "1990-04-01", postcode="N1 1AA"))
    second = submit(client, w.partner, body)
    assert second["possible_duplicates"] is None  # not for the partner system to know
    seen = client.get(f"/api/v1/referrals/{second['id']}", headers=w.coord).json()
    assert seen["possible_duplicates"] >= 1
    janet = people_of(client, w.coord, second["id"])["victim"]
    assert janet != jane
    assert person_count(session) == before + 1
    session.expire_all()
    suspicion = session.get(PersonDuplicate, (uuid.UUID(janet), uuid.UUID(jane)))
    assert suspicion is not None
    assert suspicion.status == "open"
    assert suspicion.score >= 0.6
    # Both records survive, each with their own name.
    found = search(client, w.coord, name="Doe", date_of_birth="1990-04-01")
    assert {c["person"]["given_name"] for c in found} == {"Jane", "Janet"}
    # Someone unrelated raises no suspicion.
    other = submit(
        client, w.partner, dv_referral(w.panel.id, victim=victim("Una", "Related", "1950-05-05"))
    )
    assert (
        client.get(f"/api/v1/referrals/{other['id']}", headers=w.coord).json()[
            "possible_duplicates"
        ]
        == 0
    )


def test_someone_new_named_twice_in_one_referral_is_matched_against_themselves(
    client: TestClient, session: Session, security: Security
) -> None:
    """The people of a referral are matched from lookups read with the panel, ahead of any
    record it makes; once it makes one, a later entry that could find that record is looked
    up again. With a date of birth the second entry is the first's record; without, the
    second is a new record flagged against the first, as when they come in two referrals."""
    w = world(session, security)
    before = person_count(session)
    born = {"given_name": "Sam", "family_name": "Twiceborn", "date_of_birth": "1991-01-01"}
    body = dv_referral(w.panel.id, victim=born)
    body["people"][1]["details"] = dict(born)  # type: ignore[index]
    r = client.post("/api/v1/referrals", json=body, headers=w.coord)
    assert r.status_code == 201, r.text
    roles = people_of(client, w.coord, r.json()["id"])
    assert roles["victim"] == roles["perpetrator"]
    assert person_count(session) == before + 1

    unborn = {"given_name": "Alex", "family_name": "Twicenamed", "postcode": "DA6 7AT"}
    body = dv_referral(w.panel.id, victim=unborn)
    body["people"][1]["details"] = dict(unborn)  # type: ignore[index]
    r = client.post("/api/v1/referrals", json=body, headers=w.coord)
    assert r.status_code == 201, r.text
    assert r.json()["possible_duplicates"] == 1
    roles = people_of(client, w.coord, r.json()["id"])
    assert roles["victim"] != roles["perpetrator"]
    assert person_count(session) == before + 3


def test_an_agency_identifier_links_to_the_person_who_holds_it(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    ident = [{"agency_id": str(w.police.id), "identifier": "PNC-99/123456X"}]
    first = submit(
        client,
        w.partner,
        dv_referral(
            w.panel.id, victim={**victim("Kim", "Lee", "1980-01-01"), "agency_identifiers": ident}
        ),
    )
    # Married since, moved: the identifier still finds her.
    second = submit(
        client,
        w.partner,
        dv_referral(
            w.panel.id,
            victim={**victim("Kim", "Park", "1980-01-01", "E1 1AA"), "agency_identifiers": ident},
        ),
    )
    assert (
        people_of(client, w.coord, first["id"])["victim"]
        == people_of(client, w.coord, second["id"])["victim"]
    )
    bad = dv_referral(
        w.panel.id,
        victim={
            **victim("No", "Agency", "1981-01-01"),
            "agency_identifiers": [{"agency_id": str(uuid.uuid4()), "identifier": "X1"}],
        },
    )
    r = client.post("/api/v1/referrals", json=bad, headers=w.partner)
    assert r.status_code == 422


def test_a_referral_may_name_a_known_person_by_id(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    first = submit(client, w.partner, dv_referral(w.panel.id))
    jane = people_of(client, w.coord, first["id"])["victim"]
    body = dv_referral(w.panel.id)
    body["people"][0] = {"role": "victim", "person_id": jane}
    # The coordinator (whose council may refer) sees Jane and may name her.
    by_id = submit(client, w.coord, body)
    assert people_of(client, w.coord, by_id["id"])["victim"] == jane
    # A referrer who cannot see her may not: her id must not confirm she exists.
    r = client.post("/api/v1/referrals", json=body, headers=w.partner)
    assert r.status_code == 422
    body["people"][0] = {"role": "victim", "person_id": str(uuid.uuid4())}
    assert client.post("/api/v1/referrals", json=body, headers=w.coord).status_code == 422


# Reading a person, and safe contact details -----------------------------------------------------


def test_safe_contact_details_only_for_those_who_need_them(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    ids = people_of(client, w.coord, referral["id"])
    victim_id = ids["victim"]
    case_id = decide(client, w.coord, referral["id"], "accept").json()["case_id"]
    system = make_client(session, security, w.police, [Scope.CASES_READ])
    system_headers = bearer(client_token(security, system))
    # Members other than the panel's managers read her only once her case is published.
    for member in (w.idva_rep, w.rep, w.observer, system_headers):
        r = client.get(f"/api/v1/people/{victim_id}", headers=member)
        assert r.status_code == 404, r.text
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case_id])

    def read(headers: Headers) -> dict[str, Any]:
        r = client.get(f"/api/v1/people/{victim_id}", headers=headers)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    coordinator_view = read(w.coord)
    assert coordinator_view["safe_contact"] == {**SAFE, "email": None, "notes": None}
    assert coordinator_view["given_name"] == "Jane"
    assert coordinator_view["date_of_birth"] == "1990-04-01"
    assert read(w.chair)["safe_contact"]["phone"] == SAFE["phone"]
    # The IDVA represents the victim: they need it.
    assert read(w.idva_rep)["safe_contact"]["phone"] == SAFE["phone"]
    # A plain representative of another agency, and an observer, do not.
    assert read(w.rep)["safe_contact"] is None
    assert read(w.observer)["safe_contact"] is None
    [hit] = search(client, w.rep, name="Jane Doe")
    assert hit["person"]["safe_contact"] is None
    [hit] = search(client, w.coord, name="Jane Doe")
    assert hit["person"]["safe_contact"]["phone"] == SAFE["phone"]
    # A partner system reading cases of its panel does not either.
    assert read(system_headers)["safe_contact"] is None


def test_running_one_panel_does_not_unlock_safe_contacts_on_another(
    client: TestClient, session: Session, security: Security
) -> None:
    """A coordinator of panel A who only represents their agency on panel B sees B's victims
    as any representative does: without their safe contact details."""
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    victim_id = people_of(client, w.coord, referral["id"])["victim"]
    case_id = decide(client, w.coord, referral["id"], "accept").json()["case_id"]
    elsewhere = make_panel(session, "community_marac", [w.police])
    police_user, police_headers = person_headers(
        session, security, w.police, w.panel, "representative"
    )
    give_role(session, elsewhere, police_user.id, "coordinator")
    # Running panel B does not open panel A's cases either: only publication does.
    r = client.get(f"/api/v1/people/{victim_id}", headers=police_headers)
    assert r.status_code == 404
    assert search(client, police_headers, name="Jane Doe") == []
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case_id])
    r = client.get(f"/api/v1/people/{victim_id}", headers=police_headers)
    assert r.status_code == 200
    assert r.json()["safe_contact"] is None
    [hit] = search(client, police_headers, name="Jane Doe")
    assert hit["person"]["safe_contact"] is None


def test_reading_a_person_needs_a_case_or_referral_you_may_see(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    referral = submit(client, w.partner, dv_referral(w.panel.id))
    victim_id = people_of(client, w.coord, referral["id"])["victim"]
    assert client.get(f"/api/v1/people/{victim_id}", headers=w.coord).status_code == 200
    assert client.get(f"/api/v1/people/{victim_id}", headers=w.rep).status_code == 404
    assert client.get(f"/api/v1/people/{uuid.uuid4()}", headers=w.coord).status_code == 404
    assert client.get("/api/v1/people/not-a-uuid", headers=w.coord).status_code == 422
    admin = admin_headers(session, security)
    assert client.get(f"/api/v1/people/{victim_id}", headers=admin).status_code == 403
    # The referrer (a partner system without case access) cannot read people.
    assert client.get(f"/api/v1/people/{victim_id}", headers=w.partner).status_code == 403
    # Once triaged, the representative reads her only when her case is on a published agenda.
    case_id = decide(client, w.coord, referral["id"], "accept").json()["case_id"]
    assert client.get(f"/api/v1/people/{victim_id}", headers=w.rep).status_code == 404
    publish_cases(client, w.coord, w.panel.id, w.chair_user.id, [case_id])
    assert client.get(f"/api/v1/people/{victim_id}", headers=w.rep).status_code == 200
    # Excluding an agency from the case hides its people from that agency.
    r = client.post(
        f"/api/v1/cases/{case_id}/exclusions",
        json={"agency_id": str(w.police.id), "reason": "The perpetrator works there"},
        headers=w.coord,
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/api/v1/people/{victim_id}", headers=w.rep).status_code == 404
    assert search(client, w.rep, name="Jane Doe") == []


def test_a_known_person_is_found_however_many_share_a_postcode_or_birthday(
    client: TestClient, session: Session, security: Security
) -> None:
    """Hundreds of people at one block of flats, born on one day: the exact match still links
    and still ranks first, whatever order the database returns candidates in."""
    w = world(session, security)
    for i in range(230):
        session.add(
            Person(
                given_name=f"Filler{i}",
                family_name=f"Resident{i}",
                date_of_birth=date(1990, 4, 1),
                postcode="DA6 7AT",
                family_key=f"resident{chr(97 + i % 26)}{i}",
                given_key=f"filler{i}",
                postcode_key="DA67AT",
            )
        )
    session.commit()
    first = submit(client, w.partner, dv_referral(w.panel.id))
    jane = people_of(client, w.coord, first["id"])["victim"]
    for i in range(230, 260):
        session.add(
            Person(
                given_name=f"Later{i}",
                family_name="Doe",
                date_of_birth=date(1990, 4, 1),
                postcode="DA6 7AT",
                family_key="doe",
                given_key=f"later{i}",
                postcode_key="DA67AT",
            )
        )
    session.commit()
    before = person_count(session)
    second = submit(client, w.partner, dv_referral(w.panel.id))
    assert people_of(client, w.coord, second["id"])["victim"] == jane
    assert person_count(session) == before
    found = search(client, w.coord, name="Jane Doe", date_of_birth="1990-04-01")
    assert found[0]["person"]["id"] == jane
    assert found[0]["score"] >= 0.85


@contextmanager
def _identity_locks_held(
    engine: Engine, session: Session, identities: list[tuple[str, str, date]]
) -> Iterator[None]:
    """On PostgreSQL, another transaction holds these identities' locks meanwhile, and the
    test's own waits for a lock fail after two seconds instead of hanging. On SQLite, nothing
    (its one connection is the test's)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as other, other.begin():
        for given, family, born in identities:
            key = identity_lock_key(name_key(family), given_key(given), born)
            other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        session.execute(text("SET LOCAL lock_timeout = '2s'"))
        yield


def test_a_referral_about_known_people_never_waits_on_their_identity_lock(
    client: TestClient, session: Session, security: Security, engine: Engine
) -> None:
    """Someone already known is linked as found, without the lock that keeps two concurrent
    referrals from both creating a new person: a perpetrator named in referral after referral
    would otherwise make them all run one at a time. Shown on PostgreSQL, where another
    transaction holds the lock of both people's identities while the referral is submitted
    (SQLite takes no such lock: its writers already run one at a time)."""
    w = world(session, security)
    known = {}
    for role, given, family, born in (
        ("victim", "Jane", "Doe", date(1990, 4, 1)),
        ("perpetrator", "John", "Roe", date(1988, 2, 2)),
    ):
        person = Person(
            given_name=given,
            family_name=family,
            date_of_birth=born,
            family_key=name_key(family),
            given_key=given_key(given),
        )
        session.add(person)
        known[role] = str(person.id)
    session.commit()
    before = person_count(session)
    with _identity_locks_held(
        engine, session, [("Jane", "Doe", date(1990, 4, 1)), ("John", "Roe", date(1988, 2, 2))]
    ):
        referral = submit(client, w.ref, dv_referral(w.panel.id))
    assert people_of(client, w.coord, referral["id"]) == known
    assert person_count(session) == before


def test_a_referral_that_cannot_take_its_lock_in_time_is_a_503_and_writes_nothing(
    client: TestClient, session: Session, security: Security, engine: Engine
) -> None:
    """A new person's referral waits for their identity's lock. When the database gives up
    waiting (a lock timeout here; a deadlock or a lost connection alike), the partner is told
    to send it again: 503 problem+json with Retry-After, not a 500, and nothing is kept. On
    SQLite there is no such lock, and the referral goes through."""
    w = world(session, security)
    before = person_count(session)
    referrals = session.scalar(select(func.count()).select_from(Referral))
    with _identity_locks_held(engine, session, [("Jane", "Doe", date(1990, 4, 1))]):
        r = client.post("/api/v1/referrals", json=dv_referral(w.panel.id), headers=w.ref)
    if engine.dialect.name == "postgresql":
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "1"
        assert r.json()["type"] == "urn:safeguarding-panels:problem:busy"
        assert person_count(session) == before
        assert session.scalar(select(func.count()).select_from(Referral)) == referrals
    else:
        assert r.status_code == 201, r.text


def test_only_a_busy_or_unavailable_database_is_transient() -> None:
    busy = [
        psycopg.errors.LockNotAvailable(),
        psycopg.errors.DeadlockDetected(),
        psycopg.errors.SerializationFailure(),
        psycopg.errors.QueryCanceled(),
        psycopg.errors.AdminShutdown(),
        psycopg.errors.TooManyConnections(),
        sqlite3.OperationalError("database is locked"),
    ]
    faults = [
        psycopg.errors.UndefinedTable(),
        psycopg.errors.SyntaxError(),
        sqlite3.OperationalError("no such table: person"),
        ValueError("database is locked"),
    ]
    assert [transient(e) for e in busy] == [True] * len(busy)
    assert [transient(e) for e in faults] == [False] * len(faults)
    wrapped = OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))
    assert transient(wrapped)


def test_the_identity_lock_key_is_stable_and_fits_a_postgresql_bigint() -> None:
    key = identity_lock_key("roe", "john", date(1988, 2, 2))
    assert key == identity_lock_key("roe", "john", date(1988, 2, 2))
    assert key != identity_lock_key("roe", "john", date(1988, 2, 3))
    assert -(2**63) <= key < 2**63


def _plan(session: Session, sql: str, params: list[Any], sqlite_: bool) -> str:
    if sqlite_:
        rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(params))
        return "\n".join(str(r[3]) for r in rows)
    rows = session.connection().exec_driver_sql("EXPLAIN " + sql, tuple(params))
    return "\n".join(str(r[0]) for r in rows)


def test_every_matching_lookup_reads_people_through_an_index(
    session: Session, engine: Engine
) -> None:
    """Matching must cost the same with a million people recorded as with ten: each of its
    lookups reads person through an index, whatever the planner's statistics say.

    The lookups used to be gathered as ``person.id IN (...)``; on SQLite, with statistics
    gathered while there were few people (as a new partnership's first ``ANALYZE`` has them),
    that plan scanned every person for every lookup, and a referral's cost grew with every
    person recorded. Here the statistics are gathered over five people. On PostgreSQL, which
    reads a small table whole whatever its indexes, sequential scans are discouraged instead,
    so that the plan shows whether an index can serve each lookup at all."""
    sqlite_ = engine.dialect.name == "sqlite"
    for i in range(5):
        session.add(
            Person(
                given_name="Jane",
                family_name=f"Doe{'x' * i}",
                date_of_birth=date(1990, 4, 1 + i),
                postcode=f"DA{i} 1AA",
                family_key=name_key(f"Doe{'x' * i}"),
                given_key="jane",
                postcode_key=f"DA{i}1AA",
            )
        )
    session.flush()
    session.execute(text("ANALYZE"))
    if not sqlite_:
        session.execute(text("SET LOCAL enable_seqscan = off"))
    raw = Raw(session)
    actor = Actor(kind=ActorKind.USER, id=uuid.uuid4(), agency_id=uuid.uuid4())
    queries = [
        Query("doe", None, None, None),
        Query("doe", "jane", None, None),
        Query(None, None, date(1990, 4, 1), None),
        Query(None, None, None, "DA01AA"),
        Query("doe", "jane", date(1990, 4, 1), None),
        Query("doe", "jane", date(1990, 4, 1), "DA01AA"),
    ]
    for query in queries:
        statement = lookup(raw, actor, query, visible_only=False)
        assert statement is not None
        plan = _plan(session, *statement, sqlite_)
        assert "person" in plan, plan
        if sqlite_:
            assert "SCAN person" not in plan, (query, plan)
        else:
            assert "Seq Scan on person" not in plan, (query, plan)
        found = scored(raw, query, raw.all_compiled(*statement))
        assert [c.family_name for c, _, _ in found][:1] == ["Doe"], query
