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
        if not driver.in_transaction:
            # SQLite ended the group's transaction itself (it does on a full disk or an I/O
            # error). A SAVEPOINT now would begin and its RELEASE commit a transaction of
            # this unit's own, answered as failed when the group's COMMIT fails.
            raise CommitFailed("The database ended the transaction; nothing was done")
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


class Group:
    """One group: its transaction, and the callers waiting for its COMMIT."""

    __slots__ = ("transaction", "waiters")

    def __init__(self, transaction: Transaction) -> None:
        self.transaction = transaction
        self.waiters: list[asyncio.Future[None]] = []


class GroupCommit:
    """The open group on the one connection; each group's COMMIT, and who waits for it."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._group: Group | None = None

    @property
    def open(self) -> bool:
        return self._group is not None and self._group.transaction.is_active

    def join(self) -> Group:
        """The open group, or a new one (also when the last one's transaction has ended):
        its COMMIT is scheduled for when the loop has run what is ready now (other
        requests' units)."""
        group = self._group
        if group is None or not group.transaction.is_active:
            group = self._group = Group(self._connect().begin())
            asyncio.get_running_loop().call_soon(self._commit, group)
        return group

    def savepoint(self, connection: Connection) -> UnitSavepoint:
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return UnitSavepoint(driver)

    @staticmethod
    async def committed(group: Group) -> None:
        """Wait for the COMMIT of the group a unit ran in (registered before the loop can
        run that COMMIT: nothing awaits between a unit and this call)."""
        waiter = asyncio.get_running_loop().create_future()
        group.waiters.append(waiter)
        await waiter

    def _commit(self, group: Group) -> None:
        if self._group is group:
            self._group = None
        failure: BaseException | None = None
        transaction = group.transaction
        try:
            if not transaction.is_active:
                # Rolled back under the units' feet: what they did is gone.
                raise RuntimeError("the group's transaction ended before its COMMIT")
            transaction.commit()
        except Exception as exc:
            failure = exc
            if transaction.is_active:
                with contextlib.suppress(Exception):
                    transaction.rollback()
        for waiter in group.waiters:
            if waiter.done():
                continue
            if failure is None:
                waiter.set_result(None)
            else:
                error = CommitFailed("The change could not be saved; nothing was kept")
                error.__cause__ = failure
                waiter.set_exception(error)
