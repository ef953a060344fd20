"""Opening SQLite databases through apsw, and the transaction plumbing they share.

Every connection of the store gets the per-connection settings of
``apsw.bestpractice.recommended`` (WAL mode, a short busy timeout, foreign
keys, no double-quoted strings, recursive triggers). They are applied to the
store's own connections, not installed with ``apsw.bestpractice.apply()``:
that adds process-wide hooks which would also run inside other components'
``apsw.Connection()`` calls in the same process (the agent's spool, in
``mtpkt demo``), where their errors are not expected. Forwarding SQLite's log
to :mod:`logging` (``apsw.ext.log_sqlite()``) is process-wide too, and left to
the program's entry point.

One recommended setting moves: ``PRAGMA optimize`` may write statistics, so
instead of running when a connection opens (before the schema version is
checked, and failing on a full disk) it runs when a writer closes.

Writers also set ``synchronous`` explicitly:

* ``durable=True``: ``FULL``. A committed transaction survives a process
  crash, an OS crash and power loss.
* ``durable=False``: ``NORMAL``. A committed transaction survives a process
  crash; an OS crash or power loss may lose the last commits (WAL is only
  synced at checkpoints). Acknowledge to senders only what that policy makes safe.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import apsw
import apsw.bestpractice

from mtpkt.store.errors import StoreError

__all__ = ["CHECKPOINT_EVERY", "Database", "connect", "connect_readonly", "reason"]

log = logging.getLogger(__name__)

CHECKPOINT_EVERY: Final = 64
"""A writer runs ``PRAGMA wal_checkpoint(PASSIVE)`` after this many commits of one database."""

_SETTINGS: Final[tuple[Callable[[apsw.Connection], None], ...]] = tuple(
    setting
    for setting in apsw.bestpractice.recommended
    if setting.__name__.startswith("connection_")
    and setting is not apsw.bestpractice.connection_optimize
)
"""apsw's recommended per-connection settings but ``optimize`` (see above)."""


def _open(path: Path, flags: int) -> apsw.Connection:
    try:
        conn = apsw.Connection(str(path), flags=flags)
    except apsw.Error as exc:
        raise StoreError(f"cannot open {path}: {reason(exc)}") from exc
    try:
        for setting in _SETTINGS:
            setting(conn)
    except apsw.Error as exc:
        conn.close()
        raise StoreError(f"cannot open {path}: {reason(exc)}") from exc
    return conn


def reason(exc: BaseException) -> str:
    """One line describing an apsw (or OS) error, e.g. ``database or disk is full``."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def connect(path: Path, *, durable: bool) -> apsw.Connection:
    """Open (creating if missing) a database for writing, in WAL mode.

    Raises:
        StoreError: it cannot be opened, or WAL mode is not available there.
    """
    conn = _open(path, apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
    try:
        conn.pragma("synchronous", "FULL" if durable else "NORMAL")
        mode = conn.pragma("journal_mode")
    except apsw.Error as exc:
        conn.close()
        raise StoreError(f"cannot open {path}: {reason(exc)}") from exc
    if str(mode).lower() != "wal":
        conn.close()
        raise StoreError(f"cannot use WAL mode for {path} (journal mode {mode})")
    return conn


def connect_readonly(path: Path) -> apsw.Connection:
    """Open an existing database read-only.

    Raises:
        StoreError: it does not exist or cannot be opened.
    """
    return _open(path, apsw.SQLITE_OPEN_READONLY)


class Database:
    """One writer connection with explicit transactions and periodic checkpoints.

    A writer commits often; SQLite's auto-checkpoint only runs when the WAL
    has grown past 1000 pages, so every :data:`CHECKPOINT_EVERY` commits the
    writer also runs a ``PASSIVE`` checkpoint, which never waits for readers.
    Readers must keep their transactions short, or no checkpoint can reset
    the WAL and it grows without bound.
    """

    def __init__(self, path: Path, conn: apsw.Connection) -> None:
        self.path = path
        """The database file."""
        self.conn = conn
        """The apsw connection (the store's own; do not hold transactions on it)."""
        self.optimize_on_close = False
        """Run ``PRAGMA optimize`` when closing: set by writers once the schema is checked."""
        self._commits = 0

    @contextlib.contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn apsw errors inside the block into :class:`StoreError` naming this database."""
        try:
            yield
        except apsw.Error as exc:
            raise StoreError(f"cannot {action} {self.path}: {reason(exc)}") from exc

    @contextlib.contextmanager
    def transaction(self, action: str = "write") -> Iterator[apsw.Connection]:
        """A write transaction around the block: committed at its end, rolled back on error.

        The store's one way to write in a transaction; :class:`store.commit.Committer`
        calls :meth:`begin`, :meth:`commit` and :meth:`rollback` itself to commit several
        databases in an order of its choosing.

        Args:
            action: what the block does, for errors (``cannot <action> <path>: …``).

        Raises:
            StoreError: SQLite failed inside the block or at commit (nothing was committed).
        """
        self.begin(action)
        try:
            with self.guard(action):
                yield self.conn
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def begin(self, action: str = "write") -> None:
        """Start a write transaction (taking the write lock now, not at the first write)."""
        with self.guard(action):
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the open transaction, then checkpoint if it is time to."""
        with self.guard("commit to"):
            self.conn.execute("COMMIT")
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self.checkpoint()

    def rollback(self) -> None:
        """Roll back the open transaction, if any (SQLite may already have done it)."""
        if not self.conn.in_transaction:
            return
        try:
            self.conn.execute("ROLLBACK")
        except apsw.Error as exc:
            # Nothing better to do: what was not committed is lost either way,
            # and the next BEGIN will report a connection that is still unusable.
            log.warning("cannot roll back %s: %s", self.path, reason(exc))

    def checkpoint(self) -> None:
        """Copy the WAL into the database where no reader needs it (``PASSIVE``)."""
        try:
            self.conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.Error as exc:
            # The commit before it succeeded; a failed checkpoint loses nothing
            # and the next one (or SQLite's auto-checkpoint) catches up.
            log.warning("checkpoint of %s failed: %s", self.path, reason(exc))

    def close(self) -> None:
        """Roll back anything open, optimize if asked to, and close the connection."""
        self.rollback()
        try:
            if self.optimize_on_close:
                self.conn.pragma("optimize")
        except apsw.Error as exc:  # statistics are an optimization; the data is committed
            log.warning("PRAGMA optimize on %s failed: %s", self.path, reason(exc))
        try:
            self.conn.close()
        except apsw.Error as exc:
            log.warning("cannot close %s: %s", self.path, reason(exc))
