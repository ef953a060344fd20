"""The store's single writer: the collector's way into ``main.db`` and the run databases."""

import collections
import itertools
import logging
import operator
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from mtpkt import pkts
from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.control import Control
from mtpkt.pkts.link import Heartbeat
from mtpkt.pkts.status import Ack, StatusPacket
from mtpkt.store.batch import MAIN, Share, number
from mtpkt.store.connection import Database
from mtpkt.store.errors import StoreError
from mtpkt.store.files import lock_file
from mtpkt.store.journal import Journal
from mtpkt.store.maindb import MainDb, split_target
from mtpkt.store.registry import AgentRegistry
from mtpkt.store.rows import AgentRow, ArchiveRow, JournalRow, RunRow, StepRow, TestRow
from mtpkt.store.rundb import RunDb
from mtpkt.store.tally import RunSummary

__all__ = ["MAX_OPEN_RUNS", "Store"]

log = logging.getLogger(__name__)

MAX_OPEN_RUNS: Final = 64
"""Run databases the writer keeps open between batches (least recently used are closed)."""


def _keys(columns: StatusColumns, indices: Iterable[int]) -> list[tuple[str, int, bytes]]:
    """``(origin, origin_seq, packet_id)`` of the packets at ``indices``: how they are held."""
    return [(columns.origins[i], columns.seqs[i], columns.ids[i]) for i in indices]


def _take_lock(dbdir: Path) -> int:
    """Lock ``dbdir/writer.lock`` for this process, so only one Store writes a directory."""
    path = dbdir / "writer.lock"
    try:
        fd = lock_file(path)
    except OSError as exc:
        raise StoreError(f"cannot lock {path}: {exc.strerror}") from exc
    if fd is None:
        raise StoreError(f"another store writer has {dbdir} open (lock {path} is held)")
    return fd


class Store:
    """The writer of a store directory: ``main.db`` and one ``<run_id>.db`` per run.

    Exactly one Store may have a directory open (a lock file enforces it);
    every method is thread-safe. Other threads read the history through a
    :class:`store.HistoryReader` of their own.

    :meth:`apply` commits a batch of status packets: exactly once each
    (deduplicated by packet id, across restarts), with a stream sequence
    number global across the directory's databases. Each database gets one
    transaction per batch; the run databases commit first, ``main.db`` last.

    Durability follows ``durable`` (see :mod:`store.connection`): with
    ``True`` (``synchronous=FULL``) a batch :meth:`apply` committed survives
    power loss; with ``False`` (``synchronous=NORMAL``) it survives a crash of
    the process but maybe not of the OS.

    Every :data:`store.connection.CHECKPOINT_EVERY` commits of a database the
    writer runs ``PRAGMA wal_checkpoint(PASSIVE)`` on it; readers must keep
    their transactions short so checkpoints can reset the WAL.
    """

    def __init__(self, dbdir: Path, fields: Sequence[str], *, durable: bool = True) -> None:
        """Open a store directory, creating or upgrading its databases.

        Args:
            dbdir: the directory (created if missing), e.g. ``area/.mtpkt/db``.
            fields: the area's ``[fields]`` keys, in order.
            durable: ``synchronous=FULL`` if true, else ``NORMAL``.

        Raises:
            StoreError: another Store has it open; ``main.db`` was made with
                other fields or by a newer mtpkt; a database cannot be opened,
                upgraded or repaired.
        """
        self.dbdir = Path(dbdir)
        """The store directory."""
        self.durable = durable
        """Commits survive power loss (``synchronous=FULL``); see :mod:`store.connection`."""
        try:
            self.dbdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.dbdir}: {exc.strerror}") from exc
        self._lock_fd: int | None = _take_lock(self.dbdir)
        self._lock = threading.RLock()
        self._rundbs: collections.OrderedDict[int, RunDb] = collections.OrderedDict()
        self._run_ids: dict[tuple[str, str], int] = {}
        self._dirty: set[int] = set()
        try:
            self._main: MainDb | None = MainDb(self.dbdir, fields, durable=durable)
            self._registry = AgentRegistry(self._main)
            self._journal = Journal(self._main)
            self._origins = self._main.load_origins()
            self._any_cleaned = self._main.any_cleaned()
            self._stored_head = self._main.stored_head()
            self._head = self._stored_head
            self._recover()
        except BaseException:
            self.close()
            raise

    @property
    def fields(self) -> tuple[str, ...]:
        """The area's ``[fields]`` keys; a target has one ``/``-separated part per key."""
        return self._db().fields

    def check_target(self, target: str) -> None:
        """Refuse a target that does not have one ``/``-separated part per field.

        :meth:`apply` refuses a whole batch for one such packet; a caller that
        groups packets from many senders can check each first, without the lock.

        Raises:
            StoreError: naming the target and the fields.
        """
        split_target(target, self.fields)

    # -- opening and closing ------------------------------------------------

    def close(self) -> None:
        """Close every database and release the directory. Safe to call twice."""
        with self._lock:
            while self._rundbs:
                self._rundbs.popitem()[1].close()
            if getattr(self, "_main", None) is not None:
                assert self._main is not None
                self._main.close()
                self._main = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _db(self) -> MainDb:
        if self._main is None:
            raise StoreError(f"the store of {self.dbdir} is closed")
        return self._main

    def _rundb(self, run_id: int) -> RunDb:
        rundb = self._rundbs.get(run_id)
        if rundb is None:
            rundb = RunDb(self.dbdir / f"{run_id}.db", run_id, durable=self.durable)
            self._rundbs[run_id] = rundb
        self._rundbs.move_to_end(run_id)
        return rundb

    def _trim(self) -> None:
        """Close the least recently used run databases beyond :data:`MAX_OPEN_RUNS`."""
        while len(self._rundbs) > MAX_OPEN_RUNS:
            self._rundbs.popitem(last=False)[1].close()

    def _recover(self) -> None:
        """Find the stream head, and repair runs whose ``main.db`` commit never happened.

        A run database holding sequence numbers above ``main.db``'s head was
        committed by a batch whose ``main.db`` commit failed or never ran (a
        crash between the two). Its packets are committed; their roll-up and
        origins are written to ``main.db`` now.
        """
        main = self._db()
        head = max(self._stored_head, main.max_seq())
        for run_id in main.run_ids():
            if not (self.dbdir / f"{run_id}.db").exists():
                continue  # created on first use
            seq = self._rundb(run_id).max_seq()
            if seq > self._stored_head:
                self._dirty.add(run_id)
            head = max(head, seq)
            self._trim()
        self._head = head
        if head > self._stored_head:
            log.warning(
                "%s: repairing %d run(s) after an interrupted batch", self.dbdir, len(self._dirty)
            )
            self._apply(StatusColumns(), {}, None, time.time())

    # -- runs ---------------------------------------------------------------

    def run_id(self, target: str, runname: str, *, create: bool = True) -> int | None:
        """The id of a run, created (``NOT_STARTED``, with its database) if new.

        Args:
            target: the key values joined by ``/``, one per field.
            runname: the run's name.
            create: create the run if missing; otherwise return ``None`` for it.

        Raises:
            StoreError: the target does not have one part per field, or SQLite failed.
        """
        with self._lock:
            return self._run(target, runname, time.time(), create=create)

    def _run(self, target: str, runname: str, now: float, *, create: bool = True) -> int | None:
        run_id = self._run_ids.get((target, runname))
        if run_id is not None:
            return run_id
        main = self._db()
        run_id = main.find_run(target, runname)
        if run_id is None:
            if not create:
                return None
            run_id = main.create_run(target, runname, now)
            self._rundb(run_id)  # creates <run_id>.db
        self._run_ids[(target, runname)] = run_id
        return run_id

    # -- status packets -----------------------------------------------------

    def head(self) -> int:
        """The newest stream sequence number committed (0 if none).

        After an :meth:`apply` that failed once some run databases had
        committed, this is ahead of :meth:`store.HistoryReader.head` until the
        next batch (or the next opening) repairs ``main.db``.
        """
        with self._lock:
            self._db()
            return self._head

    def origin_seq(self, origin: str) -> int:
        """The newest seq committed from ``origin`` (0 if none): where its numbering goes on."""
        with self._lock:
            self._db()
            return self._origins.get(origin, 0)

    def apply(
        self,
        packets: Sequence[StatusPacket],
        *,
        received: float | None = None,
        packed: Sequence[bytes] | None = None,
    ) -> list[tuple[int, StatusPacket]]:
        """Commit a batch of status packets: :meth:`apply_columns` for packets as objects.

        Args:
            packets: the batch, in the order the senders meant.
            received: the home's time of receipt (default: now).
            packed: each packet's bytes as :func:`pkts.pack` makes them, when
                the caller has them already; saves packing every packet again
                for the history.

        Returns:
            The packets newly committed, with their stream sequence numbers, in input order.

        Raises:
            StoreError: as :meth:`apply_columns`, or a packet cannot be packed.
        """
        try:
            columns = StatusColumns.of(packets, packed)
        except pkts.PacketError as exc:
            raise StoreError(f"cannot store a status packet: {exc}") from exc
        return [(seq, packets[index]) for seq, index in self.apply_columns(columns, received)]

    def apply_columns(
        self, columns: StatusColumns, received: float | None = None
    ) -> list[tuple[int, int]]:
        """Commit a batch of status packets given by columns.

        Step and StatusChange packets go to their run's database (the run is
        created on first sight), Acks to ``main.db``'s history. A packet whose
        id is already held, or that repeats within the batch, is skipped. The
        new ones get stream sequence numbers ``head() + 1, + 2 …`` in input
        order. Each test's row takes the batch's last StatusChange for it;
        each Step adds a ``test_steps`` row. Then itemized tests' toplevel rows
        and the runs' rows in ``main.db`` are rolled up, and ``origins``
        records each origin's last seq (a gap is logged as a warning, and the
        packet is applied anyway).

        Args:
            columns: the batch, in the order the senders meant.
            received: the home's time of receipt (default: now).

        Returns:
            ``(stream seq, index in the batch)`` of each packet newly
            committed, in input order.

        Raises:
            StoreError: nothing of the batch can be reported as committed
                (disk full, unwritable, a target that does not fit the
                fields …). Retrying the same batch commits each packet exactly
                once: if some run databases did commit before the failure,
                their packets are now held and the retry skips them. Sequence
                numbers of packets that were not committed are not reused if
                a later one was, so the stream may have holes after a failure.
        """
        now = time.time() if received is None else received
        with self._lock:
            kept = self._fresh(columns)
            routes = self._route(columns, kept, now)
            if not routes and not self._dirty:
                return []
            return self._apply(columns, routes, kept, now)

    def _suspects(self, columns: StatusColumns, origins: Mapping[str, int]) -> list[int]:
        """Indices of the packets with a seq at or below their origin's last committed one
        (only those can be held already)."""
        lasts = map(origins.get, columns.origins, itertools.repeat(0))
        return list(itertools.compress(itertools.count(), map(operator.le, columns.seqs, lasts)))

    def _fresh(self, columns: StatusColumns) -> list[int] | None:
        """Indices of the packets that are not repeats within the batch nor retries of
        cleaned ones, or ``None`` if that is all of them."""
        ids = columns.ids
        cleaned = self._cleaned_retries(columns) if self._any_cleaned else set()
        if not cleaned and len(set(ids)) == len(ids):
            return None
        seen = set(cleaned)
        kept = []
        for index, packet_id in enumerate(ids):
            if packet_id not in seen:
                seen.add(packet_id)
                kept.append(index)
        return kept

    def _cleaned_retries(self, columns: StatusColumns) -> set[bytes]:
        """Ids of packets that ``clean`` removed from the history (only a retry, with a seq
        at or below its origin's last, can be one): they are not new, and no run is made
        for them."""
        suspects = self._suspects(columns, self._origins)
        return self._db().cleaned(_keys(columns, suspects)) if suspects else set()

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
        run_id = self._run_ids.get((target, runname))
        if run_id is None:
            run_id = self._run(target, runname, now)
            assert run_id is not None
        return run_id

    def _apply(
        self,
        columns: StatusColumns,
        routes: dict[int, list[int]],
        kept: list[int] | None,
        now: float,
    ) -> list[tuple[int, int]]:
        main = self._db()
        rundbs = {key: self._rundb(key) for key in sorted(routes.keys() - {MAIN})}
        for run_id in self._dirty:
            self._rundb(run_id)
        dbs: list[Database] = [*rundbs.values(), main]
        try:
            for db in dbs:
                db.begin()
            origins = dict(self._origins)
            summaries, heads, changed = self._repair(origins)
            suspects = self._suspects(columns, origins) if routes else []
            if suspects:
                routes, kept = self._dedupe(columns, routes, kept, suspects, rundbs)
            if not routes and not summaries:
                self._abort(dbs)
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
            self._abort(dbs)
            raise
        self._commit(rundbs, batch.shares, head, origins)
        for gap in batch.gaps:
            log.warning("%s", gap)
        self._trim()
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
            rundb = self._rundb(run_id)
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
            db: MainDb | RunDb = self._db() if key == MAIN else rundbs[key]
            held |= db.held(_keys(columns, group))
        if not held:
            return routes, kept
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

    def _abort(self, dbs: Sequence[Database]) -> None:
        for db in dbs:
            db.rollback()
            if isinstance(db, RunDb):
                db.forget()

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
        pending: list[Database] = [*rundbs.values(), self._db()]
        try:
            for run_id, rundb in rundbs.items():
                rundb.commit()
                pending.remove(rundb)
                committed.append(run_id)
                if run_id in shares:
                    committed_head = max(committed_head, shares[run_id].last_seq)
            self._db().commit()
        except BaseException:
            # Packets of the run databases that did commit are held now: a
            # retry skips them, and their roll-ups are repaired by the next batch.
            self._abort(pending)
            self._dirty.update(committed)
            self._head = committed_head
            raise
        self._head = self._stored_head = head
        self._origins = origins
        self._dirty.clear()

    def remove_tests(
        self, target: str, runname: str, keys: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Delete tests' records: rows, steps, data and history (``mtpkt send clean``).

        ``keys`` are ``(testname, item_path)``; an itemized test whose items all
        go loses its toplevel record too. The run's roll-up is updated; a run
        left with no tests is removed, with its database (its id is not used again).

        Returns:
            The keys removed.

        Raises:
            StoreError: SQLite failed; nothing was removed.
        """
        now = time.time()
        with self._lock:
            run_id = self._run(target, runname, now, create=False)
            if run_id is None:
                return []
            rundb, main = self._rundb(run_id), self._db()
            rundb.begin()
            try:
                removal = rundb.remove(keys, now)
                with main.transaction():  # before the run db commits: a crash leaves both
                    main.add_cleaned(removal.packets, now)
                    if removal.left:
                        main.write([], {run_id: removal.summary}, {}, (), self._stored_head, now)
                rundb.commit()
            except BaseException:
                self._abort([rundb])
                raise
            self._any_cleaned = self._any_cleaned or bool(removal.packets)
            if removal.left:
                return removal.keys
            main.remove_run(run_id)
            self._run_ids.pop((target, runname), None)
            self._rundbs.pop(run_id).close()
            for suffix in ("", "-wal", "-shm"):
                (self.dbdir / f"{run_id}.db{suffix}").unlink(missing_ok=True)
            log.info("%s/%s: no tests left, run %d removed", target, runname, run_id)
            return removal.keys

    def set_rundirs(
        self, target: str, runname: str, rundirs: Iterable[tuple[str, str, str]]
    ) -> None:
        """Record where tests run: ``(testname, item_path, rundir)`` for rows of the run.

        Rows and runs that do not exist are left alone.

        Raises:
            StoreError: SQLite failed.
        """
        with self._lock:
            run_id = self._run(target, runname, time.time(), create=False)
            if run_id is not None:
                self._rundb(run_id).set_rundirs(rundirs)

    def record_archive(
        self, target: str, runname: str, key: tuple[str, str], archive: ArchiveRow
    ) -> bool:
        """Record a test's newest archive and set its ``archived`` flag.

        Returns:
            False if the run or the test does not exist (nothing was written).

        Raises:
            StoreError: SQLite failed.
        """
        with self._lock:
            run_id = self._run(target, runname, time.time(), create=False)
            if run_id is None:
                return False
            return self._rundb(run_id).record_archive(key, archive, time.time())

    def archive(self, target: str, runname: str, key: tuple[str, str]) -> ArchiveRow | None:
        """A test's newest archive, if the run and test exist and it has one."""
        with self._lock:
            run_id = self._run(target, runname, time.time(), create=False)
            return None if run_id is None else self._rundb(run_id).archive(key)

    # -- reading ------------------------------------------------------------

    def runs(self) -> list[RunRow]:
        """Every run in ``main.db``, by id."""
        with self._lock:
            return self._db().runs()

    def tests(self, run_id: int) -> list[TestRow]:
        """A run's ``tests`` rows, by test name and item path.

        Raises:
            StoreError: there is no such run.
        """
        with self._lock:
            return self._existing_rundb(run_id).tests()

    def steps(self, run_id: int) -> list[StepRow]:
        """A run's ``test_steps`` rows in the order written.

        Raises:
            StoreError: there is no such run.
        """
        with self._lock:
            return self._existing_rundb(run_id).steps()

    def _existing_rundb(self, run_id: int) -> RunDb:
        if not self._db().has_run(run_id):
            raise StoreError(f"no run with id {run_id} in {self.dbdir}")
        return self._rundb(run_id)

    # -- agents -------------------------------------------------------------

    def heartbeat(self, beat: Heartbeat, *, received: float) -> None:
        """Record an agent's heartbeat in the registry (committed before this returns).

        ``online`` and ``beat`` make the agent ``online``, ``offline`` makes it
        ``offline``. ``last_beat`` is ``received`` (home's clock), ``last_ts``
        the beat's ``ts`` (agent's clock), ``skew`` their difference; a skew
        over :data:`store.registry.DRIFT_WARNING` seconds logs a warning.

        Raises:
            StoreError: SQLite failed.
        """
        self.heartbeats([beat], received=received)

    def heartbeats(self, beats: Sequence[Heartbeat], *, received: float) -> None:
        """Record several agents' heartbeats, as :meth:`heartbeat` does, in one transaction.

        The home gets a beat from every agent every few seconds: one commit (and
        disk sync) for all the beats that arrived together, not one each.

        Raises:
            StoreError: SQLite failed (none of them is recorded).
        """
        with self._lock:
            self._db()
            self._registry.heartbeats(beats, received=received)

    def agents(self) -> list[AgentRow]:
        """Every agent ever seen, by name."""
        with self._lock:
            self._db()
            return self._registry.agents()

    def mark_lost(self, now: float, *, up_since: float = 0.0) -> list[str]:
        """Mark ``online`` agents with no beat for twice their interval ``lost``.

        Args:
            now: the home's clock.
            up_since: when the home started: older beats count as made then, so
                that agents are not lost merely because the home was away.

        Returns:
            The names of the agents just marked, sorted.
        """
        with self._lock:
            self._db()
            return self._registry.mark_lost(now, up_since=up_since)

    def record_work(self, figures: Mapping[str, tuple[int, int]], *, now: float) -> None:
        """Record the dispatcher's books of agents (``agent_work``), committed.

        Args:
            figures: ``name → (running, pending)``: run tasks handed out whose
                test is not final yet, and tasks not acknowledged yet.
            now: the home's clock.

        Raises:
            StoreError: SQLite failed.
        """
        with self._lock:
            self._db()
            self._registry.record_work(figures, now=now)

    def set_agent_grace(self, grace: float) -> None:
        """Record the home's grace for lost agents (``metadat``), for ``mtpkt agents``.

        Raises:
            StoreError: SQLite failed.
        """
        with self._lock:
            self._db()
            self._registry.set_grace(grace)

    # -- control journal ----------------------------------------------------

    def journal_add(
        self, packet: Control, *, received: float, state: str = "accepted", reason: str = ""
    ) -> bool:
        """Journal a control packet durably (per ``durable``) before answering its sender.

        Returns:
            ``True`` if new, ``False`` if its id was already journaled.

        Raises:
            StoreError: SQLite failed; nothing was journaled.
        """
        with self._lock:
            self._db()
            return self._journal.add(packet, received=received, state=state, reason=reason)

    def journal_set_state(self, packet_id: bytes, state: str, reason: str = "") -> bool:
        """Change a journaled packet's state (e.g. to ``done``); ``False`` if unknown."""
        with self._lock:
            self._db()
            return self._journal.set_state(packet_id, state, reason)

    def journal(self, *, state: str = "") -> list[JournalRow]:
        """Journaled control packets in the order received, optionally only those in ``state``."""
        with self._lock:
            self._db()
            return self._journal.entries(state=state)
