"""Which packets of a batch are new: the pure part of the writer's dedupe.

A database holds a packet under its origin, origin seq and id. The writer
knows each origin's last committed seq, so only packets at or below it (the
*suspects*: retries, never live traffic, whose seqs only grow) can be held
already and need a lookup. :class:`store.commit.Committer` does the lookups;
these functions pick what to look up and drop what was found.
"""

import itertools
import operator
from collections.abc import Mapping

from mtpkt.pkts.columns import StatusColumns
from mtpkt.store.history import Key

__all__ = ["keys", "suspects", "unique", "without"]


def keys(columns: StatusColumns, indices: list[int]) -> list[Key]:
    """``(origin, origin_seq, packet_id)`` of the packets at ``indices``: how they are held."""
    return [(columns.origins[i], columns.seqs[i], columns.ids[i]) for i in indices]


def suspects(columns: StatusColumns, origins: Mapping[str, int]) -> list[int]:
    """Indices of the packets with a seq at or below their origin's last committed one
    (only those can be held already)."""
    lasts = map(origins.get, columns.origins, itertools.repeat(0))
    return list(itertools.compress(itertools.count(), map(operator.le, columns.seqs, lasts)))


def unique(columns: StatusColumns, dropped: set[bytes]) -> list[int] | None:
    """Indices of the packets that are not repeats within the batch nor in ``dropped``
    (ids known not to be new), or ``None`` if that is all of them."""
    ids = columns.ids
    if not dropped and len(set(ids)) == len(ids):
        return None
    seen = set(dropped)
    kept = []
    for index, packet_id in enumerate(ids):
        if packet_id not in seen:
            seen.add(packet_id)
            kept.append(index)
    return kept


def without(
    columns: StatusColumns,
    routes: dict[int, list[int]],
    kept: list[int] | None,
    held: set[bytes],
) -> tuple[dict[int, list[int]], list[int]]:
    """The routes (each database's indices) and kept indices without the packets whose
    ids are ``held``; a database left with none is left out."""
    ids = columns.ids
    fresh = {
        key: [index for index in indices if ids[index] not in held]
        for key, indices in routes.items()
    }
    order = range(len(columns)) if kept is None else kept
    return (
        {key: indices for key, indices in fresh.items() if indices},
        [index for index in order if ids[index] not in held],
    )
