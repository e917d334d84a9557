"""Settings, read from environment variables prefixed ``PANELS_``."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789"
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


class ConfigurationError(RuntimeError):
    """Raised when the settings would make the service unsafe to start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PANELS_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///./var/panels.db"
    secret_key: str = DEV_SECRET_KEY
    # Keys the audit chain's HMAC; derived from secret_key when unset. Keep it out of the
    # database's reach so that someone who can write the database cannot re-forge the chain.
    audit_key: str | None = None

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=300)
    token_issuer: str = "safeguarding-panels"

    password_min_length: int = Field(default=12, ge=8)
    login_max_failures: int = Field(default=5, ge=1)
    lockout_seconds: int = Field(default=900, ge=1)
    mfa_required_roles: list[str] = ["admin", "auditor"]
    # OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane).
    argon2_memory_kib: int = Field(default=19456, ge=1024)
    argon2_time_cost: int = Field(default=2, ge=1)

    cors_origins: list[str] = []
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    audit_seal_interval_seconds: float = Field(default=1.0, ge=0)
    audit_seal_batch: int = Field(default=100, ge=1)
    sqlite_checkpoint_seconds: float = Field(default=1.0, ge=0)
    db_concurrency: int = Field(default=8, ge=1, le=64)
    log_level: str = "INFO"
    # FastAPI's own OpenTelemetry spans and metrics for every request. Off unless asked for:
    # with no exporter configured they are dropped anyway, and checking for one cost every
    # request three environment lookups (docs/performance.md, eighteenth round).
    opentelemetry: bool = False

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            weak = self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
            if weak:
                raise ConfigurationError(
                    "PANELS_SECRET_KEY is missing or weak: production needs a random secret "
                    f"of at least {MIN_SECRET_KEY_LENGTH} characters "
                    "(for example the output of: "
                    'python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
