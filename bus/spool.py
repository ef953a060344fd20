"""The agent's durable spool: status packets waiting for the home's receipt (DESIGN guarantee 3).

An agent reports through ``Reporter(origin, spool.put, next_seq=spool.next_seq)``,
so every status packet is on disk before anything tries to send it; a
:class:`bus.Sender` deletes packets only when the home's receipt lists them.

When the spool's disk fails (full, read-only, an I/O error) the packets put
meanwhile are *held*: kept in memory, in order, numbered as usual, and not
sent, since only what is on disk is sent. :meth:`Spool.flush` (the Sender
calls it while packets are held) writes them as soon as the disk takes them
again. So a failing disk loses nothing unless the agent itself ends before it
is fixed; then :meth:`Spool.close` says how many packets were lost. The test
that reported them is not held up: a disk fault must not stop its steps.

Calls from inside a test (``megatest -step`` …, :mod:`mtpkt.agents.host.calls`)
are answered exactly once: the packets a call made and the call's id with its
answer are written in ONE transaction (:meth:`Spool.put_many` with ``call=``),
and :meth:`Spool.answer` finds the answer of a call that comes again, also after
the agent restarted. Schema v2 added the ``calls`` table; a v1 spool is upgraded
when opened. Answers are kept :data:`CALLS_KEPT` seconds.
"""

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, cast

import apsw
import apsw.bestpractice

from mtpkt import pkts
from mtpkt.bus.sqlite import transaction
from mtpkt.pkts.status import StatusPacket
from mtpkt.pkts.text import one_line

__all__ = ["CALLS_KEPT", "MAX_PACKET_SIZE", "Spool", "SpoolError", "SpoolInUse"]

_log = logging.getLogger(__name__)

MAX_PACKET_SIZE: Final = pkts.MAX_PACKET_SIZE
"""Largest packed packet the spool accepts: one that fits a frame on its own (also
behind the ``published`` header of the home's live stream), so a spooled packet can
always be sent and published, if only alone."""
SCHEMA_VERSION: Final = 2
"""v2 added ``calls`` (the answered calls from inside tests); v1 is upgraded on open."""
CALLS_KEPT: Final = 86400.0
"""Seconds an answered call is remembered: far longer than a caller retries."""
_BUSY_TIMEOUT_MS: Final = 100
RETRY_HELD: Final = 0.2
"""Seconds after a failed write before a :meth:`Spool.put` tries the file again (a burst of
puts on a failing disk appends to what is held; :meth:`Spool.flush` always tries)."""
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS packets (
    seq INTEGER PRIMARY KEY,   -- the packet's own seq: sending order
    id BLOB NOT NULL UNIQUE,   -- what receipts name
    data BLOB NOT NULL         -- pkts.pack() of the packet
);
CREATE TABLE IF NOT EXISTS calls (
    id BLOB PRIMARY KEY,       -- the caller's call id
    answer BLOB NOT NULL,      -- what the call was answered
    at REAL NOT NULL           -- when (Unix seconds), to forget old ones
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1);
"""


class SpoolError(Exception):
    """The spool file cannot be used (held by another process, or not a spool)."""


class SpoolInUse(SpoolError):
    """Another process holds the spool (an agent of the same name runs)."""


class Spool:
    """Status packets waiting for the home's receipt, in a small SQLite file.

    The file uses WAL with ``synchronous=NORMAL``: a packet whose :meth:`put`
    returned survives a crash or kill of the process; a crash of the operating
    system or a power loss may lose the last packets put (SQLite's WAL trade-off).

    Packets that cannot be written are held in memory (see the module's doc):
    ``len()`` counts them, :attr:`held` says how many, :meth:`flush` writes them.

    One process owns a spool at a time: the file is locked exclusively while
    open, so a second agent on the same spool fails with :class:`SpoolError`
    instead of numbering packets over the first one's. Methods are thread-safe.

    Args:
        path: the SQLite file; created with its parent directories if missing.

    Raises:
        SpoolError: another process (or another open :class:`Spool`) holds the file.
    """

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        """Where the spool lives."""
        self._changed = threading.Condition(threading.Lock())
        self._held: list[tuple[int, bytes, bytes]] = []  # (seq, id, data) not yet written
        self._held_calls: dict[bytes, bytes] = {}  # call id -> answer, written with _held
        self._failure = ""  # why the last write failed, while packets are held
        self._retry_at = 0.0  # monotonic time before which put() only holds
        self._db = apsw.Connection(str(path))
        try:
            self._setup()
            self._next_seq = self._read_next_seq()
            self._count = self._scalar("SELECT count(*) FROM packets")
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, apsw.BusyError):
                raise SpoolInUse(f"spool {path} is in use by another process") from None
            if isinstance(exc, apsw.Error):
                raise SpoolError(f"cannot open spool {path}: {exc}") from None
            raise

    def _setup(self) -> None:
        db = self._db
        apsw.bestpractice.connection_busy_timeout(db, _BUSY_TIMEOUT_MS)
        apsw.bestpractice.connection_dqs(db)
        # Exclusive: the lock taken by the first write below is kept until close.
        db.pragma("locking_mode", "EXCLUSIVE")
        apsw.bestpractice.connection_wal(db)
        # NORMAL in WAL mode: commits survive a process crash, not a power loss (see class doc).
        db.pragma("synchronous", "NORMAL")
        with transaction(db):
            version = self._scalar("PRAGMA user_version")
            if version not in (0, 1, SCHEMA_VERSION):  # 1: upgraded by _SCHEMA's calls
                raise SpoolError(
                    f"spool {self.path} has schema {version}, expected {SCHEMA_VERSION}"
                )
            db.execute(_SCHEMA)
            db.pragma("user_version", SCHEMA_VERSION)
            db.execute("DELETE FROM calls WHERE at < ?", (time.time() - CALLS_KEPT,))

    def _scalar(self, sql: str) -> int:
        row = self._db.execute(sql).fetchone()
        assert row is not None
        value = row[0]
        assert isinstance(value, int)
        return value

    def _read_next_seq(self) -> int:
        return self._scalar("SELECT value FROM meta WHERE key = 'next_seq'")

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next packet must carry (kept in the file: it survives deletions)."""
        with self._changed:
            return self._next_seq

    def put(self, packet: StatusPacket) -> None:
        """Store one packet; it is durable when this returns, unless the file cannot be
        written: then it is held (see :meth:`put_many`).

        Raises:
            ValueError: ``packet.seq`` is not :attr:`next_seq`, or the packet is too large.
            pkts.PacketError: the packet cannot be encoded.
        """
        self.put_many([packet])

    def put_many(
        self, packets: Sequence[StatusPacket], *, call: tuple[bytes, bytes] | None = None
    ) -> None:
        """Store packets with consecutive ``seq`` from :attr:`next_seq`, in one transaction.

        All or nothing: if one is refused, none is stored. When the file cannot be
        written, they are held in memory behind any held before, numbered all the
        same, and written by a later :meth:`put_many`, :meth:`flush` or :meth:`close`.

        Args:
            packets: the packets, in ``seq`` order.
            call: ``(call id, answer)`` of the call that made them, written in the same
                transaction (see :meth:`answer`).

        Raises:
            ValueError: the ``seq`` numbers do not continue :attr:`next_seq`, or a packet is
                larger than :data:`MAX_PACKET_SIZE`.
            pkts.PacketError: a packet cannot be encoded.
        """
        rows = []
        for packet in packets:
            data = pkts.pack(packet)
            if len(data) > MAX_PACKET_SIZE:
                raise ValueError(
                    f"{packet.kind} packet seq {packet.seq} is {len(data)} bytes packed,"
                    f" more than a frame can carry ({MAX_PACKET_SIZE})"
                )
            rows.append((packet.seq, packet.id, data))
        if not rows and call is None:
            return
        with self._changed:
            for offset, (seq, _, _) in enumerate(rows):
                if seq != self._next_seq + offset:
                    raise ValueError(
                        f"packet seq {seq} out of order: spool {self.path} expects"
                        f" {self._next_seq + offset}"
                    )
            self._next_seq += len(rows)
            self._held.extend(rows)
            if call is not None:
                self._held_calls[call[0]] = call[1]
            if not self._failure or time.monotonic() >= self._retry_at:
                self._write_held()

    def answer(self, call_id: bytes) -> tuple[bytes, bool] | None:
        """The answer of a call already made, and whether it is on disk (not only held).

        Returns:
            ``(answer, durable)``, or None for a call never made (or forgotten after
            :data:`CALLS_KEPT`).
        """
        with self._changed:
            if call_id in self._held_calls:
                return self._held_calls[call_id], False
            row = self._db.execute("SELECT answer FROM calls WHERE id = ?", (call_id,)).fetchone()
        return None if row is None else (cast(bytes, row[0]), True)

    @property
    def held(self) -> int:
        """Packets put but not yet written, because the file could not be written."""
        with self._changed:
            return len(self._held)

    def flush(self) -> bool:
        """Write the held packets, in order, if the file takes them now; whether none is held."""
        with self._changed:
            return self._write_held()

    def _write_held(self) -> bool:
        """Write every held packet in one transaction (the caller holds the lock)."""
        if not self._held and not self._held_calls:
            return True
        rows = self._held
        calls = [(call_id, answer, time.time()) for call_id, answer in self._held_calls.items()]
        try:
            with transaction(self._db):
                self._db.executemany("INSERT INTO packets (seq, id, data) VALUES (?, ?, ?)", rows)
                self._db.executemany(
                    "INSERT OR REPLACE INTO calls (id, answer, at) VALUES (?, ?, ?)", calls
                )
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'next_seq'", (self._next_seq,)
                )
        except apsw.Error as exc:
            self._hold(exc)
            self._retry_at = time.monotonic() + RETRY_HELD
            return False
        if self._failure:
            _log.warning(
                "spool %s can be written again: %d held status packets written",
                self.path,
                len(rows),
            )
            self._failure = ""
        self._held = []
        self._held_calls = {}
        self._count += len(rows)
        self._changed.notify_all()
        return True

    def _hold(self, exc: apsw.Error) -> None:
        """Log the first failure of a fault, and any new reason for it (the lock is held)."""
        reason = one_line(exc)
        if reason != self._failure:
            _log.error(
                "spool %s cannot be written (%s): status packets are held in memory until it"
                " can (%d so far); they are lost if the agent stops first",
                self.path,
                reason,
                len(self._held),
            )
            self._failure = reason

    def pending(self, *, limit: int = 500, max_bytes: int = 1_000_000) -> list[tuple[bytes, bytes]]:
        """The oldest packets still waiting for a receipt.

        Args:
            limit: at most this many packets.
            max_bytes: stop before the packed sizes add up to more than this
                (the first packet is returned whatever its size, so a big one is not stuck).

        Returns:
            ``(packet id, pkts.pack bytes)`` pairs, oldest first.
        """
        result: list[tuple[bytes, bytes]] = []
        total = 0
        with self._changed:
            cursor = self._db.execute(
                "SELECT id, data FROM packets ORDER BY seq LIMIT ?", (max(0, limit),)
            )
            for packet_id, data in cast(Iterable[tuple[bytes, bytes]], cursor):
                total += len(data)
                if result and total > max_bytes:
                    break
                result.append((packet_id, data))
            cursor.close()
        return result

    def remove(self, ids: Iterable[bytes]) -> int:
        """Delete packets the home has acknowledged; ids not in the spool are ignored.

        Returns:
            How many packets were deleted.
        """
        params = [(packet_id,) for packet_id in ids]
        if not params:
            return 0
        with self._changed:
            before = self._db.total_changes()
            with transaction(self._db):
                self._db.executemany("DELETE FROM packets WHERE id = ?", params)
            removed = self._db.total_changes() - before
            self._count -= removed
            self._changed.notify_all()
        return removed

    def __len__(self) -> int:
        """How many packets wait for a receipt (held ones included)."""
        with self._changed:
            return self._count + len(self._held)

    def wait(self, timeout: float) -> bool:
        """Wait until the spool holds a packet, at most ``timeout`` seconds.

        Returns at once when packets are already waiting, so a sender that checks
        and then waits cannot miss a :meth:`put` made in between. Held packets
        do not count: they cannot be sent yet.

        Returns:
            Whether packets are waiting in the file.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._count > 0, timeout)

    def close(self) -> None:
        """Write what is held if the file takes it now, then close the file (and release its
        lock). Held packets that still cannot be written are lost, and logged as such.
        Later calls do nothing."""
        with self._changed:
            if self._held and not self._write_held():
                first, last = self._held[0][0], self._held[-1][0]
                _log.error(
                    "spool %s: %d status packets (seq %d to %d) could not be written: lost",
                    self.path,
                    len(self._held),
                    first,
                    last,
                )
                self._held = []
                self._held_calls = {}
            self._db.close()
