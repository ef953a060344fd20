"""Numbering a batch of new status packets and sharing it out among the databases.

This is the writer's hot path: every committed packet goes through it, so it
works on the batch's columns (:class:`pkts.columns.StatusColumns`) with
passes that run in C (``zip``, ``map``) wherever it can, and does the rest
(origin bookkeeping) in one plain loop.
"""

from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Final, TypeVar

from mtpkt.pkts.columns import StatusColumns
from mtpkt.store.history import Row

__all__ = ["MAIN", "Numbered", "Share", "number"]

MAIN: Final = 0
"""Routing key of ``main.db`` (run ids start at 1); Acks go there."""

T = TypeVar("T")


class Share:
    """One database's share of a batch: the packets' indices and their stream seqs."""

    __slots__ = ("everything", "indices", "seqs")

    def __init__(self, indices: list[int], seqs: list[int], *, everything: bool) -> None:
        self.indices = indices
        """Indices into the batch's columns, in stream order."""
        self.seqs = seqs
        """Their stream sequence numbers."""
        self.everything = everything
        """The share is the whole batch (its columns can be used as they are)."""

    @property
    def last_seq(self) -> int:
        """The newest stream seq of this share."""
        return self.seqs[-1]

    def pick(self, column: Sequence[T]) -> Sequence[T]:
        """This share's entries of one of the batch's columns."""
        return column if self.everything else list(map(column.__getitem__, self.indices))

    def among(self, indices: list[int]) -> list[int]:
        """The positions in ``indices`` (a kind's packets, e.g. ``columns.steps``) that
        belong to this share."""
        if self.everything:
            return list(range(len(indices)))
        mine = set(self.indices)
        return [position for position, index in enumerate(indices) if index in mine]

    def history_rows(self, columns: StatusColumns, received: float) -> Iterable[Row]:
        """The ``history`` rows of this share's packets."""
        pick = self.pick
        return zip(
            self.seqs,
            pick(columns.ids),
            pick(columns.origins),
            pick(columns.seqs),
            pick(columns.kinds),
            pick(columns.tests),
            pick(columns.items),
            repeat(received),
            pick(columns.packed),
        )


class Numbered:
    """What :func:`number` made of a batch."""

    __slots__ = ("changed", "committed", "gaps", "shares")

    def __init__(self) -> None:
        self.shares: dict[int, Share] = {}
        """Each routing key's share."""
        self.committed: list[tuple[int, int]] = []
        """``(stream seq, index)`` of the new packets, in input order."""
        self.changed: dict[str, int] = {}
        """Origins whose last seq moved, with the new value."""
        self.gaps: list[str] = []
        """One warning per packet that does not follow its origin's last seq."""


def _gap(origin: str, seq: int, last: int) -> str:
    kind = "a gap" if seq > last + 1 else "out of order or repeated"
    return f"status packets from {origin}: seq {seq} follows {last} ({kind})"


def number(
    columns: StatusColumns,
    routes: dict[int, list[int]],
    kept: list[int] | None,
    head: int,
    origins: dict[str, int],
) -> Numbered:
    """Give each new packet the next stream seq after ``head``, and each database its share.

    Args:
        columns: the batch.
        routes: each routing key's indices of new packets, in input order.
        kept: every new packet's index in input order, or ``None`` if all are new.
        head: the stream head before the batch.
        origins: each origin's last seq; advanced over the packets. A packet
            that does not follow its origin's last seq is applied anyway and
            noted in ``gaps``.
    """
    out = Numbered()
    count = len(columns) if kept is None else len(kept)
    order = range(len(columns)) if kept is None else kept
    out.committed = list(zip(range(head + 1, head + 1 + count), order, strict=True))
    if kept is None and len(routes) == 1:
        ((key, indices),) = routes.items()
        out.shares[key] = Share(indices, list(range(head + 1, head + 1 + count)), everything=True)
    else:
        seq_of = {index: seq for seq, index in out.committed}
        for key, indices in routes.items():
            out.shares[key] = Share(
                indices, list(map(seq_of.__getitem__, indices)), everything=False
            )
    changed, gaps = out.changed, out.gaps
    names, seqs = columns.origins, columns.seqs
    if kept is not None:
        names, seqs = list(map(names.__getitem__, kept)), list(map(seqs.__getitem__, kept))
    for origin, seq in zip(names, seqs, strict=True):
        last = origins.get(origin, 0)
        if seq != last + 1:
            gaps.append(_gap(origin, seq, last))
        if seq > last:
            origins[origin] = changed[origin] = seq
    return out
