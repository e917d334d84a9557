"""What a list read's subject index costs to write as it grows, by the order of its key.

    python -m bench.subject_index [--rows 600000] [--cases 10000]

``audit_subject`` (app/models/audit.py) was keyed by case first until the fifteenth round,
so that "who saw this case" was one index search. The sealer inserts a batch's subjects in
key order, but a batch of a few thousand random case ids into a tree of many thousand leaf
pages changes about one page a subject, and SQLite writes every changed page to its
write-ahead log at the COMMIT. This
probe writes the same batches (50 events of 50 random cases out of ``--cases``, sorted, one
transaction each, in WAL mode with the service's settings) into tables keyed three ways and
prints the cost a subject, insert and COMMIT, for the first and the last batches:

- ``case-first``: the earlier key, (case, event), and an index by event;
- ``epoch-N``: (event // N, case, event) and an index by event: the random keys of one
  epoch of N events only (a case's lookup then searches once an epoch); epoch-512 is the
  service's key since the fifteenth round;
- ``event-first``: (event, case), the order the events come in (no lookup by case).

Wall-clock time on one core, not a target; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from app.db import configure_sqlite

EVENTS_PER_BATCH = 50
SUBJECTS_PER_EVENT = 50

Row = tuple[object, ...]


def _layouts() -> dict[str, tuple[list[str], Callable[[str, int], Row]]]:
    event_index = "CREATE INDEX s_event ON s (event_id)"
    layouts: dict[str, tuple[list[str], Callable[[str, int], Row]]] = {
        "case-first": (
            [
                "CREATE TABLE s (case_id, event_id, PRIMARY KEY (case_id, event_id)) WITHOUT ROWID",
                event_index,
            ],
            lambda case, event: (case, event),
        ),
    }
    for size in (512, 4096):
        layouts[f"epoch-{size}"] = (
            [
                "CREATE TABLE s (epoch, case_id, event_id,"
                " PRIMARY KEY (epoch, case_id, event_id)) WITHOUT ROWID",
                event_index,
            ],
            lambda case, event, size=size: (event // size, case, event),
        )
    layouts["event-first"] = (
        ["CREATE TABLE s (case_id, event_id, PRIMARY KEY (event_id, case_id)) WITHOUT ROWID"],
        lambda case, event: (case, event),
    )
    return layouts


def _run(
    path: Path, ddl: list[str], row: Callable[[str, int], Row], cases: list[str], batches: int
) -> tuple[float, float]:
    rng = random.Random(1)
    connection = sqlite3.connect(path)
    configure_sqlite(connection)
    for statement in ddl:
        connection.execute(statement)
    event, seconds = 0, []
    for batch in range(batches):
        rows = []
        for _ in range(EVENTS_PER_BATCH):
            event += 1
            rows.extend(row(case, event) for case in rng.sample(cases, SUBJECTS_PER_EVENT))
        rows.sort()
        insert = f"INSERT INTO s VALUES ({', '.join('?' * len(rows[0]))})"  # noqa: S608 (placeholders only)
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(insert, rows)
        connection.execute("COMMIT")
        seconds.append(time.perf_counter() - started)
        if batch % 40 == 39:  # the service checkpoints off the event loop, now and then
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    per_batch = EVENTS_PER_BATCH * SUBJECTS_PER_EVENT
    tail = max(1, batches // 4)
    first = sum(seconds[:tail]) / tail / per_batch
    last = sum(seconds[-tail:]) / tail / per_batch
    return first * 1e6, last * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rows", type=int, default=600_000, help="subjects written in all")
    p.add_argument("--cases", type=int, default=10_000, help="distinct cases")
    args = p.parse_args()
    batches = max(4, args.rows // (EVENTS_PER_BATCH * SUBJECTS_PER_EVENT))
    cases = [uuid.uuid4().hex for _ in range(args.cases)]
    print(
        f"{batches} batches of {EVENTS_PER_BATCH * SUBJECTS_PER_EVENT} subjects, SQLite "
        f"{sqlite3.sqlite_version}; µs a subject, insert and COMMIT"
    )
    print(f"{'layout':<12} {'first quarter':>14} {'last quarter':>13}")
    for name, (ddl, row) in _layouts().items():
        with tempfile.TemporaryDirectory() as tmp:
            first, last = _run(Path(tmp) / "subjects.db", ddl, row, cases, batches)
        print(f"{name:<12} {first:>14.2f} {last:>13.2f}")


if __name__ == "__main__":
    main()
