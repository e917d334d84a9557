"""Password hashing, access tokens, refresh-token and client-secret material, TOTP secrets."""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from jose import JWTError, jwt
from passlib.context import CryptContext

from app.config import Settings

ALGORITHM = "HS256"
ACCESS = "access"
FEED = "calendar_feed"
FEED_TTL_SECONDS = 366 * 24 * 3600
TOTP_ISSUER = "Safeguarding Panels"


class TokenInvalid(Exception):
    """The bearer token is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject_kind: str  # "user" | "api_client"
    subject_id: uuid.UUID
    jti: str
    issued_at: int
    scope: str
    epoch: int


def _claims(claims: dict[str, Any], *, scope: str) -> AccessClaims:
    """The principal a verified token names (``sub`` is ``kind:uuid``)."""
    kind, _, raw_id = str(claims["sub"]).partition(":")
    try:
        subject_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise TokenInvalid("malformed subject") from exc
    return AccessClaims(
        subject_kind=kind,
        subject_id=subject_id,
        jti=claims["jti"],
        issued_at=int(claims["iat"]),
        scope=scope,
        epoch=claims["epc"],
    )


class Security:
    """Cryptographic helpers bound to one settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pwd = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=settings.argon2_memory_kib,
            argon2__rounds=settings.argon2_time_cost,
            argon2__parallelism=1,
        )
        # Verified against when the account does not exist, so both paths cost the same.
        self._dummy_hash = self._pwd.hash(secrets.token_urlsafe(16))
        fernet_key = base64.urlsafe_b64encode(
            hashlib.sha256(f"totp|{settings.secret_key}".encode()).digest()
        )
        self._fernet = Fernet(fernet_key)
        # Access tokens verified once, by their exact text (signature included), until they
        # expire: a partner system sends the same token for its whole life, and checking its
        # signature is a sixth of an audited read's CPU. Forged, malformed and expired tokens
        # raise, so they are never remembered; revocation, deactivation and the epoch are
        # checked against the database on every request whatever this holds.
        self._remembered = functools.lru_cache(maxsize=4096)(self._decode_access_token)

    # passwords and client secrets -----------------------------------------------------
    def hash_secret(self, plain: str) -> str:
        return str(self._pwd.hash(plain))

    def verify_secret(self, plain: str, hashed: str | None) -> bool:
        """Constant work whether or not there is a hash to check against."""
        if hashed is None:
            self._pwd.verify(plain, self._dummy_hash)
            return False
        try:
            return bool(self._pwd.verify(plain, hashed))
        except (ValueError, TypeError):
            return False

    # access tokens ----------------------------------------------------------------------
    def create_access_token(
        self, subject_kind: str, subject_id: uuid.UUID, scope: str, epoch: int
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.settings.token_issuer,
            "sub": f"{subject_kind}:{subject_id}",
            "typ": ACCESS,
            "iat": now,
            "exp": now + self.settings.access_token_ttl_seconds,
            "jti": secrets.token_urlsafe(12),
            "scope": scope,
            "epc": epoch,
        }
        return str(jwt.encode(claims, self.settings.secret_key, algorithm=ALGORITHM))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """Signature, issuer, expiry and issue time checked, with the algorithm pinned:
        ``none`` and every other algorithm are refused."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise TokenInvalid("unexpected token algorithm")
            claims: dict[str, Any] = jwt.decode(
                token,
                self.settings.secret_key,
                algorithms=[ALGORITHM],
                issuer=self.settings.token_issuer,
                options={"require_exp": True, "require_iat": True, "require_sub": True},
            )
        except JWTError as exc:
            raise TokenInvalid(str(exc)) from exc
        return claims

    def decode_access_token(self, token: str) -> AccessClaims:
        """Decode with the algorithm pinned: ``none`` and every other algorithm are refused."""
        claims, expires = self._remembered(token)
        # As python-jose checks it (whole seconds, no leeway), now that the token may be one
        # verified before.
        if int(time.time()) > expires:
            raise TokenInvalid("Signature has expired.")
        return claims

    def _decode_access_token(self, token: str) -> tuple[AccessClaims, int]:
        claims = self._verified_claims(token)
        if (
            claims.get("typ") != ACCESS
            or not isinstance(claims.get("jti"), str)
            or not isinstance(claims.get("epc"), int)
        ):
            raise TokenInvalid("not an access token")
        kind, _, _ = str(claims["sub"]).partition(":")
        if kind not in {"user", "api_client"}:
            raise TokenInvalid("unknown subject")
        return _claims(claims, scope=str(claims.get("scope", ""))), int(claims["exp"])

    # calendar feed tokens ---------------------------------------------------------------
    def create_feed_token(self, user_id: uuid.UUID, panel_id: uuid.UUID, epoch: int) -> str:
        """A token for one user's subscription to one panel's calendar (calendar clients
        cannot send a bearer header). It is no access token: it reads that feed only."""
        now = int(time.time())
        claims = {
            "iss": self.settings.token_issuer,
            "sub": f"user:{user_id}",
            "typ": FEED,
            "pan": str(panel_id),
            "iat": now,
            "exp": now + FEED_TTL_SECONDS,
            "jti": secrets.token_urlsafe(12),
            "epc": epoch,
        }
        return str(jwt.encode(claims, self.settings.secret_key, algorithm=ALGORITHM))

    def decode_feed_token(self, token: str, panel_id: uuid.UUID) -> AccessClaims:
        """The user a feed token was issued to, if it is genuine and for this panel."""
        claims = self._verified_claims(token)
        if (
            claims.get("typ") != FEED
            or claims.get("pan") != str(panel_id)
            or not str(claims["sub"]).startswith("user:")
            or not isinstance(claims.get("epc"), int)
            or not isinstance(claims.get("jti"), str)
        ):
            raise TokenInvalid("not a calendar feed token for this panel")
        return _claims(claims, scope="")

    # opaque tokens ----------------------------------------------------------------------
    @staticmethod
    def new_opaque_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def digest(token: str) -> str:
        """Refresh tokens carry 256 random bits, so a plain SHA-256 is a safe lookup key."""
        return hashlib.sha256(token.encode()).hexdigest()

    def refresh_expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_seconds)

    # TOTP ---------------------------------------------------------------------------------
    @staticmethod
    def new_totp_secret() -> str:
        return pyotp.random_base32()

    def encrypt_totp(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt_totp(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:  # the secret key changed since enrolment
            raise TokenInvalid("TOTP secret cannot be decrypted") from exc

    @staticmethod
    def provisioning_uri(secret: str, email: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)

    @staticmethod
    def totp_match(secret: str, code: str, last_step: int | None) -> int | None:
        """The time step ``code`` belongs to (now or one step either side), or None.

        A step at or before ``last_step`` is refused, so a code cannot be replayed.
        """
        # isascii() first: str.isdigit() also accepts non-ASCII digits (Arabic-Indic,
        # superscripts), which secrets.compare_digest refuses with a TypeError (a 500).
        if len(code) != 6 or not code.isascii() or not code.isdigit():
            return None
        totp = pyotp.TOTP(secret)
        now_step = int(time.time()) // totp.interval
        for step in (now_step - 1, now_step, now_step + 1):
            if last_step is not None and step <= last_step:
                continue
            if secrets.compare_digest(totp.generate_otp(step), code):
                return step
        return None
