"""Creating the first administrator from the command line."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app import audit
from app.actor import Actor
from app.audit import AuditAction
from app.config import Settings
from app.db import Database
from app.models.agency import Agency, AgencyKind
from app.models.base import utcnow
from app.models.user import User
from app.permissions import Role
from app.security import Security
from app.services.users import check_password_policy


class AdminExists(Exception):
    pass


@dataclass(frozen=True)
class CreatedAdmin:
    email: str
    totp_secret: str | None
    otpauth_uri: str | None


def create_admin_user(
    settings: Settings, email: str, password: str, full_name: str, agency_name: str
) -> CreatedAdmin:
    """Create an admin (and their agency if needed), with TOTP enrolled when admins need it."""
    security = Security(settings)
    db = Database.from_settings(settings)
    email = email.strip().lower()
    check_password_policy(password, email, settings.password_min_length)
    with db.session() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:  # type: ignore[call-overload]
            raise AdminExists(f"a user with email {email} already exists")
        agency = session.scalars(select(Agency).where(Agency.name == agency_name)).first()  # type: ignore[arg-type]
        if agency is None:
            agency = Agency(name=agency_name, kind=AgencyKind.LOCAL_AUTHORITY.value)
            session.add(agency)
            session.flush()
        secret = None
        if Role.ADMIN.value in settings.mfa_required_roles:
            secret = security.new_totp_secret()
        user = User(
            agency_id=agency.id,
            email=email,
            full_name=full_name,
            roles=[Role.ADMIN.value],
            password_hash=security.hash_secret(password),
            password_changed_at=utcnow(),
            totp_secret_enc=security.encrypt_totp(secret) if secret else None,
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            Actor.system(),
            AuditAction.USER_CREATE,
            resource_type="user",
            resource_id=user.id,
            detail={"via": "cli create-admin"},
        )
        session.commit()
    db.dispose()
    return CreatedAdmin(
        email=email,
        totp_secret=secret,
        otpauth_uri=security.provisioning_uri(secret, email) if secret else None,
    )
