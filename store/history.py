"""Rows of the ``history`` tables: every committed status packet with its stream sequence number.

``main.db`` holds the Acks' history, each ``<run_id>.db`` its run's; their
writers share :class:`HistoryDb`.
"""

from collections.abc import Iterable
from typing import Final, TypeAlias

import apsw

from mtpkt.store.connection import Database

__all__ = ["INSERT", "HistoryDb", "Key", "Row", "held", "insert", "max_seq"]

Row: TypeAlias = tuple[int, bytes, str, int, str, str, str, float, bytes]
"""One ``history`` row, in :data:`INSERT`'s order: ``(seq, packet_id, origin, origin_seq,
kind, testname, item_path, received, packet)``, where ``packet`` is ``pkts.pack(packet)``
and an Ack's ``testname`` and ``item_path`` are ``''``."""

INSERT: Final = (
    "INSERT INTO history(seq, packet_id, origin, origin_seq, kind, testname, item_path,"
    " received, packet) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


Key: TypeAlias = tuple[str, int, bytes]
"""What a packet is looked up by: ``(origin, origin_seq, packet_id)``."""


def insert(conn: apsw.Connection, rows: Iterable[Row]) -> None:
    """Insert history rows (inside the caller's transaction)."""
    conn.executemany(INSERT, rows)


def held(conn: apsw.Connection, keys: Iterable[Key], table: str = "history") -> set[bytes]:
    """The ids of the packets of ``keys`` the database's history (or ``cleaned`` table)
    already holds.

    A packet is looked up by origin, origin seq and id: the same packet sent
    twice has all three alike, and the index that leads with the origin stays
    compact (see the ``history`` table in :mod:`store.schema`).
    """
    bindings = list(keys)
    if not bindings:
        return set()
    found = conn.executemany(
        f"SELECT packet_id FROM {table} WHERE origin = ? AND origin_seq = ? AND packet_id = ?",
        bindings,
    )
    return {bytes(row[0]) for row in found}


def max_seq(conn: apsw.Connection) -> int:
    """The newest stream sequence number in the database's history (0 if none)."""
    row = conn.execute("SELECT max(seq) FROM history").fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


class HistoryDb(Database):
    """A writer's connection to a database with a ``history`` table: what the dedupe and
    the recovery of :class:`store.commit.Committer` ask of each."""

    def max_seq(self) -> int:
        """The newest stream sequence number this database's history holds (0 if none)."""
        with self.guard("read"):
            return max_seq(self.conn)

    def held(self, keys: Iterable[Key]) -> set[bytes]:
        """The ids of the packets of ``keys`` this database's history already holds."""
        with self.guard("read"):
            return held(self.conn, keys)
