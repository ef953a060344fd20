"""The store's single writer: the collector's way into ``main.db`` and the run databases.

:class:`Store` is the facade; its parts each have a module: the open databases
(:mod:`store.databases`), the exactly-once commit path (:mod:`store.commit`),
the agent registry (:mod:`store.registry`) and the control journal
(:mod:`store.journal`).
"""

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

from mtpkt import pkts
from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.control import Control
from mtpkt.pkts.link import Heartbeat
from mtpkt.pkts.status import StatusPacket
from mtpkt.store.commit import Committer
from mtpkt.store.databases import Databases
from mtpkt.store.errors import StoreError
from mtpkt.store.journal import ACCEPTED, Journal
from mtpkt.store.maindb import MainDb, split_target
from mtpkt.store.registry import AgentRegistry
from mtpkt.store.rows import (
    AgentRow,
    ArchiveRow,
    JournalRow,
    RunRow,
    StepRow,
    TestDataRow,
    TestRow,
)

__all__ = ["Store"]


class Store:
    """The writer of a store directory: ``main.db`` and one ``<run_id>.db`` per run.

    Exactly one Store may have a directory open (a lock file enforces it);
    every method is thread-safe. Other threads read the history through a
    :class:`store.HistoryReader` of their own.

    :meth:`apply` commits a batch of status packets: exactly once each
    (deduplicated by packet id, across restarts), with a stream sequence
    number global across the directory's databases. Each database gets one
    transaction per batch; the run databases commit first, ``main.db`` last
    (see :mod:`store.commit`).

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
        self._lock = threading.RLock()
        self._dbs = Databases(self.dbdir, fields, durable=durable)
        try:
            main = self._dbs.main()
            self._registry = AgentRegistry(main)
            self._journal = Journal(main)
            self._committer = Committer(self._dbs)
        except BaseException:
            self.close()
            raise

    @property
    def fields(self) -> tuple[str, ...]:
        """The area's ``[fields]`` keys; a target has one ``/``-separated part per key."""
        return self._dbs.main().fields

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
            self._dbs.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _open(self) -> Iterator[MainDb]:
        """Hold the lock, with ``main.db`` open (:class:`StoreError` if the store is closed)."""
        with self._lock:
            yield self._dbs.main()

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
            return self._dbs.run_id(target, runname, time.time(), create=create)

    # -- status packets -----------------------------------------------------

    def head(self) -> int:
        """The newest stream sequence number committed (0 if none).

        After an :meth:`apply` that failed once some run databases had
        committed, this is ahead of :meth:`store.HistoryReader.head` until the
        next batch (or the next opening) repairs ``main.db``.
        """
        with self._open():
            return self._committer.head

    def origin_seq(self, origin: str) -> int:
        """The newest seq committed from ``origin`` (0 if none): where its numbering goes on."""
        with self._open():
            return self._committer.origin_seq(origin)

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

        Step, StatusChange and TestData packets go to their run's database
        (the run is created on first sight), Acks to ``main.db``'s history. A
        packet whose id is already held, or that repeats within the batch, is
        skipped. The new ones get stream sequence numbers ``head() + 1, + 2 …``
        in input order. Each test's row takes the batch's last StatusChange
        for it; each Step adds a ``test_steps`` row, each TestData a
        ``test_data`` row (:mod:`store.testdata`). Then itemized tests' toplevel rows
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
            return self._committer.apply(columns, now)

    # -- tests' records -----------------------------------------------------

    def set_run(
        self, target: str, runname: str, *, locked: bool | None, status: str = "", comment: str = ""
    ) -> None:
        """Lock or unlock an existing run, set its hand-set status and comment (Megatest's
        ``-lock``, ``-unlock``, ``-set-run-status … -m …``; empty: unchanged).

        Raises:
            StoreError: there is no such run, or SQLite failed.
        """
        with self._open() as main:
            run_id = main.find_run(target, runname)
            if run_id is None:
                raise StoreError(f"there is no run {runname} of target {target}")
            main.set_run(run_id, locked=locked, status=status, comment=comment, now=time.time())

    def locked(self, target: str, runname: str) -> bool:
        """Whether the run exists and is locked (Megatest's ``-lock``)."""
        return any(
            run.locked for run in self.runs() if (run.target, run.runname) == (target, runname)
        )

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
        with self._lock:
            return self._committer.remove(target, runname, keys, time.time())

    def set_rundirs(
        self, target: str, runname: str, rundirs: Iterable[tuple[str, str, str]]
    ) -> None:
        """Record where tests run: ``(testname, item_path, rundir)`` for rows of the run.

        Rows and runs that do not exist are left alone.

        Raises:
            StoreError: SQLite failed.
        """
        with self._lock:
            rundb = self._dbs.find(target, runname, time.time())
            if rundb is not None:
                rundb.set_rundirs(rundirs)

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
            rundb = self._dbs.find(target, runname, time.time())
            return rundb is not None and rundb.record_archive(key, archive, time.time())

    def archive(self, target: str, runname: str, key: tuple[str, str]) -> ArchiveRow | None:
        """A test's newest archive, if the run and test exist and it has one."""
        with self._lock:
            rundb = self._dbs.find(target, runname, time.time())
            return None if rundb is None else rundb.archive(key)

    def forget_archives(
        self, target: str, runname: str, keys: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Delete tests' archive records and clear their ``archived`` flag (``clean
        --archives`` with ``--keep-records``, once the archive files are gone).

        Returns:
            The ``(testname, item_path)`` that had an archive record.

        Raises:
            StoreError: SQLite failed.
        """
        with self._lock:
            rundb = self._dbs.find(target, runname, time.time())
            return [] if rundb is None else rundb.forget_archives(keys)

    # -- reading ------------------------------------------------------------

    def runs(self) -> list[RunRow]:
        """Every run in ``main.db``, by id."""
        with self._open() as main:
            return main.runs()

    def tests(self, run_id: int) -> list[TestRow]:
        """A run's ``tests`` rows, by test name and item path.

        Raises:
            StoreError: there is no such run.
        """
        with self._lock:
            return self._dbs.existing_run(run_id).tests()

    def records_of(self, testname: str) -> list[TestRow]:
        """The ``tests`` rows of test ``testname`` in every run (Megatest's ``[skip]`` looks
        at all runs, runs.scm:1785)."""
        with self._lock:
            found = []
            for run_id in self._dbs.main().run_ids():
                if (self.dbdir / f"{run_id}.db").exists():  # created on first use
                    found += self._dbs.run(run_id).tests(testname)
                    self._dbs.trim()
            return found

    def steps(self, run_id: int) -> list[StepRow]:
        """A run's ``test_steps`` rows in the order written.

        Raises:
            StoreError: there is no such run.
        """
        with self._lock:
            return self._dbs.existing_run(run_id).steps()

    def test_data(self, run_id: int) -> list[TestDataRow]:
        """A run's ``test_data`` rows, by test name, item path, category and variable.

        Raises:
            StoreError: there is no such run.
        """
        with self._lock:
            return self._dbs.existing_run(run_id).test_data()

    # -- agents: see store.registry -----------------------------------------

    def heartbeat(self, beat: Heartbeat, *, received: float) -> None:
        """Record an agent's heartbeat: :meth:`heartbeats` of one."""
        self.heartbeats([beat], received=received)

    def heartbeats(self, beats: Sequence[Heartbeat], *, received: float) -> None:
        """:meth:`store.registry.AgentRegistry.heartbeats`: one commit for them all."""
        with self._open():
            self._registry.heartbeats(beats, received=received)

    def agents(self) -> list[AgentRow]:
        """Every agent ever seen, by name."""
        with self._open():
            return self._registry.agents()

    def mark_lost(self, now: float, *, up_since: float = 0.0) -> list[str]:
        """:meth:`store.registry.AgentRegistry.mark_lost`: the agents just marked lost."""
        with self._open():
            return self._registry.mark_lost(now, up_since=up_since)

    def record_work(self, figures: Mapping[str, tuple[int, int]], *, now: float) -> None:
        """:meth:`store.registry.AgentRegistry.record_work`: the dispatcher's books, committed."""
        with self._open():
            self._registry.record_work(figures, now=now)

    def set_agent_grace(self, grace: float) -> None:
        """:meth:`store.registry.AgentRegistry.set_grace`, for ``mtpkt agents``."""
        with self._open():
            self._registry.set_grace(grace)

    # -- control journal: see store.journal ---------------------------------

    def journal_add(
        self, packet: Control, *, received: float, state: str = ACCEPTED, reason: str = ""
    ) -> bool:
        """:meth:`store.journal.Journal.add`: durably, before its sender hears back."""
        with self._open():
            return self._journal.add(packet, received=received, state=state, reason=reason)

    def journal_set_state(self, packet_id: bytes, state: str, reason: str = "") -> bool:
        """:meth:`store.journal.Journal.set_state`: ``False`` if no such packet."""
        with self._open():
            return self._journal.set_state(packet_id, state, reason)

    def journal(self, *, state: str = "") -> list[JournalRow]:
        """Journaled control packets in the order received, optionally only those in ``state``."""
        with self._open():
            return self._journal.entries(state=state)
