"""The task ids a host agent has recorded: what makes a task execute at most once (DESIGN 2).

The home sends each :class:`pkts.link.Task` until the agent acknowledges it,
so the same task can arrive many times, also after the agent restarted. The
agent records a task's id here *before* acting on it and acts only when the id
is new; the record is on disk (``synchronous=FULL``) when :meth:`SeenTasks.add`
returns, so it survives a crash of the process and of the machine.

Ids older than the retention are pruned: by then the home has long stopped
sending them (it sends a task only until it is acknowledged).

A run task's test is also noted as *unfinished* until the agent has reported
its end. What is still noted when an agent starts was cut short by the end
of the agent before it (a crash, ``kill -9``, a power loss): the new agent
reports those tests DEAD, since their processes died with the old one.
"""

import contextlib
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import apsw
import apsw.bestpractice

from mtpkt.agents.area import TestRef
from mtpkt.bus.sqlite import transaction

__all__ = ["RETENTION", "SeenError", "SeenTasks"]

RETENTION: Final = 30 * 86400.0
"""Seconds an id is kept by default."""
PRUNE_EVERY: Final = 10_000
"""Ids added between two prunings in a long-lived agent."""
_BUSY_TIMEOUT_MS: Final = 100
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS seen (
    id BLOB PRIMARY KEY,   -- the task's packet id
    ts REAL NOT NULL       -- when it was recorded (this host's clock)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_ts ON seen (ts);
CREATE TABLE IF NOT EXISTS unfinished (
    id BLOB PRIMARY KEY,   -- the run task's packet id
    target TEXT NOT NULL,
    runname TEXT NOT NULL,
    test TEXT NOT NULL,
    item TEXT NOT NULL
) WITHOUT ROWID;
"""


def _blob(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes | memoryview) else b""


class SeenError(Exception):
    """The file of seen task ids cannot be used (message is one line)."""


class SeenTasks:
    """Task ids recorded durably, in a small SQLite file (WAL, ``synchronous=FULL``).

    Methods are thread-safe.

    Args:
        path: the SQLite file, e.g. ``state_dir/seen.db``; created with its parent if missing.
        retention: seconds an id is kept; older ones are pruned at open and now and then.

    Raises:
        SeenError: the file cannot be opened, or is not a file of seen ids.
    """

    def __init__(self, path: Path, *, retention: float = RETENTION) -> None:
        self.path = Path(path)
        """Where the ids live."""
        self._retention = retention
        self._lock = threading.Lock()
        self._added = 0
        self._to_finish: set[bytes] = set()  # ends noted by finish() that did not reach the file
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = apsw.Connection(str(self.path))
        except (OSError, apsw.Error) as exc:
            raise SeenError(f"cannot open {self.path}: {exc}") from None
        try:
            apsw.bestpractice.connection_busy_timeout(self._db, _BUSY_TIMEOUT_MS)
            apsw.bestpractice.connection_wal(self._db)
            # FULL: an id is on disk before its task runs, even across a power loss.
            self._db.pragma("synchronous", "FULL")
            with transaction(self._db):
                self._db.execute(_SCHEMA)
            self._prune()
        except apsw.Error as exc:
            self._db.close()
            raise SeenError(f"cannot use {self.path}: {exc}") from None

    def add(self, task_id: bytes, unfinished: TestRef | None = None) -> bool:
        """Record a task id; durable when this returns.

        Args:
            task_id: the task's id.
            unfinished: the test a new run task runs: noted unfinished until :meth:`finish`.

        Returns:
            True if the id is new (act on the task), False if it was recorded before.

        Raises:
            apsw.Error: the write failed (the id is then not recorded).
        """
        return task_id in self.add_many([(task_id, unfinished)])

    def add_many(self, tasks: Sequence[tuple[bytes, TestRef | None]]) -> set[bytes]:
        """Record task ids in one durable write (see :meth:`add`).

        Returns:
            The ids that are new.

        Raises:
            apsw.Error: the write failed (none of them is then recorded).
        """
        if not tasks:
            return set()
        new: set[bytes] = set()
        now = time.time()
        with self._lock:
            with transaction(self._db):
                self._delete_finished()
                for task_id, unfinished in tasks:
                    before = self._db.total_changes()
                    self._db.execute(
                        "INSERT OR IGNORE INTO seen (id, ts) VALUES (?, ?)", (task_id, now)
                    )
                    if self._db.total_changes() == before:
                        continue
                    new.add(task_id)
                    if unfinished is not None:
                        self._db.execute(
                            "INSERT OR REPLACE INTO unfinished (id, target, runname, test, item)"
                            " VALUES (?, ?, ?, ?, ?)",
                            (
                                task_id,
                                unfinished.target,
                                unfinished.runname,
                                unfinished.test,
                                unfinished.item,
                            ),
                        )
            self._to_finish.clear()
            self._added += len(new)
            if self._added >= PRUNE_EVERY:
                self._prune()
        return new

    def finish(self, task_id: bytes) -> None:
        """The run task's test has ended and its end is reported (in the spool).

        Committed with ``synchronous=NORMAL``, like the spool that holds the
        test's end: it survives a crash of the process; after an OS crash or a
        power loss the next agent may report as DEAD a test whose end was lost
        with the spool's last packets anyway. The next :meth:`add` syncs it.

        An end that cannot be written (the disk failed) is kept in memory and
        written with the next :meth:`finish` or :meth:`add_many` that succeeds,
        so the next start of the agent does not report that test DEAD.

        Raises:
            apsw.Error: the write failed.
        """
        with self._lock:
            self._to_finish.add(task_id)
            self._db.pragma("synchronous", "NORMAL")
            try:
                with transaction(self._db):
                    self._delete_finished()
            finally:
                self._db.pragma("synchronous", "FULL")
            self._to_finish.clear()

    def _delete_finished(self) -> None:
        """Delete the ended tasks' unfinished notes (in the caller's transaction)."""
        if self._to_finish:
            self._db.executemany(
                "DELETE FROM unfinished WHERE id = ?", [(task_id,) for task_id in self._to_finish]
            )

    def unfinished(self) -> list[tuple[bytes, TestRef]]:
        """The run tasks noted unfinished, with their tests."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, target, runname, test, item FROM unfinished"
            ).fetchall()
        return [(_blob(row[0]), TestRef(*(str(part) for part in row[1:]))) for row in rows]

    def __contains__(self, task_id: object) -> bool:
        """Whether the id was recorded."""
        if not isinstance(task_id, bytes):
            return False
        with self._lock:
            row = self._db.execute("SELECT 1 FROM seen WHERE id = ?", (task_id,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        """How many ids are kept."""
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM seen").fetchone()
        assert row is not None
        return int(row[0])

    def _prune(self) -> None:
        """Forget ids older than the retention (the caller holds the lock, or is __init__)."""
        with transaction(self._db):
            self._db.execute("DELETE FROM seen WHERE ts < ?", (time.time() - self._retention,))
        self._added = 0

    def close(self) -> None:
        """Write the ends still kept in memory if the file takes them now, and close the file.
        Later calls do nothing."""
        with self._lock:
            if self._to_finish:
                with contextlib.suppress(apsw.Error):  # then the next start reports them DEAD
                    with transaction(self._db):
                        self._delete_finished()
            self._db.close()
