"""A read on a database server may start from the actor its token's principal gave a moment
ago (app.services.principals), confirmed by the statement that writes its audit event: what
it answers must be what a fresh lookup of the principal would have answered."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from app.actor import Actor, ActorKind
from app.db import Database
from app.models.audit import AuditEvent
from app.models.referral import Referral
from app.models.user import User
from app.permissions import Role
from app.rawsql import Raw
from app.security import AccessClaims, Security
from app.services.principals import Principals, Proof, unconfirmed
from tests.builders import PASSWORD, dv_referral, make_agency
from tests.conferencing import new_case
from tests.test_referrals import World, events, person_headers, submit, world


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the units send through the driver, from now on."""
    sent: list[str] = []
    execute = Raw._execute

    def counted(self: Raw, sql: str, params: Any, *, compiled: bool = False) -> Any:
        sent.append(sql)
        return execute(self, sql, params, compiled=compiled)

    monkeypatch.setattr(Raw, "_execute", counted)
    return sent


def test_a_remembered_read_sends_one_statement_fewer_on_a_database_server(
    client: TestClient, session: Session, security: Security, db: Database, monkeypatch: Any
) -> None:
    w = world(session, security)
    url = f"/api/v1/cases/{new_case(client, w)['id']}"
    sent = _statements(monkeypatch)
    _, coordinator = person_headers(session, security, w.council, w.panel, "coordinator")
    client.get(url, headers=coordinator).raise_for_status()  # their first request
    first = len(sent)
    sent.clear()
    client.get(url, headers=coordinator).raise_for_status()
    if db.dialect == "sqlite":
        # A lookup costs no message there: every read looks its principal up.
        assert db.principals is None and len(sent) == first
    else:
        assert len(sent) == first - 1, sent
        assert not any("FROM user_account u JOIN agency a" in s and "1 FROM" not in s for s in sent)
        assert events(session, "case.read", url.rsplit("/", 1)[1])[-1].actor_id is not None


@pytest.fixture
def read_once(client: TestClient, session: Session, security: Security) -> tuple[World, str]:
    """A world, and the url of a case its coordinator has read (so on a database server
    the coordinator's actor is remembered)."""
    w = world(session, security)
    url = f"/api/v1/cases/{new_case(client, w)['id']}"
    assert client.get(url, headers=w.coord).status_code == 200
    return w, url


def test_a_user_disabled_after_a_read_is_refused_on_the_next(
    client: TestClient, session: Session, read_once: tuple[World, str]
) -> None:
    w, url = read_once
    case_id = url.rsplit("/", 1)[1]
    assert client.get(url, headers=w.coord).status_code == 200  # on the remembered actor
    reads = len(events(session, "case.read", case_id))
    w.coordinator.is_active = False
    session.commit()
    # A request the remembered actor would be refused (404 for a case it cannot see) is
    # refused as a fresh lookup refuses it: 401.
    assert client.get(f"/api/v1/cases/{uuid.uuid4()}", headers=w.coord).status_code == 401
    r = client.get(url, headers=w.coord)
    assert r.status_code == 401, r.text
    assert len(events(session, "case.read", case_id)) == reads  # no read recorded


def test_an_agency_disabled_after_a_read_stops_its_users_on_the_next(
    client: TestClient, session: Session, read_once: tuple[World, str]
) -> None:
    w, url = read_once
    assert client.get("/api/v1/actions", headers=w.coord).status_code == 200
    w.council.is_active = False
    session.commit()
    assert client.get(url, headers=w.coord).status_code == 401
    assert client.get("/api/v1/actions", headers=w.coord).status_code == 401


def test_roles_changed_after_a_read_apply_on_the_next(
    client: TestClient, session: Session, read_once: tuple[World, str]
) -> None:
    w, url = read_once
    # The same token, the user now an auditor: auditors see no case content.
    w.coordinator.roles = [Role.AUDITOR.value]
    session.commit()
    assert client.get(url, headers=w.coord).status_code in (403, 404)
    w.coordinator.roles = []
    session.commit()
    assert client.get(url, headers=w.coord).status_code == 200


def test_a_user_moved_to_another_agency_reads_as_that_agency_at_once(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    case = new_case(client, w)
    url = f"/api/v1/cases/{case['id']}"
    mover, headers = person_headers(session, security, w.council, w.panel, "coordinator")
    assert client.get(url, headers=headers).status_code == 200
    r = client.post(
        f"/api/v1/cases/{case['id']}/exclusions",
        json={"agency_id": str(w.idva.id), "reason": "Employs the alleged perpetrator"},
        headers=w.coord,
    )
    assert r.status_code == 201, r.text
    mover.agency_id = w.idva.id  # now the excluded agency's
    session.commit()
    assert client.get(url, headers=headers).status_code == 404


def test_the_remembered_actors_are_bounded() -> None:
    principals = Principals(size=2)
    proof = Proof("SELECT 1", ())
    claims = [
        AccessClaims("user", uuid.uuid4(), jti="j", issued_at=0, scope="", epoch=0)
        for _ in range(3)
    ]
    for c in claims:
        principals.put(c, Actor(kind=ActorKind.USER, id=c.subject_id), proof)
    assert principals.get(claims[2]) is not None
    assert principals.get(claims[0]) is None and principals.get(claims[1]) is None
    principals.forget(claims[2])
    assert principals.get(claims[2]) is None
    # Another epoch (a password or second factor changed) is another principal.
    renewed = AccessClaims("user", claims[1].subject_id, jti="j", issued_at=0, scope="", epoch=1)
    principals.put(claims[1], Actor(kind=ActorKind.USER), proof)
    assert principals.get(renewed) is None


# Writes ----------------------------------------------------------------------------------------
def _referrals(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Referral)) or 0)


def _lookups(sent: list[str]) -> int:
    """How many of these statements looked a user up afresh (not a proof)."""
    return sum("FROM user_account u JOIN agency a" in s and "1 FROM" not in s for s in sent)


def test_a_remembered_write_looks_its_principal_up_no_more_on_a_database_server(
    client: TestClient, session: Session, security: Security, db: Database, monkeypatch: Any
) -> None:
    """The second referral of a referrer starts from the actor the first gave, and is
    confirmed with its COMMIT: one statement (a message) fewer. On SQLite every unit looks its
    principal up (it costs no message there)."""
    w = world(session, security)
    sent = _statements(monkeypatch)
    submit(client, w.ref, dv_referral(w.panel.id))
    assert _lookups(sent) == 1
    sent.clear()
    second = submit(client, w.ref, dv_referral(w.panel.id))
    assert _lookups(sent) == (1 if db.dialect == "sqlite" else 0), sent
    assert events(session, "referral.submit", second["id"])[-1].actor_id == w.referrer.id


def test_a_user_disabled_after_a_write_is_refused_on_the_next_and_nothing_is_kept(
    client: TestClient, session: Session, security: Security
) -> None:
    w = world(session, security)
    submit(client, w.ref, dv_referral(w.panel.id))  # remembered on a database server
    before = _referrals(session)
    w.referrer.is_active = False
    session.commit()
    r = client.post("/api/v1/referrals", json=dv_referral(w.panel.id), headers=w.ref)
    assert r.status_code == 401, r.text
    assert _referrals(session) == before


def test_a_referrer_made_an_auditor_after_a_write_is_refused_on_the_next_and_nothing_is_kept(
    client: TestClient, session: Session, security: Security
) -> None:
    """The remembered actor would pass the permission check; the fresh one does not (an
    auditor may not refer). Nothing the first run wrote is kept, and the refusal is audited
    as the fresh lookup's."""
    w = world(session, security)
    submit(client, w.ref, dv_referral(w.panel.id))
    before = _referrals(session)
    w.referrer.roles = [Role.AUDITOR.value]
    session.commit()
    r = client.post("/api/v1/referrals", json=dv_referral(w.panel.id), headers=w.ref)
    assert r.status_code == 403, r.text
    assert _referrals(session) == before
    refused = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access.refused",  # type: ignore[arg-type]
            AuditEvent.actor_id == w.referrer.id,  # type: ignore[arg-type]
        )
    ).all()
    assert len(refused) == 1 and (refused[0].detail or {}).get("status") == 403


def test_a_write_that_changes_its_own_principal_is_done_once(
    client: TestClient, session: Session, security: Security
) -> None:
    """Changing one's password changes the row the remembered actor's proof reads: on a
    database server that unit is run again from a fresh lookup, and must still be done once,
    with one audit event, as on SQLite."""
    user, headers = person_headers(session, security, make_agency(session, "Agency P"))
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # remembered
    new = "a-brand-new-long-passphrase"
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=headers,
    )
    assert r.status_code == 204, r.text
    session.expire_all()
    changed = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "self.password_change",  # type: ignore[arg-type]
            AuditEvent.actor_id == user.id,  # type: ignore[arg-type]
        )
    ).all()
    assert len(changed) == 1
    stored = session.get(User, user.id)
    assert stored is not None and security.verify_secret(new, stored.password_hash)
    assert client.get("/api/v1/me", headers=headers).status_code == 401  # sessions ended


def test_only_the_confirmation_failing_is_taken_for_a_changed_principal() -> None:
    """Any other error of a write's COMMIT message stays what it is (a conflict, a 503, ...)
    rather than running the write again."""
    failed = psycopg.errors.InvalidTextRepresentation(
        'invalid input syntax for type integer: "principal-unconfirmed"'
    )
    assert unconfirmed(failed)
    assert unconfirmed(DataError("SELECT …", (), failed))
    for other in (
        psycopg.errors.InvalidTextRepresentation('invalid input syntax for type integer: "x"'),
        psycopg.errors.DivisionByZero("division by zero"),
        psycopg.errors.UniqueViolation('"principal-unconfirmed"'),
        ValueError("principal-unconfirmed"),
    ):
        assert not unconfirmed(other)


# appended to tests/test_remembered_principals.py once it works


def test_a_remembered_referral_is_two_messages_on_a_database_server(
    client: TestClient, session: Session, security: Security, db: Database, monkeypatch: Any
) -> None:
    """A referral about someone new, from a referrer seen a moment ago: its panel and
    matching reads go in one message (with BEGIN, when the unit owns its transaction), its
    writes, audit event and proof in another (with COMMIT). Every message the units send,
    counted at the driver; here the units run inside the test's transaction, so BEGIN and
    COMMIT are a SAVEPOINT and its RELEASE, each a message of its own."""
    w = world(session, security)

    def someone_new(family: str) -> dict[str, object]:
        # Known by name only, as the benchmark's victims: no identity to lock, no one alike.
        return dv_referral(w.panel.id, victim={"given_name": "Jane", "family_name": family})

    for family in ("Abbot", "Barker"):  # the second prepares the proof's statement
        submit(client, w.ref, someone_new(family))
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    submit(client, w.ref, someone_new("Carter"))
    if db.dialect == "sqlite":
        assert sent == []  # no server, no messages
        return
    work = [s for s in sent if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sent) == len(work) + 2, sent
    assert len(work) == 2, [w[:70] for w in work]
    assert "user_account" not in work[0], work  # no lookup of the principal
    assert "CAST(CASE WHEN EXISTS" in work[1] or work[1].count("EXECUTE") >= 3, work
