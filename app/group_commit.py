"""Group commit for the embedded SQLite database: units of work that run in one turn of the
event loop share one COMMIT, each inside a SAVEPOINT of its own.

On SQLite every unit of work runs on the event loop, one after another, on one connection
(``app.db``). Each used to commit on its own, and every request commits (a read writes its
audit event): the COMMIT, which appends every page the unit changed to the write-ahead log,
was the largest single cost of a cheap read (~35 µs of ~250 µs in the app; the audit event
alone changes seven pages: its row, five indexes and the sealing queue). Units that run
before the loop comes round again now share one transaction and one COMMIT; pages they
all touch are written once.

What each unit is promised does not change:

- **All or nothing, alone.** A unit runs inside its own ``SAVEPOINT``: a unit that fails is
  rolled back to it without touching the units before or after it in the group.
- **Nothing is answered before it is durable.** A unit's caller waits for the group's
  COMMIT before it sees the unit's result (``Database.run``). If the COMMIT fails, every
  unit of the group fails with ``CommitFailed``: none of their changes or audit events was
  kept, and none of their requests is answered as if it had been.
- **Isolation.** Units run one at a time, as before; a unit sees what the units before it
  in the group did, and commits with them or not at all, so it never answers from something
  that is later undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable

from sqlalchemy import Connection, Transaction


class CommitFailed(RuntimeError):
    """The shared COMMIT of a group of units failed: nothing any of them did was kept."""


class UnitSavepoint:
    """A unit's ``SAVEPOINT`` in the group's transaction, issued on the driver.

    Through SQLAlchemy (``begin_nested``) a SAVEPOINT and its RELEASE cost ~37 µs, more than
    the COMMIT they save; through the driver, a few.
    """

    __slots__ = ("_driver", "is_active")

    def __init__(self, driver: sqlite3.Connection) -> None:
        self._driver = driver
        driver.execute("SAVEPOINT unit")
        self.is_active = True

    def commit(self) -> None:
        self.is_active = False
        self._driver.execute("RELEASE unit")

    def rollback(self) -> None:
        if self.is_active:
            self.is_active = False
            self._driver.execute("ROLLBACK TO unit")
            self._driver.execute("RELEASE unit")


class GroupCommit:
    """The open group's transaction on the one connection, and who waits for its COMMIT."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._group: Transaction | None = None
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def open(self) -> bool:
        return self._group is not None and self._group.is_active

    def join(self) -> None:
        """Make sure a group's transaction is open; the first unit of a group schedules its
        COMMIT for when the loop has run what is ready now (other requests' units)."""
        if self._group is None:
            self._group = self._connect().begin()
            asyncio.get_running_loop().call_soon(self._commit)

    def savepoint(self, connection: Connection) -> UnitSavepoint:
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return UnitSavepoint(driver)

    async def committed(self) -> None:
        """Wait for the COMMIT of the group the caller's unit ran in."""
        if self._group is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _commit(self) -> None:
        group, waiters = self._group, self._waiters
        self._group, self._waiters = None, []
        failure: BaseException | None = None
        try:
            if group is None or not group.is_active:
                # Rolled back under the units' feet: what they did is gone.
                raise RuntimeError("the group's transaction ended before its COMMIT")
            group.commit()
        except Exception as exc:
            failure = exc
            if group is not None and group.is_active:
                with contextlib.suppress(Exception):
                    group.rollback()
        for waiter in waiters:
            if waiter.done():
                continue
            if failure is None:
                waiter.set_result(None)
            else:
                error = CommitFailed("The change could not be saved; nothing was kept")
                error.__cause__ = failure
                waiter.set_exception(error)
