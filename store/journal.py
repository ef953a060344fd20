"""The control journal in ``main.db``: every control packet the home accepted, durably.

Each entry has a state, one of :data:`ACCEPTED`, :data:`STARTED`, :data:`DONE` and
:data:`FAILED` (the journal's ``state`` column), and a reason.
"""

from typing import Final

from mtpkt import pkts
from mtpkt.pkts.control import Archive, Clean, Control, Kill, RerunClean, Run, SetRun, SetState
from mtpkt.store.connection import Database
from mtpkt.store.errors import StoreError
from mtpkt.store.rows import JournalRow, real, text

__all__ = ["ACCEPTED", "DONE", "FAILED", "STARTED", "Journal"]

# Where a journaled control packet stands (the journal's ``state`` column).
ACCEPTED: Final = "accepted"
"""Journaled; its effects may not all be committed yet."""
STARTED: Final = "started"
"""A run whose records are committed: after a restart, its books are rebuilt from them."""
DONE: Final = "done"
"""Carried out (a run: every instance settled)."""
FAILED: Final = "failed"
"""Could not be carried out (the reason says why); a restarted home does not try it again."""

_CONTROL: Final = (Run, Kill, RerunClean, Clean, Archive, SetState, SetRun)


class Journal:
    """Adds control packets to the journal and lists them; each write is its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self, packet: Control, *, received: float, state: str = ACCEPTED, reason: str = ""
    ) -> bool:
        """Journal a control packet durably (per the store's ``durable``), committed before
        this returns: before its sender is answered.

        Returns:
            ``True`` if it is new, ``False`` if its id was already journaled (nothing changes).

        Raises:
            StoreError: the packet cannot be packed, or SQLite failed (nothing was journaled).
        """
        try:
            packed = pkts.pack(packet)
        except pkts.PacketError as exc:
            raise StoreError(f"cannot journal {packet.kind} packet: {exc}") from exc
        values = (
            packet.id,
            packet.kind,
            packet.origin,
            packet.ts,
            received,
            packet.target,
            packet.runname,
            packet.testpatt,
            packet.host,
            packed,
            state,
            reason,
        )
        with self._db.transaction() as conn:
            rows = conn.execute(
                "INSERT INTO journal(id, kind, origin, ts, received, target, runname, testpatt,"
                " host, packet, state, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO NOTHING RETURNING id",
                values,
            ).fetchall()
        return bool(rows)

    def set_state(self, packet_id: bytes, state: str, reason: str = "") -> bool:
        """Change a journaled packet's state; ``False`` if no such packet."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "UPDATE journal SET state = ?, reason = ? WHERE id = ? RETURNING id",
                (state, reason, packet_id),
            ).fetchall()
        return bool(rows)

    def entries(self, *, state: str = "") -> list[JournalRow]:
        """Journaled packets in the order received, optionally only those in ``state``.

        Raises:
            StoreError: a stored packet cannot be read back.
        """
        sql = "SELECT packet, received, state, reason FROM journal"
        args: tuple[str, ...] = ()
        if state:
            sql, args = sql + " WHERE state = ?", (state,)
        with self._db.guard("read"):
            rows = self._db.conn.execute(sql + " ORDER BY received, rowid", args).fetchall()
        return [self._row(row) for row in rows]

    def _row(self, row: tuple[object, ...]) -> JournalRow:
        data = row[0]
        try:
            packet = pkts.unpack(bytes(data) if isinstance(data, bytes | memoryview) else b"")
        except pkts.PacketError as exc:
            raise StoreError(f"{self._db.path}: journal holds an unreadable packet: {exc}") from exc
        if not isinstance(packet, _CONTROL):
            raise StoreError(f"{self._db.path}: journal holds a {packet.kind} packet")
        return JournalRow(
            packet=packet, received=real(row[1]) or 0.0, state=text(row[2]), reason=text(row[3])
        )
