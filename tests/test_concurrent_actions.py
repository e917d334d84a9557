"""Concurrent writes against a real server: `panels serve` on its own database (SQLite, or
PostgreSQL when PANELS_TEST_DATABASE_URL names one), migrated and seeded with the demo, hit
by simultaneous requests over HTTP.

With the same If-Match, exactly one edit of an action wins and every other is told 412;
without it, the edits apply one after another and no note is lost. Simultaneous referrals
about the same new person leave one record of them, not one each.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.builders import dv_referral
from tests.conftest import _fresh_server_database

PANELS = str(Path(sys.executable).with_name("panels"))
WRITERS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    shared = os.environ.get("PANELS_TEST_DATABASE_URL")
    if shared:
        url = str(make_url(shared).set(database=f"{make_url(shared).database}_concurrency"))
        _fresh_server_database(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('concurrency') / 'panels.db'}"
    env = {
        **os.environ,
        "PANELS_DATABASE_URL": url,
        "PANELS_ENV": "development",
        "PANELS_LOG_LEVEL": "WARNING",
    }
    # Fixed commands of the project's own CLI, no outside input.
    for command in ("migrate", "seed-demo"):
        subprocess.run([PANELS, command], env=env, check=True, capture_output=True)  # noqa: S603
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [PANELS, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _headers(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    login = await http.post(
        "/auth/token",
        data={"grant_type": "password", "username": email, "password": "demo-password-2026"},
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _scenario(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as http:
        headers = await _headers(http, "coordinator@bexley-csp.example.org")
        actions = (await http.get("/actions", params={"status": "open"}, headers=headers)).json()
        action = actions["items"][0]
        url = f"/actions/{action['id']}"
        etag = (await http.get(url, headers=headers)).headers["etag"]

        racing = await asyncio.gather(
            *[
                http.patch(
                    url,
                    json={"note": f"Racing edit {n}"},
                    headers={**headers, "If-Match": etag},
                )
                for n in range(WRITERS)
            ]
        )
        queued = await asyncio.gather(
            *[
                http.patch(url, json={"note": f"Queued edit {n}"}, headers=headers)
                for n in range(WRITERS)
            ]
        )
        final = (await http.get(url, headers=headers)).json()
        return {
            "racing": sorted(r.status_code for r in racing),
            "queued": [r.status_code for r in queued],
            "before": action,
            "final": final,
        }


def test_one_of_racing_edits_wins_and_queued_edits_are_all_kept(server: str) -> None:
    result = asyncio.run(_scenario(server))
    assert result["racing"] == [200] + [412] * (WRITERS - 1)
    assert result["queued"] == [200] * WRITERS
    notes = [h["note"] for h in result["final"]["history"] if h["note"]]
    assert sum(note.startswith("Racing edit") for note in notes) == 1
    assert sorted(n for n in notes if n.startswith("Queued edit")) == sorted(
        f"Queued edit {n}" for n in range(WRITERS)
    )
    assert result["final"]["version"] == result["before"]["version"] + 1 + WRITERS


async def _racing_referrals(base: str, family_name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as http:
        police = await _headers(http, "police.rep@bexley-csp.example.org")
        coordinator = await _headers(http, "coordinator@bexley-csp.example.org")
        panels = (await http.get("/panels", headers=coordinator)).json()["items"]
        dv = next(p for p in panels if p["panel_type"] == "dv_marac")
        victim = {"given_name": "Ada", "family_name": family_name, "date_of_birth": "1991-03-04"}
        body = dv_referral(dv["id"], victim=victim)
        submitted = await asyncio.gather(
            *[http.post("/referrals", json=body, headers=police) for _ in range(WRITERS)]
        )
        # The referrer is not shown whom a referral was matched to; the coordinator is.
        as_triaged = [
            (await http.get(f"/referrals/{r.json()['id']}", headers=coordinator)).json()
            for r in submitted
        ]
        found = await http.get(
            "/people",
            params={"name": f"Ada {family_name}", "date_of_birth": "1991-03-04"},
            headers=coordinator,
        )
        return {
            "statuses": [r.status_code for r in submitted],
            "referrals": as_triaged,
            "found": found.json(),
        }


def test_racing_referrals_about_a_new_person_leave_one_record_of_them(server: str) -> None:
    family_name = "Racingreferral" + "".join(chr(97 + int(d)) for d in str(time.time_ns())[-8:])
    result = asyncio.run(_racing_referrals(server, family_name))
    assert result["statuses"] == [201] * WRITERS
    referrals = result["referrals"]
    assert len({r["id"] for r in referrals}) == WRITERS
    victims = {p["person_id"] for r in referrals for p in r["people"] if p["role"] == "victim"}
    assert len(victims) == 1
    assert None not in victims
    assert [r["possible_duplicates"] for r in referrals] == [0] * WRITERS
    exact = [c for c in result["found"] if c["person"]["family_name"] == family_name]
    assert [c["person"]["id"] for c in exact] == list(victims)
