"""The data a benchmark run needs, seeded with the service's own code and models.

``seed(settings)`` runs every function in ``SEEDERS`` in order against a freshly migrated
database. Each seeder adds rows and publishes what the scenarios refer to: ids that path
templates name (``fixture.ids``) and principals whose tokens scenarios send
(``fixture.principals``). Ids are lists: scenarios cycle through them, one per request. A
later feature appends its own seeder, e.g. one that creates 10,000 cases and publishes
their ids as ``fixture.ids["case_id"]``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.config import Settings
from app.db import Database
from app.models.agency import Agency, AgencyKind
from app.models.user import User
from app.security import Security


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
        for name, local in (("admin", "admin"), ("user", "coordinator")):
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


SEEDERS: list[Seeder] = [seed_demo_partnership, seed_agencies]


def seed(settings: Settings) -> Fixture:
    """Run every seeder against the (migrated) database named by ``settings``."""
    fixture = Fixture()
    db = Database.from_settings(settings)
    try:
        for seeder in SEEDERS:
            seeder(settings, db, fixture)
    finally:
        db.dispose()
    return fixture
