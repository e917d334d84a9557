"""The command line a new user runs: migrate, seed-demo (twice), create-admin, audit tools."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as cli
from app.config import Settings
from app.main import create_app
from app.seed import DEMO_PASSWORD, DOMAIN, TOTP


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("PANELS_DATABASE_URL", url)
    monkeypatch.setenv("PANELS_SECRET_KEY", "cli-test-secret-key-long-enough-0123456789")
    monkeypatch.setenv("PANELS_AUDIT_SEAL_INTERVAL_SECONDS", "0")
    return url


def test_migrate_seed_and_log_in(env: str) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["migrate"]).exit_code == 0  # running it twice is harmless
    first = runner.invoke(cli, ["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "Demo partnership created." in first.output
    assert DEMO_PASSWORD in first.output
    second = runner.invoke(cli, ["seed-demo"])
    assert second.exit_code == 0
    assert "already present; nothing changed" in second.output

    client = TestClient(create_app(Settings()))
    token = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": f"admin@{DOMAIN}",
            "password": DEMO_PASSWORD,
            "otp": pyotp.TOTP(TOTP["admin"]).now(),
        },
    )
    assert token.status_code == 200, token.text
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.json()["roles"] == ["admin"]
    agencies = client.get(
        "/api/v1/agencies", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    ).json()["items"]
    assert {"Metropolitan Police Service", "London Fire Brigade"} <= {a["name"] for a in agencies}

    sealed = runner.invoke(cli, ["audit-seal"])
    assert sealed.exit_code == 0 and "sealed" in sealed.output
    verified = runner.invoke(cli, ["audit-verify"])
    assert verified.exit_code == 0, verified.output
    assert '"ok": true' in verified.output


def test_create_admin_prints_the_second_factor(env: str) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["migrate"])
    result = runner.invoke(
        cli, ["create-admin", "--email", "Root@Example.org", "--password", "a-long-enough-pass"]
    )
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/" in result.output
    secret = result.output.split("secret:", 1)[1].split()[0]

    client = TestClient(create_app(Settings()))
    form = {
        "grant_type": "password",
        "username": "root@example.org",
        "password": "a-long-enough-pass",
    }
    assert client.post("/api/v1/auth/token", data=form).status_code == 400  # otp required
    ok = client.post("/api/v1/auth/token", data={**form, "otp": pyotp.TOTP(secret).now()})
    assert ok.status_code == 200, ok.text

    again = runner.invoke(
        cli, ["create-admin", "--email", "root@example.org", "--password", "a-long-enough-pass"]
    )
    assert again.exit_code == 1
    assert "already exists" in again.output
    weak = runner.invoke(cli, ["create-admin", "--email", "x@example.org", "--password", "short"])
    assert weak.exit_code == 1
    assert "at least 12" in weak.output
