"""Rows of the ``history`` tables: every committed status packet with its stream sequence number."""

from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias

import apsw

from pkts.status import Ack, StatusPacket

__all__ = ["INSERT", "Entry", "held", "insert", "max_seq"]

Entry: TypeAlias = tuple[int, StatusPacket, bytes]
"""``(stream seq, packet, pkts.pack(packet))``: one packet about to be committed."""

INSERT: Final = (
    "INSERT INTO history(seq, packet_id, origin, origin_seq, kind, testname, item_path,"
    " received, packet) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert(conn: apsw.Connection, entries: Sequence[Entry], received: float) -> None:
    """Insert history rows for ``entries`` (inside the caller's transaction)."""
    rows = []
    for seq, packet, packed in entries:
        if isinstance(packet, Ack):
            test, item = "", ""
        else:
            test, item = packet.test, packet.item
        rows.append(
            (seq, packet.id, packet.origin, packet.seq, packet.kind, test, item, received, packed)
        )
    if rows:
        conn.executemany(INSERT, rows)


def held(conn: apsw.Connection, packets: Iterable[StatusPacket]) -> set[bytes]:
    """The ids of ``packets`` the database's history already holds.

    A packet is looked up by origin, origin seq and id: the same packet sent
    twice has all three alike, and the index that leads with the origin stays
    compact (see the ``history`` table in :mod:`store.schema`).
    """
    bindings = [(packet.origin, packet.seq, packet.id) for packet in packets]
    if not bindings:
        return set()
    found = conn.executemany(
        "SELECT packet_id FROM history WHERE origin = ? AND origin_seq = ? AND packet_id = ?",
        bindings,
    )
    return {bytes(row[0]) for row in found}


def max_seq(conn: apsw.Connection) -> int:
    """The newest stream sequence number in the database's history (0 if none)."""
    row = conn.execute("SELECT max(seq) FROM history").fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0
