"""Settings: production refuses to start with a missing or weak secret."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from typer.testing import CliRunner

from app.cli import app as cli
from app.config import DEV_SECRET_KEY, ConfigurationError, Environment, Settings
from app.main import create_app


@pytest.mark.parametrize("secret", [DEV_SECRET_KEY, "too-short-secret"])
def test_production_refuses_a_weak_secret(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="PANELS_SECRET_KEY"):
        Settings(env=Environment.PRODUCTION, secret_key=secret)


def test_production_accepts_a_strong_secret() -> None:
    settings = Settings(env=Environment.PRODUCTION, secret_key="x" * 48)
    assert settings.env is Environment.PRODUCTION


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANELS_ACCESS_TOKEN_TTL_SECONDS", "300")
    monkeypatch.setenv("PANELS_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("PANELS_MFA_REQUIRED_ROLES", '["admin"]')
    settings = Settings()
    assert settings.access_token_ttl_seconds == 300
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.mfa_required_roles == ["admin"]
    assert not settings.is_sqlite


def test_the_cli_stops_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANELS_ENV", "production")
    monkeypatch.delenv("PANELS_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 2
    assert "PANELS_SECRET_KEY is missing or weak" in result.output


@pytest.mark.parametrize("enabled", [False, True])
def test_fastapis_opentelemetry_is_consulted_only_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    """Off by default, FastAPI does not look for a tracer provider on each request (three
    environment lookups a request); ``PANELS_OPENTELEMETRY=true`` turns it back on."""
    looked = []
    real = trace.get_tracer_provider

    def get_tracer_provider() -> trace.TracerProvider:
        looked.append(True)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", get_tracer_provider)
    settings = Settings(env=Environment.TEST, database_url="sqlite://", opentelemetry=enabled)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
    assert bool(looked) is enabled
