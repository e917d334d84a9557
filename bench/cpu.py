"""Who used the CPU during a run: the server, the load generator, and everybody else.

The figures are only comparable when the machine is otherwise idle; ``foreign_cores`` says
how much CPU other processes took meanwhile, so a noisy run shows up in the report. The
server's CPU time per request does not depend on contention, so it is reported too.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK  # leave out guest time, counted in user already


def process_cpu_s(pid: int) -> float:
    # utime and stime are fields 14 and 15; the command name (field 2) may contain spaces.
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / TICK


def postgres_cpu_s() -> float:
    """CPU time of the PostgreSQL server's processes (the database's share of a run)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        name, _, rest = text.partition("(")[2].rpartition(")")
        if name == "postgres":
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def _ours_s() -> float:
    me = os.times()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.user + me.system + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class CpuUse:
    server_s: float
    database_s: float  # PostgreSQL's processes (0 on SQLite, which runs in the server)
    foreign_cores: float  # average number of cores other processes kept busy


class CpuMeter:
    """``with CpuMeter(pid) as meter: ...``; then ``meter.result``."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.result: CpuUse | None = None

    def __enter__(self) -> CpuMeter:
        self._t = time.monotonic()
        self._busy = _machine_busy_s()
        self._server = process_cpu_s(self.pid)
        self._ours = _ours_s()
        self._db = postgres_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self._t
        server = process_cpu_s(self.pid) - self._server
        ours = _ours_s() - self._ours  # the bench process and the load generator it waited for
        db = postgres_cpu_s() - self._db
        foreign = max(0.0, _machine_busy_s() - self._busy - server - ours - db)
        self.result = CpuUse(server, db, foreign / elapsed if elapsed else 0.0)


def busy_cores(interval_s: float = 1.0) -> float:
    """How many cores the machine kept busy over ``interval_s`` (call it while idle)."""
    before = _machine_busy_s()
    time.sleep(interval_s)
    return (_machine_busy_s() - before) / interval_s


def wait_until_quiet(max_wait_s: float, threshold_cores: float) -> float:
    """Wait (up to ``max_wait_s``) until other processes use under ``threshold_cores``;
    return the last reading."""
    deadline = time.monotonic() + max_wait_s
    reading = busy_cores()
    while reading > threshold_cores and time.monotonic() < deadline:
        print(f"    waiting for a quiet machine ({reading:.2f} cores busy)", flush=True)
        time.sleep(5)
        reading = busy_cores()
    return reading
