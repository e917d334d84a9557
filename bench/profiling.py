"""Optional: sample the service with py-spy while it is under load, and summarise hot spots.

``--profile`` runs one extra load pass per scenario (after the measured one, so the figures
are not taken under the profiler) with ``py-spy record --format raw`` attached to the
server, and writes the collapsed stacks and a summary to bench/results/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .servers import ROOT

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    binary = py_spy()
    if binary is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--gil",  # only the thread holding the GIL: CPU, not threads waiting on I/O
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _package(label: str) -> str:
    """The top-level package (or stdlib module) of a labelled frame."""
    match = _FRAME.match(label)
    if not match:
        return "other"
    return match["file"].split("/", 1)[0].removesuffix(".py")


def _label(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", f"{ROOT}/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


# Leaf frames of threads with nothing to do (the thread pool waiting for work).
IDLE = ("Condition.wait (threading.py)", "Queue.get (queue.py)", "Event.wait (threading.py)")


def summarise(raw: Path, top: int = 25) -> str:
    """Busy samples only: self time by package and function, inclusive time by function and by
    the service's own functions (app/)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_label(f) for f in stack.split(";") if _FRAME.match(f)]
        if not frames:
            continue
        if frames[-1] in IDLE:
            idle += count
            continue
        total += count
        for label in set(frames):
            inclusive[label] += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
    if not total:
        return "no busy samples\n"

    def table(counter: Counter[str], title: str, n: int) -> list[str]:
        rows = [f"{title} (% of {total} busy samples; {idle} idle thread-pool samples left out)"]
        rows += [f"  {100 * c / total:5.1f}%  {label}" for label, c in counter.most_common(n)]
        return rows

    in_app = Counter({k: v for k, v in inclusive.items() if k.endswith(".py)") and "(app/" in k})
    lines = table(packages, "self time by package", len(packages))
    lines += ["", *table(own, "self time by function", top)]
    lines += ["", *table(in_app, "inclusive time in the service's functions", top)]
    lines += ["", *table(inclusive, "inclusive time by function", 2 * top)]
    return "\n".join(lines) + "\n"
