"""Small builders for test data, and tokens minted the way the service mints them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.models.agency import Agency, AgencyKind
from app.models.api_client import ApiClient
from app.models.base import utcnow
from app.models.panel import Panel, PanelMember, PanelRole
from app.models.user import User
from app.permissions import Role, Scope
from app.security import Security

PASSWORD = "correct-horse-battery-staple"
CLIENT_SECRET = "client-secret-for-tests-0123456789"


_HASHES: dict[str, str] = {}


def hashed(security: Security, secret: str) -> str:
    """Argon2 costs ~20 ms a hash; hash each fixture secret once per run."""
    if secret not in _HASHES:
        _HASHES[secret] = security.hash_secret(secret)
    return _HASHES[secret]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_agency(
    session: Session, name: str | None = None, kind: AgencyKind = AgencyKind.POLICE
) -> Agency:
    agency = Agency(name=name or f"Agency {uuid.uuid4().hex[:8]}", kind=kind.value)
    session.add(agency)
    session.commit()
    return agency


def make_user(
    session: Session,
    security: Security,
    agency: Agency,
    *,
    roles: list[Role] | None = None,
    email: str | None = None,
    password: str = PASSWORD,
    totp_secret: str | None = None,
    is_active: bool = True,
) -> User:
    user = User(
        agency_id=agency.id,
        email=email or f"user-{uuid.uuid4().hex[:10]}@agency.example.org",
        full_name="Test User",
        roles=[r.value for r in roles or []],
        password_hash=hashed(security, password),
        password_changed_at=utcnow(),
        totp_secret_enc=security.encrypt_totp(totp_secret) if totp_secret else None,
        is_active=is_active,
    )
    session.add(user)
    session.commit()
    return user


def make_client(
    session: Session,
    security: Security,
    agency: Agency,
    scopes: list[Scope] | None = None,
    secret: str = CLIENT_SECRET,
) -> ApiClient:
    client = ApiClient(
        agency_id=agency.id,
        name=f"Client {uuid.uuid4().hex[:6]}",
        scopes=[s.value for s in scopes or []],
        secret_hash=hashed(security, secret),
    )
    session.add(client)
    session.commit()
    return client


def user_token(security: Security, user: User, scope: str = "") -> str:
    return security.create_access_token("user", user.id, scope, user.auth_epoch)


def client_token(security: Security, client: ApiClient) -> str:
    return security.create_access_token(
        "api_client", client.id, " ".join(client.scopes), client.auth_epoch
    )


@dataclass
class Principal:
    name: str
    id: uuid.UUID
    agency_id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Principals:
    home: Agency
    other: Agency
    admin: Principal
    auditor: Principal
    agency_admin: Principal
    member: Principal
    client: Principal
    bare_client: Principal

    def all(self) -> list[Principal]:
        return [
            self.admin,
            self.auditor,
            self.agency_admin,
            self.member,
            self.client,
            self.bare_client,
        ]


def make_principals(session: Session, security: Security) -> Principals:
    home = make_agency(session, "Home Agency", AgencyKind.LOCAL_AUTHORITY)
    other = make_agency(session, "Other Agency", AgencyKind.POLICE)

    def person(name: str, roles: list[Role], agency: Agency) -> Principal:
        secret = pyotp.random_base32() if {Role.ADMIN, Role.AUDITOR} & set(roles) else None
        user = make_user(session, security, agency, roles=roles, totp_secret=secret)
        return Principal(name, user.id, agency.id, user_token(security, user))

    def system(name: str, scopes: list[Scope]) -> Principal:
        client = make_client(session, security, other, scopes)
        return Principal(name, client.id, other.id, client_token(security, client))

    return Principals(
        home=home,
        other=other,
        admin=person("admin", [Role.ADMIN], home),
        auditor=person("auditor", [Role.AUDITOR], home),
        agency_admin=person("agency_admin", [Role.AGENCY_ADMIN], other),
        member=person("member", [], other),
        client=system("client", [Scope.AGENCIES_READ]),
        bare_client=system("bare_client", []),
    )


def make_panel(
    session: Session,
    panel_type: str = "dv_marac",
    agencies: list[Agency] | None = None,
    *,
    name: str | None = None,
    config: dict[str, object] | None = None,
) -> Panel:
    panel = Panel(
        panel_type=panel_type,
        name=name or f"{panel_type} {uuid.uuid4().hex[:6]}",
        area="Bexley",
        config=config or {},
    )
    session.add(panel)
    session.flush()
    for agency in agencies or []:
        session.add(PanelMember(panel_id=panel.id, agency_id=agency.id, may_refer=True))
    session.commit()
    return panel


def give_role(session: Session, panel: Panel, user_id: uuid.UUID, role: str) -> None:
    session.add(PanelRole(panel_id=panel.id, user_id=user_id, role=role))
    session.commit()


def dash(yes: int) -> list[str]:
    """24 DASH answers with ``yes`` of them 'yes'."""
    return ["yes"] * yes + ["no"] * (24 - yes)


def dv_referral(
    panel_id: uuid.UUID, *, yes: int = 15, victim: dict[str, object] | None = None, **form: object
) -> dict[str, object]:
    """A valid DV MARAC referral body (visible high risk unless the form says otherwise)."""
    return {
        "panel_id": str(panel_id),
        "referral_date": "2026-11-20",
        "referrer": {"name": "DC Sam Officer", "email": "sam.officer@police.example.org"},
        "people": [
            {
                "role": "victim",
                "details": victim
                or {
                    "given_name": "Jane",
                    "family_name": "Doe",
                    "date_of_birth": "1990-04-01",
                    "postcode": "DA6 7AT",
                    "safe_contact": {"phone": "07700 900123", "safe_times": "weekdays 10-12"},
                },
            },
            {
                "role": "perpetrator",
                "details": {
                    "given_name": "John",
                    "family_name": "Roe",
                    "date_of_birth": "1988-02-02",
                },
            },
        ],
        "form": {
            "criterion": "visible_high_risk",
            "dash_answers": dash(yes),
            "children_in_household": 2,
            **form,
        },
        "consent": {
            "status": "not_sought",
            "lawful_basis": "crime_and_disorder_act_1998_s115",
            "reason": "Risk of serious harm; seeking consent would increase the risk",
        },
        "crime_reference": "CAD1234/20NOV26",
    }


def publish_cases(
    client: Any,
    headers: dict[str, str],
    panel_id: uuid.UUID,
    chair_id: uuid.UUID,
    case_ids: list[str],
    days_ahead: int = 7,
) -> str:
    """Through the API: schedule a conference, list these cases and publish its agenda, which
    makes the cases readable to the panel's member agencies. Returns the conference id."""
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_ahead)
    r = client.post(
        "/api/v1/conferences",
        json={
            "panel_id": str(panel_id),
            "starts_at": starts.isoformat(),
            "location": "Civic Offices, Bexleyheath",
            "chair_user_id": str(chair_id),
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    conference_id: str = r.json()["id"]
    for case_id in case_ids:
        listed = client.post(
            f"/api/v1/conferences/{conference_id}/listings",
            json={"case_id": case_id},
            headers=headers,
        )
        assert listed.status_code == 201, listed.text
    published = client.post(f"/api/v1/conferences/{conference_id}/publish", headers=headers)
    assert published.status_code == 200, published.text
    return conference_id


def disable_append_only(session: Session, table: str) -> None:
    """What someone with direct database access would do before tampering."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
    else:
        session.execute(text(f"DROP TRIGGER {table}_no_update"))
        session.execute(text(f"DROP TRIGGER {table}_no_delete"))
