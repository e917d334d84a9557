"""HTTP load generators: wrk (preferred) and a bounded async httpx fallback.

Both keep a fixed number of connections busy for a fixed time on loopback and report
requests/s and the p50/p99 latency. A response that is not 2xx fails the run loudly: a fast
stream of 401s or 422s measures nothing.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import string
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace

import httpx


class LoadError(RuntimeError):
    """The load run did not measure what it was meant to (errors, non-2xx answers)."""


@dataclass(frozen=True)
class Load:
    """What to send: one method and headers, paths taken in turn, a body split around UNIQUE."""

    method: str
    base_url: str  # http://host:port
    paths: list[str]
    headers: dict[str, str]
    body: tuple[str, str] | None  # (prefix, suffix)
    unique: bool  # insert a per-request value between prefix and suffix
    # The per-request value in letters only (digits a-j, "-" x): for names, whose matching
    # keys keep only letters.
    letters: bool = False
    # Prefixed to the per-request value: one per run (see salted), so that a run does not
    # repeat the values of the warm-up or of an earlier run against the same database.
    salt: str = ""

    def salted(self) -> Load:
        """This load with a new random salt (letters only), if its body varies."""
        if not self.unique:
            return self
        return replace(self, salt="".join(random.choices(string.ascii_lowercase, k=6)))

    def unique_value(self, worker: int, n: int) -> str:
        value = f"{self.salt}{worker}-{n}"
        return value.translate(_LETTERS) if self.letters else value

    def path_for(self, worker: int, n: int, workers: int) -> str:
        return self.paths[(worker + n * workers) % len(self.paths)]

    def body_for(self, worker: int, n: int) -> str | None:
        if self.body is None:
            return None
        prefix, suffix = self.body
        return f"{prefix}{self.unique_value(worker, n)}{suffix}" if self.unique else prefix


_LETTERS = str.maketrans("0123456789-", "abcdefghijx")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float


class LoadGenerator:
    name = "abstract"

    def __init__(self, connections: int, threads: int, timeout_s: float) -> None:
        self.connections = connections
        self.threads = threads
        self.timeout_s = timeout_s

    def run(self, load: Load, seconds: float) -> LoadResult:
        raise NotImplementedError


# wrk ----------------------------------------------------------------------------------------
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)


def _lua_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_script(load: Load) -> str:
    """A wrk Lua script sending ``load``: a fixed request when there is one path and no
    unique body (wrk's fast path), else one request built per call, paths in turn (each
    thread starting at its own offset) and a new body each time."""
    lines = [f"wrk.method = {_lua_str(load.method)}", f"wrk.path = {_lua_str(load.paths[0])}"]
    lines += [f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}" for k, v in load.headers.items()]
    if load.body is not None and not load.unique:
        lines.append(f"wrk.body = {_lua_str(load.body[0])}")
    if len(load.paths) == 1 and not load.unique:
        return "\n".join(lines) + "\n"
    prefix, suffix = load.body if load.body is not None and load.unique else ("", "")
    lines += [
        "local paths = {",
        *(f"  {_lua_str(path)}," for path in load.paths),
        "}",
        "local threads = 0",
        "function setup(thread)",
        "  thread:set('tid', threads)",
        "  threads = threads + 1",
        "end",
        "local n = 0",
        f"local unique, prefix, suffix = {str(load.unique).lower()}, "
        f"{_lua_str(prefix)}, {_lua_str(suffix)}",
        f"local salt, letters = {_lua_str(load.salt)}, {str(load.letters).lower()}",
        "local function letter(d)",
        "  if d == '-' then return 'x' end",
        "  return string.char(97 + tonumber(d))",
        "end",
        "function request()",
        "  n = n + 1",
        "  local path = paths[((tid * 7919 + n) % #paths) + 1]",
        "  if unique then",
        "    local value = salt .. tid .. '-' .. n",
        "    if letters then value = string.gsub(value, '[%d-]', letter) end",
        "    return wrk.format(nil, path, nil, prefix .. value .. suffix)",
        "  end",
        "  return wrk.format(nil, path)",
        "end",
    ]
    return "\n".join(lines) + "\n"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> LoadResult:
    """Requests/sec, the 50% and 99% latencies, and every sign of a failed run."""
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    if non_2xx and int(non_2xx.group(1)):
        raise LoadError(f"{non_2xx.group(1)} responses were not 2xx/3xx:\n{output}")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets and any(int(x) for x in sockets.groups()):
        raise LoadError(f"socket errors during the run:\n{output}")
    rps = re.search(r"Requests/sec:\s*([\d.]+)", output)
    total = re.search(r"(\d+) requests in ", output)
    pct = {p: _ms(value, unit) for p, value, unit in _PERCENTILE.findall(output)}
    if not (rps and total and "50" in pct and "99" in pct):
        raise LoadError(f"could not parse wrk's output:\n{output}")
    requests = int(total.group(1))
    if requests == 0:
        raise LoadError(f"no request completed:\n{output}")
    return LoadResult(
        requests=requests,
        rps=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
    )


class Wrk(LoadGenerator):
    name = "wrk"

    def __init__(self, binary: str, connections: int, threads: int, timeout_s: float) -> None:
        super().__init__(connections, threads, timeout_s)
        self.binary = binary

    def run(self, load: Load, seconds: float) -> LoadResult:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
            script.write(wrk_script(load))
            script.flush()
            cmd = [
                self.binary,
                f"-t{self.threads}",
                f"-c{self.connections}",
                f"-d{max(1, round(seconds))}s",
                f"--timeout={max(1, round(self.timeout_s))}s",
                "--latency",
                "-s",
                script.name,
                load.base_url + load.paths[0],
            ]
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=seconds + self.timeout_s + 30,
            )
        if proc.returncode != 0:
            raise LoadError(f"wrk exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return parse_wrk(proc.stdout)


# httpx fallback --------------------------------------------------------------------------
class HttpxLoad(LoadGenerator):
    """``connections`` asyncio workers on one client; far slower than wrk, so the generator
    (not the server) may be the bottleneck: compare ratios, not absolute figures."""

    name = "httpx"

    def run(self, load: Load, seconds: float) -> LoadResult:
        return asyncio.run(self._run(load, seconds))

    async def _run(self, load: Load, seconds: float) -> LoadResult:
        latencies: list[float] = []
        failures: list[str] = []
        # One client (one keep-alive connection) per worker, made before the clock starts: a
        # shared pool serialises the workers on its lock. Plain HTTP, so no CA bundle to load.
        clients = [
            httpx.AsyncClient(
                base_url=load.base_url,
                timeout=self.timeout_s,
                verify=False,  # noqa: S501 (plain HTTP on loopback; skips loading certifi)
            )
            for _ in range(self.connections)
        ]

        async def worker(index: int, client: httpx.AsyncClient, deadline: float) -> None:
            n = 0
            while time.perf_counter() < deadline and not failures:
                n += 1
                body = load.body_for(index, n)
                path = load.path_for(index, n, self.connections)
                t0 = time.perf_counter()
                response = await client.request(
                    load.method, path, headers=load.headers, content=body
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                if not response.is_success:
                    failures.append(f"{response.status_code} {response.text[:500]}")

        try:
            started = time.perf_counter()
            deadline = started + seconds
            await asyncio.gather(*(worker(i, c, deadline) for i, c in enumerate(clients)))
            elapsed = time.perf_counter() - started
        finally:
            for client in clients:
                await client.aclose()
        if failures:
            raise LoadError(f"{len(failures)} responses were not 2xx; first: {failures[0]}")
        if not latencies:
            raise LoadError("no request completed")
        latencies.sort()
        return LoadResult(
            requests=len(latencies),
            rps=len(latencies) / elapsed,
            p50_ms=_percentile(latencies, 50),
            p99_ms=_percentile(latencies, 99),
        )


def _percentile(ordered: list[float], pct: float) -> float:
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def make_generator(choice: str, connections: int, threads: int, timeout_s: float) -> LoadGenerator:
    """``auto`` picks wrk when it is installed, else the httpx fallback."""
    binary = shutil.which("wrk")
    if choice == "wrk" or (choice == "auto" and binary):
        if not binary:
            raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
        return Wrk(binary, connections, threads, timeout_s)
    if choice == "auto":
        print("wrk not found: falling back to the (slower) async httpx load generator")
    return HttpxLoad(connections, threads, timeout_s)


def wrk_version() -> str | None:
    binary = shutil.which("wrk")
    if not binary:
        return None
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True)
    first = (proc.stdout or proc.stderr).splitlines()
    return first[0].split(" Copyright")[0].strip() if first else None
