"""A small demo partnership modelled on the London Borough of Bexley's CSP (development only).

Passwords, TOTP secrets and the API client secret are fixed and printed so that the README's
walk-through works as written. Running the seed again changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.config import Settings
from app.db import Database
from app.models.agency import Agency, AgencyKind
from app.models.api_client import ApiClient
from app.models.base import utcnow
from app.models.user import User
from app.permissions import Role, Scope
from app.security import Security
from app.seed_casework import seed_casework

DEMO_PASSWORD = "demo-password-2026"
DOMAIN = "bexley-csp.example.org"
CLIENT_ID = uuid.UUID("6f1c0a52-3b1e-4d55-9a51-6d2b8e0c7a11")
CLIENT_SECRET = "demo-met-police-client-secret-2026"
TOTP = {
    "admin": "BEXLEYADMINDEMOTOTPSECRETAAAAAAA",
    "auditor": "BEXLEYAUDITORDEMOTOTPSECRETAAAAA",
}

AGENCIES: list[tuple[str, str, AgencyKind]] = [
    ("London Borough of Bexley", "LBB", AgencyKind.LOCAL_AUTHORITY),
    ("Metropolitan Police Service", "MPS", AgencyKind.POLICE),
    ("London Fire Brigade", "LFB", AgencyKind.FIRE),
    ("National Probation Service", "NPS", AgencyKind.PROBATION),
    ("NHS Bexley Clinical Commissioning Group", "NHS Bexley", AgencyKind.HEALTH),
    ("Bexley Women's Aid", "BWA", AgencyKind.IDVA_SERVICE),
    ("Bexley Housing Partnership", "BHP", AgencyKind.HOUSING),
    ("St Giles Trust", "St Giles", AgencyKind.VOLUNTARY),
    ("Victim Support London", "VSL", AgencyKind.VOLUNTARY),
]

# (local part, full name, job title, agency short name, system roles)
USERS: list[tuple[str, str, str, str, list[Role]]] = [
    ("admin", "Alex Admin", "CSP systems administrator", "LBB", [Role.ADMIN]),
    ("auditor", "Aisha Auditor", "Data protection officer", "LBB", [Role.AUDITOR]),
    ("police.admin", "Priya Patel", "MASH systems lead", "MPS", [Role.AGENCY_ADMIN]),
    ("coordinator", "Chris Coordinator", "MARAC coordinator", "LBB", []),
    ("chair", "Dana Chair", "Detective Inspector, MARAC chair", "MPS", []),
    ("police.rep", "Sam Officer", "Detective Constable", "MPS", []),
    ("idva", "Imani Advisor", "Independent domestic violence advisor", "BWA", []),
    ("probation.rep", "Pat Probation", "Probation officer", "NPS", []),
    ("health.rep", "Hana Health", "Safeguarding nurse", "NHS Bexley", []),
    ("fire.rep", "Finn Fire", "Community safety officer", "LFB", []),
    ("housing.referrer", "Rory Referrer", "Housing officer", "BHP", []),
]


def credentials() -> list[str]:
    lines = [f"Demo users (password for all: {DEMO_PASSWORD}):"]
    for local, name, title, agency, roles in USERS:
        role_text = ", ".join(r.value for r in roles) or "agency user"
        email = f"{local}@{DOMAIN}"
        lines.append(f"  {email:<42} {role_text:<13} {name}, {title} ({agency})")
    for local, secret in TOTP.items():
        lines.append(
            f"  {local} needs a one-time code: .venv/bin/python -c "
            f"\"import pyotp; print(pyotp.TOTP('{secret}').now())\""
        )
    lines.append(f"Demo API client (Metropolitan Police): client_id={CLIENT_ID}")
    lines.append(f"  client_secret={CLIENT_SECRET}")
    return lines


def seed(settings: Settings) -> list[str]:
    """Create the demo partnership once; return the lines to print."""
    security = Security(settings)
    db = Database.from_settings(settings)
    system = Actor.system()
    with db.session() as session:
        if session.scalars(select(Agency).where(Agency.short_name == "LBB")).first():  # type: ignore[arg-type]
            db.dispose()
            return ["Demo partnership already present; nothing changed.", *credentials()]
        by_short: dict[str, Agency] = {}
        for name, short, kind in AGENCIES:
            agency = Agency(name=name, short_name=short, kind=kind.value)
            session.add(agency)
            by_short[short] = agency
        session.flush()
        for agency in by_short.values():
            audit.record(
                session,
                system,
                AuditAction.AGENCY_CREATE,
                resource_type="agency",
                resource_id=agency.id,
                detail={"via": "seed-demo"},
            )
        password_hash = security.hash_secret(DEMO_PASSWORD)
        users: dict[str, User] = {}
        for local, name, title, short, roles in USERS:
            secret = TOTP.get(local)
            user = User(
                agency_id=by_short[short].id,
                email=f"{local}@{DOMAIN}",
                full_name=name,
                job_title=title,
                roles=[r.value for r in roles],
                password_hash=password_hash,
                password_changed_at=utcnow(),
                totp_secret_enc=security.encrypt_totp(secret) if secret else None,
            )
            session.add(user)
            session.flush()
            users[local] = user
            audit.record(
                session,
                system,
                AuditAction.USER_CREATE,
                resource_type="user",
                resource_id=user.id,
                detail={"via": "seed-demo"},
            )
        client = ApiClient(
            id=CLIENT_ID,
            agency_id=by_short["MPS"].id,
            name="Metropolitan Police referral gateway",
            scopes=[
                Scope.AGENCIES_READ.value,
                Scope.PANELS_READ.value,
                Scope.REFERRALS_WRITE.value,
                Scope.CASES_READ.value,
                Scope.CONFERENCES_READ.value,
                Scope.ACTIONS_WRITE.value,
            ],
            secret_hash=security.hash_secret(CLIENT_SECRET),
        )
        session.add(client)
        session.flush()
        audit.record(
            session,
            system,
            AuditAction.API_CLIENT_CREATE,
            resource_type="api_client",
            resource_id=client.id,
            detail={"via": "seed-demo"},
        )
        casework = seed_casework(session, by_short, users)
        session.commit()
    db.dispose()
    return ["Demo partnership created.", *casework, *credentials()]
