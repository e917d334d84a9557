"""CPU per request of one scenario, measured in-process: no server, no load generator.

    python -m bench.inprocess --scenario case-list --requests 500 [--profile] [--cases 10000]

Seeds a fresh SQLite database (or ``--database-url``) as ``bench.run`` does, then sends the
scenario's requests one after another through the ASGI app (httpx's ASGI transport, with the
app's lifespan running: sealer and checkpointer included) and reports the process's CPU time
per request. On a shared, noisy machine this is steadier than requests/s under wrk, and it
is what a change to a hot path should move. ``--profile`` prints a pyinstrument profile of
the measured requests (``pip install pyinstrument``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path

import httpx

from app.config import Settings
from app.main import create_app

from .backends import migrate
from .fixtures import _letters, seed
from .scenarios import SCENARIOS, Scenario
from .servers import server_env


def _body(scenario: Scenario, ids: dict[str, list[str]], n: int) -> bytes | None:
    parts = scenario.body_parts(ids)
    if parts is None:
        return None
    if not scenario.unique_body:
        return parts[0].encode()
    unique = _letters(n) if scenario.unique_letters else str(n)
    return (parts[0] + unique + parts[1]).encode()


async def _drive(
    app: object,
    scenario: Scenario,
    token: str,
    ids: dict[str, list[str]],
    requests: int,
    warmup: int,
    profile: bool,
) -> float:
    paths = scenario.url_paths(ids)
    headers = scenario.request_headers(token)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),  # type: ignore[attr-defined]
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):

        async def send(i: int) -> None:
            r = await client.request(
                scenario.method,
                paths[i % len(paths)],
                headers=headers,
                content=_body(scenario, ids, i),
            )
            if r.status_code >= 400:
                raise SystemExit(f"{r.status_code}: {r.text[:500]}")

        for i in range(warmup):
            await send(i)
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        start = time.process_time()
        for i in range(warmup, warmup + requests):
            await send(i)
        spent = time.process_time() - start
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    return spent / requests


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", required=True, choices=[s.name for s in SCENARIOS])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'inprocess.db'}"
        settings = Settings(
            database_url=url,
            secret_key=secrets.token_urlsafe(48),
            env="development",
            log_level="WARNING",
        )
        migrate(url, server_env({"PANELS_DATABASE_URL": url}))
        fixture = seed(settings, cases=args.cases if scenario.needs_cases else 0)
        app = create_app(settings)
        from app.security import Security

        token = fixture.token(Security(settings), scenario.token)
        per_request = asyncio.run(
            _drive(app, scenario, token, fixture.ids, args.requests, args.warmup, args.profile)
        )
    print(
        json.dumps({"scenario": scenario.name, "cpu_ms_per_request": round(per_request * 1e3, 3)})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
