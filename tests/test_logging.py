"""The process's output: one JSON object a line, an access line per request, nothing personal.

Run in a fresh process, as a server runs: logging is configured once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

_MIGRATE = 'from app.cli import app; app(["migrate"])'
_SCRIPT = """
import logging
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app

client = TestClient(create_app(Settings()))
logging.getLogger("uvicorn.error").warning("a line from the standard library's logging")
client.get("/healthz")
client.get(
    "/api/v1/agencies?name=Jane%20Doe",
    headers={"Authorization": "Bearer secret-token-value", "X-Request-ID": "req-42"},
)
client.get("/api/v1/nowhere")
"""


def _run(tmp_path: Path, level: str) -> list[dict[str, Any]]:
    env = {
        "PANELS_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}",
        "PANELS_SECRET_KEY": "logging-test-secret-key-long-enough-0123456789",
        "PANELS_AUDIT_SEAL_INTERVAL_SECONDS": "0",
        "PANELS_LOG_LEVEL": level,
        "PATH": "/usr/bin:/bin",
    }
    root = Path(__file__).resolve().parent.parent
    for script in (_MIGRATE, _SCRIPT):
        done = subprocess.run(  # noqa: S603 (our own script, our own interpreter)
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=root,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    for secret in ("Jane", "secret-token-value", "testclient"):
        assert secret not in done.stdout
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_every_request_gets_one_json_access_line_without_personal_data(tmp_path: Path) -> None:
    lines = _run(tmp_path, "INFO")
    for line in lines:
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
    access = [line for line in lines if line["logger"] == "app.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/agencies", 401),
        ("GET", None, 404),
    ]
    assert access[1]["request_id"] == "req-42"
    assert all(a["level"] == "info" and a["duration_ms"] >= 0 for a in access)
    stdlib = [line for line in lines if line["logger"] == "uvicorn.error"]
    assert [(s["level"], s["event"]) for s in stdlib] == [
        ("warning", "a line from the standard library's logging")
    ]


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_lines_below_the_level_are_not_written(tmp_path: Path, level: str) -> None:
    lines = _run(tmp_path, level)
    assert not [line for line in lines if line["level"] in ("debug", "info")]
    assert len(lines) == (1 if level == "WARNING" else 0)  # the standard library's warning


def test_a_text_stream_without_a_byte_buffer_still_gets_json_lines() -> None:
    script = """
import io, json
from app.logging import configure_logging, get_logger
stream = io.StringIO()
configure_logging("INFO", stream)
get_logger("app.test").info("written", n=1)
line = json.loads(stream.getvalue())
assert (line["event"], line["logger"], line["n"]) == ("written", "app.test", 1), line
try:
    configure_logging("LOUD")
except ValueError as exc:
    print(exc)
"""
    done = subprocess.run(  # noqa: S603 (our own script, our own interpreter)
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "unknown log level 'LOUD'" in done.stdout
