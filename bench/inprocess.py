"""CPU per request of one scenario, measured in-process: no server, no load generator.

    python -m bench.inprocess --scenario case-list --requests 500 [--profile [cpu]] [--cases 10000]

Seeds a fresh SQLite database (or ``--database-url``) as ``bench.run`` does, then sends the
scenario's requests one after another through the ASGI app (httpx's ASGI transport, with the
app's lifespan running: sealer and checkpointer included) and reports the process's CPU time
per request. On a shared, noisy machine this is steadier than requests/s under wrk, and it
is what a change to a hot path should move. ``--profile`` prints a pyinstrument profile of
the measured requests (``pip install pyinstrument``); ``--profile cpu`` cProfile's tables,
by CPU time (a greenlet's waits on the database are not counted as its function's time).
It runs on uvloop, as the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

from app.config import Settings
from app.logging import configure_logging
from app.main import create_app

from .backends import migrate
from .cpu import postgres_cpu_s
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


async def _call(
    app: Any, method: str, path_and_query: str, headers: dict[str, str], body: bytes | None
) -> tuple[int, str]:
    """One request straight into the ASGI app, as a server would hand it over: no client."""
    path, _, query = path_and_query.partition("?")
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if body is not None:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks).decode(errors="replace")


async def _drive(
    app: object,
    scenario: Scenario,
    token: str,
    ids: dict[str, list[str]],
    requests: int,
    warmup: int,
    profile: str | None,
    direct: bool,
    concurrency: int = 1,
) -> float:
    paths = scenario.url_paths(ids)
    headers = scenario.request_headers(token)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),  # type: ignore[attr-defined]
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):

        async def send(i: int) -> None:
            if direct:
                status, text = await _call(
                    app, scenario.method, paths[i % len(paths)], headers, _body(scenario, ids, i)
                )
            else:
                r = await client.request(
                    scenario.method,
                    paths[i % len(paths)],
                    headers=headers,
                    content=_body(scenario, ids, i),
                )
                status, text = r.status_code, r.text
            if status >= 400:
                raise SystemExit(f"{status}: {text[:500]}")

        for i in range(warmup):
            await send(i)
        profiler: Any = None
        if profile == "wall":
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        elif profile == "cpu":
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        start = time.process_time()
        times = os.times()
        database = postgres_cpu_s()
        # ``concurrency`` requests in flight, as a load generator's connections would keep
        # them (one: one after another).
        numbers = iter(range(warmup, warmup + requests))

        async def worker() -> None:
            for i in numbers:
                await send(i)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        spent = time.process_time() - start
        after = os.times()
        database = postgres_cpu_s() - database
        print(
            f"user {(after.user - times.user) / requests * 1e3:.3f} ms, "
            f"system {(after.system - times.system) / requests * 1e3:.3f} ms a request"
            + (f"; PostgreSQL {database / requests * 1e3:.3f} ms" if database else ""),
            file=sys.stderr,
        )
        if profile == "wall":
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        elif profile == "cpu":
            profiler.disable()
            stats = pstats.Stats(profiler)
            for order in ("tottime", "cumulative"):
                stats.sort_stats(order).print_stats(40)
            if os.environ.get("BENCH_PSTATS"):
                stats.dump_stats(os.environ["BENCH_PSTATS"])
            if os.environ.get("BENCH_CALLERS"):
                stats.print_callers(os.environ["BENCH_CALLERS"])
    return spent / requests


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", required=True, choices=[s.name for s in SCENARIOS])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    p.add_argument(
        "--profile",
        nargs="?",
        const="wall",
        choices=["wall", "cpu"],
        help="wall: pyinstrument (waits included); cpu: cProfile on CPU time, by function",
    )
    p.add_argument(
        "--direct",
        action="store_true",
        help="call the ASGI app directly, without the httpx client: the app's own cost only",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="requests in flight at once (bench.run's --connections, 32 by default); "
        "default one after another",
    )
    args = p.parse_args(argv)
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
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
        # As the benchmark's server does (PANELS_LOG_LEVEL=WARNING): its lines to a file.
        log_file = stack.enter_context((Path(tmp) / "app.log").open("w"))
        configure_logging(settings.log_level, log_file)
        from app.security import Security

        token = fixture.token(Security(settings), scenario.token)
        # The loop the server runs (uvicorn --loop uvloop).
        per_request = uvloop.run(
            _drive(
                app,
                scenario,
                token,
                fixture.ids,
                args.requests,
                args.warmup,
                args.profile,
                args.direct,
                args.concurrency,
            )
        )
    print(
        json.dumps({"scenario": scenario.name, "cpu_ms_per_request": round(per_request * 1e3, 3)})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
