"""`make bench`: the service against the baseline, per scenario, on SQLite and PostgreSQL.

For each backend: a fresh database, `panels migrate`, the seeders (bench/fixtures.py). For
each scenario (bench/scenarios.py): the baseline then the service, each in a fresh
one-worker uvicorn process, each warmed up then loaded for a fixed time with wrk on
loopback. The report gives requests/s, p50, p99 and peak RSS as ratios to the baseline,
marks each target met or missed, and is written to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from app.config import Settings
from app.security import Security

from . import profiling
from .backends import (
    Backend,
    BackendUnavailable,
    migrate,
    postgresql_backend,
    seal_backlog,
    sqlite_backend,
    unsealed_backlog,
)
from .cpu import CpuMeter, wait_until_quiet
from .fixtures import DEFAULT_CASES, Fixture, seed
from .loadgen import Load, LoadError, LoadGenerator, make_generator, wrk_version
from .report import NOISY_CORES, Measurement, Result, median_round, render, write_docs
from .scenarios import SCENARIOS, Scenario
from .servers import ROOT, Server, ServerError, peak_rss_kib, server_env

RESULTS = ROOT / "bench" / "results"
BACKENDS = ("sqlite", "postgresql")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    p.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql"
    )
    p.add_argument("--scenarios", default="", help="comma-separated scenario names (default: all)")
    p.add_argument(
        "--cases",
        type=int,
        default=DEFAULT_CASES,
        metavar="N",
        help="cases to seed for the scenarios that need them (only seeded when one is selected)",
    )
    p.add_argument("--loadgen", choices=("auto", "wrk", "httpx"), default="auto")
    p.add_argument("--app-port", type=int, default=8101)
    p.add_argument("--baseline-port", type=int, default=8102)
    p.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL database to connect to while creating the benchmark's",
    )
    p.add_argument("--pg-database", default="panels_bench")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    p.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    p.add_argument("--profile", action="store_true", help="one more pass per scenario under py-spy")
    p.add_argument("--keep-data", action="store_true", help="keep the databases afterwards")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to go quiet",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run everything N times, each time on a freshly seeded database, and report per "
        "scenario the round whose throughput ratio is the median (on a noisy machine, 3 or 5)",
    )
    p.add_argument("--check", action="store_true", help="exit 2 if any target is missed (for CI)")
    args = p.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        p.error(f"unknown backends: {', '.join(sorted(unknown))}")
    names = [s for s in args.scenarios.split(",") if s]
    known = {s.name for s in SCENARIOS}
    if set(names) - known:
        p.error(f"unknown scenarios: {', '.join(sorted(set(names) - known))}; have {known}")
    args.scenario_list = [s for s in SCENARIOS if not names or s.name in names]
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.secret_key = secrets.token_urlsafe(48)
        self.loadgen: LoadGenerator = make_generator(
            args.loadgen, args.connections, args.threads, args.timeout
        )

    def env(self, backend: Backend) -> dict[str, str]:
        return server_env(
            {
                "PANELS_DATABASE_URL": backend.url,
                "PANELS_ENV": "development",
                "PANELS_LOG_LEVEL": "WARNING",
                "PANELS_SECRET_KEY": self.secret_key,
            }
        )

    def prepare(self, backend: Backend) -> tuple[Fixture, Security]:
        print(f"[{backend.name}] migrating and seeding {backend.version}", flush=True)
        migrate(backend.url, self.env(backend))
        settings = Settings(
            database_url=backend.url,
            secret_key=self.secret_key,
            env="development",
            log_level="WARNING",
        )
        return seed(settings, cases=self.cases), Security(settings)

    @property
    def cases(self) -> int:
        """How many cases to seed: none unless a selected scenario reads them."""
        needed = any(s.needs_cases for s in self.args.scenario_list)
        return self.args.cases if needed else 0

    def load(
        self, server: Server, scenario: Scenario, token: str, ids: dict[str, list[str]]
    ) -> Load:
        return Load(
            method=scenario.method,
            base_url=server.url,
            paths=scenario.url_paths(ids),
            headers=scenario.request_headers(token),
            body=scenario.body_parts(ids),
            unique=scenario.unique_body,
            letters=scenario.unique_letters,
        )

    def measure(self, server: Server, load: Load, label: str) -> Measurement:
        args = self.args
        if args.quiet_wait > 0:
            wait_until_quiet(args.quiet_wait, NOISY_CORES)
        if args.warmup > 0:
            self.loadgen.run(load.salted(), args.warmup)
        with CpuMeter(server.pid) as meter:
            result = self.loadgen.run(load.salted(), args.duration)
        assert meter.result is not None
        m = Measurement(result, peak_rss_kib(server.pid), meter.result)
        print(
            f"    {label:<9} {result.rps:9,.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  peak RSS {m.peak_rss_kib / 1024:6.1f} MiB  "
            f"CPU {m.server_cpu_ms:.2f} ms/req  other load {m.cpu.foreign_cores:.2f} cores",
            flush=True,
        )
        return m

    def scenario(
        self,
        backend: Backend,
        scenario: Scenario,
        fixture: Fixture,
        security: Security,
        *,
        profile: bool,
    ) -> Result:
        args = self.args
        result = Result(backend.name, scenario)
        env = self.env(backend)
        log = self.workdir / f"{backend.name}-{scenario.name}.log"
        print(f"  {scenario.name}: {scenario.method} {scenario.path}", flush=True)
        servers = (
            ("baseline", "bench.baseline:app", args.baseline_port),
            ("service", "app.asgi:app", args.app_port),
        )
        try:
            seal_backlog(backend.url, env)
            for label, asgi_app, port in servers:
                with Server(label, asgi_app, port, env, log) as srv:
                    token = fixture.token(security, scenario.token)
                    load = self.load(srv, scenario, token, fixture.ids)
                    measurement = self.measure(srv, load, label)
                    if label == "baseline":
                        result.baseline = measurement
                        continue
                    result.app = measurement
                    result.audit_backlog = unsealed_backlog(backend.url)
                    if profile:
                        self.profile(srv, load, backend, scenario)
        except (LoadError, ServerError) as exc:
            result.error = str(exc)
            text = log.read_text(errors="replace") if log.exists() else "(no log)"
            tail = "\n".join(text.splitlines()[-40:])
            print(
                f"    FAILED: {exc}\n    server log ({log}):\n{_indent(tail)}",
                file=sys.stderr,
                flush=True,
            )
        return result

    def profile(self, server: Server, load: Load, backend: Backend, scenario: Scenario) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        raw = RESULTS / f"profile-{backend.name}-{scenario.name}.txt"
        recorder = profiling.start(server.pid, self.args.duration, raw)
        try:
            self.loadgen.run(load.salted(), self.args.duration)
        finally:
            _, err = recorder.communicate(timeout=self.args.duration + 60)
        if recorder.returncode != 0:
            print(f"    py-spy failed: {err.decode(errors='replace')}", file=sys.stderr)
            return
        summary = profiling.summarise(raw)
        out = raw.with_name(f"{raw.stem}-summary.txt")
        out.write_text(summary)
        print(f"    profile: {out.relative_to(ROOT)}\n{_indent(summary, 6)}", flush=True)

    def backend(self, name: str, round_: int) -> Backend:
        """A fresh, empty database for one round."""
        if name == "sqlite":
            directory = self.workdir / f"round-{round_ + 1}"
            directory.mkdir(exist_ok=True)
            return sqlite_backend(directory)
        return postgresql_backend(self.args.pg_admin_url, self.args.pg_database)


def _indent(text: str, n: int = 6) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    results: list[Result] = []
    versions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="panels-bench-"))
    bench = Bench(args, workdir)
    try:
        for name in args.backends:
            rounds: list[list[Result]] = []
            for round_ in range(args.rounds):
                try:
                    backend = bench.backend(name, round_)
                except BackendUnavailable as exc:
                    print(f"[{name}] SKIPPED: {exc}", file=sys.stderr, flush=True)
                    skipped[name] = str(exc)
                    break
                versions[name] = backend.version
                if args.rounds > 1:
                    print(f"[{name}] round {round_ + 1} of {args.rounds}", flush=True)
                last = round_ == args.rounds - 1
                try:
                    fixture, security = bench.prepare(backend)
                    rounds.append(
                        [
                            bench.scenario(
                                backend, s, fixture, security, profile=args.profile and last
                            )
                            for s in args.scenario_list
                        ]
                    )
                finally:
                    if not (args.keep_data and last):
                        backend.drop()
            results += [median_round(list(runs)) for runs in zip(*rounds, strict=True)]
    finally:
        if args.keep_data:
            kept = (
                f" and the PostgreSQL database {args.pg_database}"
                if "postgresql" in versions
                else ""
            )
            print(f"kept {workdir} (SQLite database, server logs){kept}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    loadgen = (
        f"{wrk_version() or 'wrk'}, {args.threads} threads"
        if bench.loadgen.name == "wrk"
        else "async httpx (fallback: slower than wrk, may be the bottleneck)"
    )
    report = render(
        results,
        command=_command(sys.argv[1:] if argv is None else argv),
        settings=[
            f"{args.connections} connections, {args.warmup:g} s warm-up then {args.duration:g} s "
            f"measured per run, each server a fresh `uvicorn --workers 1 --loop uvloop "
            f"--http httptools` process",
            "before each scenario the audit events earlier scenarios left queued are sealed "
            "(`panels audit-seal`); what a run leaves is its 'Audit queue after'",
            *([f"{bench.cases:,} cases seeded on the DV MARAC (`--cases`)"] if bench.cases else []),
            *(
                [
                    f"{args.rounds} rounds, each on a freshly seeded database; per scenario, the "
                    "round whose throughput ratio is the median (every round's ratio is listed)"
                ]
                if args.rounds > 1
                else []
            ),
        ],
        backend_versions=versions,
        skipped=skipped,
        loadgen=loadgen,
    )
    print("\n" + report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")
    if args.write_docs:
        print(f"updated {write_docs(report)}")
    if any(r.error for r in results):
        return 1
    if args.check and not all(r.all_met for r in results):
        return 2
    return 0


def _command(argv: list[str]) -> str:
    return f"make bench BENCH_ARGS={shlex.quote(shlex.join(argv))}" if argv else "make bench"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
