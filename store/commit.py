"""Committing status packets exactly once, across ``main.db`` and the run databases.

Every batch goes: dedupe (repeats in the batch, retries of packets ``clean``
removed, packets a database holds already), route (each packet to its run's
database, Acks to ``main.db``), number (:func:`store.batch.number`), write,
commit. Each database gets one transaction per batch; the run databases commit
first, ``main.db`` last, so a reader that sees ``main.db``'s head sees every
packet up to it. A crash or failure between the two commits leaves run
databases ahead of ``main.db``: their packets are held (a retry skips them)
and the next batch, or the next opening, repairs ``main.db`` from them.

Used only by :class:`store.Store`, under its lock.
"""

import collections
import logging
import time
from collections.abc import Iterable, Mapping, Sequence

from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.status import Ack
from mtpkt.store import dedupe
from mtpkt.store.batch import MAIN, Share, number
from mtpkt.store.connection import Database
from mtpkt.store.databases import Databases
from mtpkt.store.history import HistoryDb
from mtpkt.store.mirror import Key
from mtpkt.store.rundb import RunDb
from mtpkt.store.tally import RunSummary

__all__ = ["Committer", "abort"]

log = logging.getLogger(__name__)


def abort(dbs: Sequence[Database]) -> None:
    """Roll back each database's open transaction; run databases drop their mirror."""
    for db in dbs:
        db.rollback()
        if isinstance(db, RunDb):
            db.forget()


class Committer:
    """The stream's head, each origin's last seq, and every write that keeps them right.

    ``head`` is the newest stream seq committed in any database; ``main.db``
    records its own (the stored head) last. Run databases holding seqs above
    the stored head are *dirty*: committed by a batch whose ``main.db`` commit
    did not happen, and repaired by the next one.
    """

    def __init__(self, dbs: Databases) -> None:
        """Read the head and origins from ``main.db``, and repair what an interrupted
        batch left (see :meth:`_recover`).

        Raises:
            StoreError: a database cannot be read or repaired.
        """
        self._dbs = dbs
        main = dbs.main()
        self._origins = main.load_origins()
        self._any_cleaned = main.any_cleaned()
        self._stored_head = main.stored_head()
        self._head = self._stored_head
        self._dirty: set[int] = set()
        self._recover()

    @property
    def head(self) -> int:
        """The newest stream sequence number committed (0 if none)."""
        return self._head

    def origin_seq(self, origin: str) -> int:
        """The newest seq committed from ``origin`` (0 if none)."""
        return self._origins.get(origin, 0)

    def _recover(self) -> None:
        """Find the stream head, and repair runs whose ``main.db`` commit never happened.

        A run database holding sequence numbers above ``main.db``'s head was
        committed by a batch whose ``main.db`` commit failed or never ran (a
        crash between the two). Its packets are committed; their roll-up and
        origins are written to ``main.db`` now.
        """
        main = self._dbs.main()
        head = max(self._stored_head, main.max_seq())
        for run_id in main.run_ids():
            if not (self._dbs.dbdir / f"{run_id}.db").exists():
                continue  # created on first use
            seq = self._dbs.run(run_id).max_seq()
            if seq > self._stored_head:
                self._dirty.add(run_id)
            head = max(head, seq)
            self._dbs.trim()
        self._head = head
        if head > self._stored_head:
            log.warning(
                "%s: repairing %d run(s) after an interrupted batch",
                self._dbs.dbdir,
                len(self._dirty),
            )
            self._apply(StatusColumns(), {}, None, time.time())

    # -- status packets -----------------------------------------------------

    def apply(self, columns: StatusColumns, now: float) -> list[tuple[int, int]]:
        """Commit a batch (see :meth:`store.Store.apply_columns`).

        Returns:
            ``(stream seq, index in the batch)`` of each packet newly committed, in input order.
        """
        dropped = self._cleaned_retries(columns) if self._any_cleaned else set()
        kept = dedupe.unique(columns, dropped)
        routes = self._route(columns, kept, now)
        if not routes and not self._dirty:
            return []
        return self._apply(columns, routes, kept, now)

    def _cleaned_retries(self, columns: StatusColumns) -> set[bytes]:
        """Ids of packets that ``clean`` removed from the history (only a retry, with a seq
        at or below its origin's last, can be one): they are not new, and no run is made
        for them."""
        suspects = dedupe.suspects(columns, self._origins)
        if not suspects:
            return set()
        return self._dbs.main().cleaned(dedupe.keys(columns, suspects))

    def _route(
        self, columns: StatusColumns, kept: list[int] | None, now: float
    ) -> dict[int, list[int]]:
        """Each database's (run id, or MAIN for Acks) indices of the packets in ``kept``."""
        indices = range(len(columns)) if kept is None else kept
        if not indices:
            return {}
        kinds, targets, runnames = columns.kinds, columns.targets, columns.runnames
        if kept is None and Ack.kind not in set(kinds):
            runs = dict.fromkeys(zip(targets, runnames, strict=True))  # in order of appearance
            if len(runs) == 1:
                ((target, runname),) = runs
                return {self._route_run(target, runname, now): list(indices)}
        routes: dict[int, list[int]] = collections.defaultdict(list)
        for index in indices:
            if kinds[index] == Ack.kind:
                routes[MAIN].append(index)
            else:
                routes[self._route_run(targets[index], runnames[index], now)].append(index)
        return dict(routes)

    def _route_run(self, target: str, runname: str, now: float) -> int:
        run_id = self._dbs.run_id(target, runname, now)
        assert run_id is not None  # created if missing
        return run_id

    def _apply(
        self,
        columns: StatusColumns,
        routes: dict[int, list[int]],
        kept: list[int] | None,
        now: float,
    ) -> list[tuple[int, int]]:
        main = self._dbs.main()
        rundbs = {key: self._dbs.run(key) for key in sorted(routes.keys() - {MAIN})}
        for run_id in self._dirty:
            self._dbs.run(run_id)
        dbs: list[Database] = [*rundbs.values(), main]
        try:
            for db in dbs:
                db.begin()
            origins = dict(self._origins)
            summaries, heads, changed = self._repair(origins)
            suspects = dedupe.suspects(columns, origins) if routes else []
            if suspects:
                routes, kept = self._dedupe(columns, routes, kept, suspects, rundbs)
            if not routes and not summaries:
                abort(dbs)
                return []
            batch = number(columns, routes, kept, self._head, origins)
            for key, share in batch.shares.items():
                if key != MAIN:
                    summaries[key] = rundbs[key].write(columns, share, now)
                    heads[key] = share.last_seq
            changed.update(batch.changed)
            head = self._head + len(batch.committed)
            acks = batch.shares.get(MAIN)
            main.write(
                acks.history_rows(columns, now) if acks else [],
                summaries,
                heads,
                changed.items(),
                head,
                now,
            )
        except BaseException:
            abort(dbs)
            raise
        self._commit(rundbs, batch.shares, head, origins)
        for gap in batch.gaps:
            log.warning("%s", gap)
        self._dbs.trim()
        return batch.committed

    def _repair(
        self, origins: dict[str, int]
    ) -> tuple[dict[int, RunSummary], dict[int, int], dict[str, int]]:
        """What ``main.db`` lacks of runs committed by a batch whose ``main.db`` commit failed.

        Returns:
            Those runs' roll-ups and newest stream seqs, and the origins whose
            last seq moves (``origins`` is updated too).
        """
        summaries: dict[int, RunSummary] = {}
        heads: dict[int, int] = {}
        rows: list[tuple[int, str, int]] = []
        for run_id in sorted(self._dirty):
            rundb = self._dbs.run(run_id)
            summaries[run_id] = rundb.summary()
            heads[run_id] = rundb.max_seq()
            rows += rundb.origins_since(self._stored_head)
        changed: dict[str, int] = {}
        for _, origin, origin_seq in sorted(rows):
            origins[origin] = changed[origin] = max(origins.get(origin, 0), origin_seq)
        return summaries, heads, changed

    def _dedupe(
        self,
        columns: StatusColumns,
        routes: dict[int, list[int]],
        kept: list[int] | None,
        suspects: list[int],
        rundbs: Mapping[int, RunDb],
    ) -> tuple[dict[int, list[int]], list[int] | None]:
        """The routes and kept indices without the packets their database holds already.

        Only ``suspects``, the packets with a seq at or below their origin's
        last committed seq, are looked up: a database holds a packet under its
        origin and seq, and the origins (repaired first, see :meth:`_repair`)
        are at least the seq of every packet committed from that origin. Live
        traffic, whose seqs only grow, needs no lookups; retries do. The
        history's unique key would refuse a repeat that slipped through,
        failing the batch loudly.
        """
        key_of = {index: key for key, indices in routes.items() for index in indices}
        groups: dict[int, list[int]] = collections.defaultdict(list)
        for index in suspects:
            if index in key_of:
                groups[key_of[index]].append(index)
        held: set[bytes] = set()
        for key, group in groups.items():
            db: HistoryDb = self._dbs.main() if key == MAIN else rundbs[key]
            held |= db.held(dedupe.keys(columns, group))
        if not held:
            return routes, kept
        return dedupe.without(columns, routes, kept, held)

    def _commit(
        self,
        rundbs: Mapping[int, RunDb],
        shares: Mapping[int, Share],
        head: int,
        origins: dict[str, int],
    ) -> None:
        """Commit the run databases, then ``main.db``; account for any that did."""
        committed_head = self._head
        committed: list[int] = []
        pending: list[Database] = [*rundbs.values(), self._dbs.main()]
        try:
            for run_id, rundb in rundbs.items():
                rundb.commit()
                pending.remove(rundb)
                committed.append(run_id)
                if run_id in shares:
                    committed_head = max(committed_head, shares[run_id].last_seq)
            self._dbs.main().commit()
        except BaseException:
            # Packets of the run databases that did commit are held now: a
            # retry skips them, and their roll-ups are repaired by the next batch.
            abort(pending)
            self._dirty.update(committed)
            self._head = committed_head
            raise
        self._head = self._stored_head = head
        self._origins = origins
        self._dirty.clear()

    # -- removals -----------------------------------------------------------

    def remove(self, target: str, runname: str, keys: Iterable[Key], now: float) -> list[Key]:
        """Delete tests' records (see :meth:`store.Store.remove_tests`); the keys removed.

        The packets removed are noted in ``main.db``'s ``cleaned`` table before
        the run database commits, so that a retry of one is never taken for new.
        """
        dbs = self._dbs
        run_id = dbs.run_id(target, runname, now, create=False)
        if run_id is None:
            return []
        rundb, main = dbs.run(run_id), dbs.main()
        rundb.begin()
        try:
            removal = rundb.remove(keys, now)
            with main.transaction():  # before the run db commits: a crash leaves both
                main.add_cleaned(removal.packets, now)
                if removal.left:
                    main.write([], {run_id: removal.summary}, {}, (), self._stored_head, now)
            rundb.commit()
        except BaseException:
            abort([rundb])
            raise
        self._any_cleaned = self._any_cleaned or bool(removal.packets)
        if not removal.left:
            dbs.remove_run(target, runname, run_id)
        return removal.keys
