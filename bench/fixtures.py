"""The data a benchmark run needs, seeded with the service's own code and models.

``seed(settings)`` runs every function in ``SEEDERS`` in order against a freshly migrated
database. Each seeder adds rows and publishes what the scenarios refer to: ids that path
templates name (``fixture.ids``) and principals whose tokens scenarios send
(``fixture.principals``). Ids are lists: scenarios cycle through them, one per request. A
seeder may be skipped when no selected scenario needs its data: ``seed_cases`` (N cases on
the demo DV MARAC, published as ``fixture.ids["case_id"]``) runs only when ``fixture.cases``
is positive, since a million of them take minutes to insert.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlmodel import col

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.config import Settings
from app.db import Database
from app.models.action import Action
from app.models.agency import Agency, AgencyKind
from app.models.case import Case, CasePerson, CaseStatus
from app.models.conference import Conference, Listing
from app.models.panel import Panel, PanelMember
from app.models.person import Person
from app.models.referral import Decision, Referral, ReferralPerson, ReferralStatus
from app.models.user import User
from app.security import Security
from bench.scenarios import dv_referral


@dataclass(frozen=True)
class Principal:
    """Whom a token is minted for (see Security.create_access_token)."""

    kind: str  # "user" | "api_client"
    id: uuid.UUID
    epoch: int
    scope: str = ""


@dataclass
class Fixture:
    ids: dict[str, list[str]] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    # How many cases seed_cases inserts (0: none, and no case_id published).
    cases: int = 0

    def token(self, security: Security, name: str) -> str:
        """A fresh access token for the named principal (tokens expire, so mint per run)."""
        p = self.principals[name]
        return security.create_access_token(p.kind, p.id, p.scope, p.epoch)


Seeder = Callable[[Settings, Database, Fixture], None]


BENCH_AGENCIES = 64


def seed_demo_partnership(settings: Settings, db: Database, fixture: Fixture) -> None:
    """`panels seed-demo`'s partnership, with an admin and an ordinary user to act as.

    The demo admin has a TOTP factor enrolled, so its token carries full admin permissions
    (agency:write); the coordinator is an ordinary agency user (agency:read).
    """
    from app.seed import DOMAIN
    from app.seed import seed as seed_demo

    seed_demo(settings)
    with db.session() as session:
        for name, local in (
            ("admin", "admin"),
            ("user", "coordinator"),
            # The DV MARAC's coordinator (sees all its cases) and a police representative on
            # it (whose agency may refer to it).
            ("coordinator", "coordinator"),
            ("referrer", "police.rep"),
        ):
            user = session.scalars(
                select(User).where(User.email == f"{local}@{DOMAIN}")  # type: ignore[arg-type]
            ).one()
            fixture.principals[name] = Principal("user", user.id, user.auth_epoch)
        admin = session.get(User, fixture.principals["admin"].id)
        if admin is None or admin.totp_secret_enc is None:
            raise RuntimeError("the demo admin has no second factor: its token would be limited")


def seed_agencies(settings: Settings, db: Database, fixture: Fixture) -> None:
    """BENCH_AGENCIES more agencies (with their audit events, as the API would record them),
    published as ``agency_id``."""
    system = Actor.system()
    with db.session() as session:
        agencies = [
            Agency(
                name=f"Bench partner agency {i:03d}",
                short_name=f"BENCH{i:03d}",
                kind=AgencyKind.VOLUNTARY.value,
                contact_email=f"bench-{i:03d}@example.org",
            )
            for i in range(BENCH_AGENCIES)
        ]
        session.add_all(agencies)
        session.flush()
        for agency in agencies:
            audit.record(
                session,
                system,
                AuditAction.AGENCY_CREATE,
                resource_type="agency",
                resource_id=agency.id,
                detail={"via": "bench"},
            )
        session.commit()
        fixture.ids["agency_id"] = [str(a.id) for a in agencies]


DV_PANEL = "Bexley Domestic Violence MARAC"
DEFAULT_CASES = 10_000
CASE_CHUNK = 5_000


@contextmanager
def _bulk_load(conn: Connection, settings: Settings, panel_id: uuid.UUID) -> Iterator[None]:
    """Rows of one panel inserted in bulk, in this transaction. Every case or action inserted
    sets its panel's agenda token (the triggers of migration 7c41e2a9b053); on PostgreSQL each
    update of the one panel row in one transaction finds the row at the end of a longer chain
    of versions, and two million actions did not load in 9 minutes (fifteenth round). There
    the load runs without triggers (the rows are the seeder's own, consistent by construction)
    and the token is set once after it; SQLite updates the row in place."""
    if settings.is_sqlite:
        yield
        return
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    yield
    conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
    conn.execute(
        update(Panel)
        .where(col(Panel.id) == panel_id)
        .values(agenda_token=func.floor(func.random() * 9007199254740991))
    )


# Requests cycle through at most this many case ids (Scenario.url_paths' limit): a random
# sample of the whole table, so that reads touch all of it, not its first pages only.
CASE_ID_SAMPLE = 10_000
# The cases' creation times are spread evenly over this period before now.
CASE_SPAN = timedelta(days=5 * 365)


def _letters(i: int) -> str:
    """i in base 26 as lower-case letters: names whose matching keys (letters only) differ."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out = chr(97 + r) + out
        if i == 0:
            return out


def seed_cases(settings: Settings, db: Database, fixture: Fixture) -> None:
    """``fixture.cases`` open cases on the demo DV MARAC, each with its own subject person
    (and case_person row) and the accepted referral it was opened from (with its
    referral_person row), bulk-inserted with Core executemany, CASE_CHUNK rows a statement
    and one transaction per chunk. Publishes ``case_id`` (a sample) and ``dv_panel_id``.

    Without the referrals, the referral table had a handful of rows when the planner's
    statistics were gathered, and PostgreSQL checked each new referral_person's foreign key
    by reading every referral (a plan for a tiny table), slower with every referral the
    referral scenario added: a live partnership has a referral behind every case."""
    from app.services.matching import given_key, name_key

    total = fixture.cases
    with db.session() as session:
        panel = session.scalars(
            select(Panel).where(Panel.name == DV_PANEL)  # type: ignore[arg-type]
        ).one()
        panel_id = panel.id
    fixture.ids["dv_panel_id"] = [str(panel_id)]
    if total <= 0:
        return
    person_t, case_t, link_t, referral_t, referred_t = (
        Person.__table__,  # type: ignore[attr-defined]
        Case.__table__,  # type: ignore[attr-defined]
        CasePerson.__table__,  # type: ignore[attr-defined]
        Referral.__table__,  # type: ignore[attr-defined]
        ReferralPerson.__table__,  # type: ignore[attr-defined]
    )
    referral_defaults = _accepted_referral(db, fixture, panel_id)
    now = datetime.now(UTC)
    start = now - CASE_SPAN
    step = CASE_SPAN / total
    case_ids: list[uuid.UUID] = []
    began = time.perf_counter()
    for first in range(0, total, CASE_CHUNK):
        people: list[dict[str, Any]] = []
        cases: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        referrals: list[dict[str, Any]] = []
        referred: list[dict[str, Any]] = []
        for i in range(first, min(first + CASE_CHUNK, total)):
            person_id, case_id, referral_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            created = start + step * i
            given, family = "Bench", f"Case{_letters(i)}"
            people.append(
                {
                    "id": person_id,
                    "given_name": given,
                    "family_name": family,
                    "aliases": [],
                    "date_of_birth": date(1950, 1, 1) + timedelta(days=i % 20_000),
                    "family_key": name_key(family),
                    "given_key": given_key(given),
                    "version": 1,
                    "created_at": created,
                }
            )
            cases.append(
                {
                    "id": case_id,
                    "panel_id": panel_id,
                    "reference": f"BENCH-{i:07d}",
                    "status": CaseStatus.OPEN.value,
                    "stage": "open",
                    "subject_person_id": person_id,
                    "is_repeat": False,
                    "opened_at": created,
                    "version": 1,
                    "created_at": created,
                }
            )
            links.append({"case_id": case_id, "person_id": person_id, "role": "victim"})
            referrals.append(
                {
                    **referral_defaults,
                    "id": referral_id,
                    "referral_date": created.date(),
                    "case_id": case_id,
                    "decided_at": created,
                    "created_at": created,
                }
            )
            referred.append({"referral_id": referral_id, "person_id": person_id, "role": "victim"})
            case_ids.append(case_id)
        with db.session() as session:
            conn = session.connection()
            with _bulk_load(conn, settings, panel_id):
                conn.execute(insert(person_t), people)
                conn.execute(insert(case_t), cases)
                conn.execute(insert(link_t), links)
                conn.execute(insert(referral_t), referrals)
                conn.execute(insert(referred_t), referred)
            session.commit()
        done = first + len(cases)
        if done % 100_000 == 0 or done == total:
            print(
                f"  seeded {done:,} / {total:,} cases ({time.perf_counter() - began:.0f} s)",
                flush=True,
            )
    sample = random.Random(0).sample(case_ids, min(CASE_ID_SAMPLE, len(case_ids)))
    fixture.ids["case_id"] = [str(c) for c in sample]
    fixture.ids["_all_case_ids"] = [str(c) for c in case_ids]


def _accepted_referral(db: Database, fixture: Fixture, panel_id: uuid.UUID) -> dict[str, Any]:
    """The columns every seeded case's referral shares: the referral scenario's form, as the
    police representative submits it, accepted by the DV MARAC's coordinator."""
    from app.panels import PANEL_TYPES

    body = dv_referral()
    dv = PANEL_TYPES["dv_marac"]
    form = dv.form.model_validate({"panel_type": dv.key, **body["form"]})
    assessment = dv.assess(form, dv.defaults)
    referrer_id = fixture.principals["referrer"].id
    with db.session() as session:
        referrer = session.get(User, referrer_id)
        assert referrer is not None
        agency_id = referrer.agency_id
    return {
        name: field.default
        for name, field in Referral.model_fields.items()
        if not field.is_required() and field.default_factory is None
    } | {
        "panel_id": panel_id,
        "status": ReferralStatus.ACCEPTED.value,
        "submitted_by_kind": "user",
        "submitted_by_id": referrer_id,
        "referring_agency_id": agency_id,
        "referrer_name": body["referrer"]["name"],
        "referrer_email": body["referrer"]["email"],
        "crime_reference": body["crime_reference"],
        "form": form.model_dump(mode="json"),
        "assessment": {**assessment.computed, "risk_level": assessment.risk_level},
        "risk_level": assessment.risk_level,
        "consent": body["consent"],
        "is_repeat": False,
        "possible_duplicates": 0,
        "decision": Decision.ACCEPT.value,
        "decided_by_id": fixture.principals["coordinator"].id,
        "version": 1,
    }


ACTIONS_PER_CASE = 2
AGENDA_LENGTH = 20
# Of the seeded actions: a third open and past due, a third open and due, a third done.
_ACTION_MIX = ("overdue", "due", "done")


def seed_conference_work(settings: Settings, db: Database, fixture: Fixture) -> None:
    """For the seeded cases: ACTIONS_PER_CASE actions each, owned in turn by the DV MARAC's
    member agencies (a third overdue, a third due, a third done); and an upcoming conference
    whose published agenda lists AGENDA_LENGTH of the cases. Publishes ``conference_id``."""
    all_ids = fixture.ids.pop("_all_case_ids", [])
    if not all_ids:
        return
    action_t = Action.__table__  # type: ignore[attr-defined]
    with db.session() as session:
        panel_id = uuid.UUID(fixture.ids["dv_panel_id"][0])
        owners = list(
            session.scalars(
                select(col(PanelMember.agency_id)).where(col(PanelMember.panel_id) == panel_id)
            )
        )
        coordinator = fixture.principals["coordinator"].id
        today = date.today()
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for i, case_id in enumerate(all_ids):
            for j in range(ACTIONS_PER_CASE):
                n = i * ACTIONS_PER_CASE + j
                kind = _ACTION_MIX[n % 3]
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "case_id": uuid.UUID(case_id),
                        "panel_id": panel_id,
                        "description": f"Bench action {n}",
                        "owner_agency_id": owners[n % len(owners)],
                        "due_date": today
                        + timedelta(days=(-1 - n % 60) if kind == "overdue" else 1 + n % 60),
                        "priority": "medium",
                        "status": "done" if kind == "done" else "open",
                        "resolved_at": now if kind == "done" else None,
                        "created_by_id": coordinator,
                        "version": 1,
                        "created_at": now,
                    }
                )
        conn = session.connection()
        with _bulk_load(conn, settings, panel_id):
            for first in range(0, len(rows), CASE_CHUNK):
                conn.execute(insert(action_t), rows[first : first + CASE_CHUNK])
        conference = Conference(
            panel_id=panel_id,
            starts_at=now + timedelta(days=14),
            duration_minutes=180,
            location="Civic Offices",
            chair_user_id=coordinator,
            created_by_id=coordinator,
            agenda_published_at=now,
        )
        session.add(conference)
        session.flush()
        for position, case_id in enumerate(fixture.ids["case_id"][:AGENDA_LENGTH], start=1):
            session.add(
                Listing(
                    conference_id=conference.id,
                    case_id=uuid.UUID(case_id),
                    position=position,
                    added_by_id=coordinator,
                )
            )
        session.commit()
        fixture.ids["conference_id"] = [str(conference.id)]


SEEDERS: list[Seeder] = [
    seed_demo_partnership,
    seed_agencies,
    seed_cases,
    seed_conference_work,
]


def seed(settings: Settings, *, cases: int = 0) -> Fixture:
    """Run every seeder against the (migrated) database named by ``settings``; ``cases`` is
    how many cases seed_cases inserts."""
    fixture = Fixture(cases=cases)
    db = Database.from_settings(settings)
    try:
        for seeder in SEEDERS:
            seeder(settings, db, fixture)
        analyze(db)
    finally:
        db.dispose()
    return fixture


def analyze(db: Database) -> None:
    """Gather planner statistics, as a live database has them (PostgreSQL's autovacuum does
    it after bulk changes, but not within seconds of a bulk load): without them PostgreSQL
    plans the agenda's suggestions over 10,000 freshly inserted cases as if the tables were
    empty (6 ms a query instead of 0.2 ms).

    On PostgreSQL, ``VACUUM ANALYZE``: a live database's tables have been vacuumed, and
    otherwise autovacuum does it during the measured runs, on the same two cores (seen: the
    server's CPU per request nearly doubled in the scenarios that ran first)."""
    if db.dialect == "sqlite":
        with db.session() as session:
            session.execute(text("ANALYZE"))
            session.commit()
        return
    assert isinstance(db.bind, Engine)
    with db.bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
        # The load's and the vacuum's WAL (half a gigabyte a few seconds for a million cases)
        # otherwise forces checkpoints that write for most of a minute during the measured
        # run (fifteenth round: the case read's p99 1-2 s at a million).
        connection.execute(text("CHECKPOINT"))
