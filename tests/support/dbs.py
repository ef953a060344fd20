"""What tests read of the SQLite files their processes wrote: read-only, closed at once.

A connection a test keeps open would hold the WAL the home checkpoints, and
one left open by a failed assertion would outlive the test.
"""

from collections.abc import Sequence
from pathlib import Path

import apsw

from mtpkt import pkts
from mtpkt.pkts.status import StatusPacket

__all__ = ["Value", "readonly", "rows", "status_packet"]

Value = str | int | float | bytes | None
"""What a query binds to its parameters."""


def readonly(path: Path) -> apsw.Connection:
    """A read-only connection to the database at ``path``; the caller closes it."""
    return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)


def rows(path: Path, sql: str, params: Sequence[Value] = ()) -> list[tuple[object, ...]]:
    """Every row of ``sql`` on the database at ``path``, read through a connection of its own."""
    db = readonly(path)
    try:
        return [tuple(row) for row in db.execute(sql, tuple(params))]
    finally:
        db.close()


def status_packet(data: object) -> StatusPacket:
    """A status packet from a ``history.packet`` value (its msgpack map).

    Raises:
        AssertionError: the value is not the bytes of a status packet.
    """
    assert isinstance(data, bytes), data
    packet = pkts.unpack(data)
    assert isinstance(packet, StatusPacket), packet
    return packet
