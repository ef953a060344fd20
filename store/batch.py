"""Turning a batch of new status packets into each database's rows, in one pass.

This is the writer's hot loop: every committed packet goes through
:func:`number` once, so it does all per-packet work there (stream sequence
number, history row, origin bookkeeping) rather than in several passes.
"""

from collections.abc import Sequence
from typing import Final

import pkts
from pkts.status import StatusPacket
from store.errors import StoreError
from store.history import Row

__all__ = ["MAIN", "Numbered", "Part", "Routed", "number"]

MAIN: Final = 0
"""Routing key of ``main.db`` (run ids start at 1); Acks go there."""

Routed = tuple[int, StatusPacket, bytes | None]
"""``(routing key, packet, its packed map if the caller had it)``."""


class Part:
    """One database's share of a batch: its history rows and its packets, in stream order."""

    __slots__ = ("packets", "rows")

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.packets: list[StatusPacket] = []

    @property
    def last_seq(self) -> int:
        """The newest stream seq of this part."""
        return self.rows[-1][0]


class Numbered:
    """What :func:`number` made of a batch."""

    __slots__ = ("changed", "committed", "gaps", "parts")

    def __init__(self) -> None:
        self.parts: dict[int, Part] = {}
        """Each routing key's rows."""
        self.committed: list[tuple[int, StatusPacket]] = []
        """The packets with their stream seqs, in input order."""
        self.changed: dict[str, int] = {}
        """Origins whose last seq moved, with the new value."""
        self.gaps: list[str] = []
        """One warning per packet that does not follow its origin's last seq."""


def _pack(packet: StatusPacket) -> bytes:
    try:
        return pkts.pack(packet)
    except pkts.PacketError as exc:
        raise StoreError(f"cannot store {packet.kind} packet from {packet.origin}: {exc}") from exc


def _gap(packet: StatusPacket, last: int) -> str:
    kind = "a gap" if packet.seq > last + 1 else "out of order or repeated"
    return f"status packets from {packet.origin}: seq {packet.seq} follows {last} ({kind})"


def number(new: Sequence[Routed], head: int, origins: dict[str, int], received: float) -> Numbered:
    """Give each new packet the next stream seq after ``head`` and its database's history row.

    ``origins`` (each origin's last seq) is advanced over the packets; a
    packet that does not follow its origin's last seq is applied anyway and
    noted in ``gaps``.

    Raises:
        StoreError: a packet without its packed map cannot be packed.
    """
    out = Numbered()
    parts, committed, changed, gaps = out.parts, out.committed, out.changed, out.gaps
    seq = head
    for key, packet, packed in new:
        seq += 1
        part = parts.get(key)
        if part is None:
            part = parts[key] = Part()
        origin, origin_seq = packet.origin, packet.seq
        last = origins.get(origin, 0)
        if origin_seq != last + 1:
            gaps.append(_gap(packet, last))
        if origin_seq > last:
            origins[origin] = changed[origin] = origin_seq
        if packed is None:
            packed = _pack(packet)
        if key == MAIN:  # an Ack: it belongs to no test
            test, item = "", ""
        else:
            test, item = packet.test, packet.item  # type: ignore[union-attr]
            part.packets.append(packet)
        part.rows.append(
            (seq, packet.id, origin, origin_seq, packet.kind, test, item, received, packed)
        )
        committed.append((seq, packet))
    return out
