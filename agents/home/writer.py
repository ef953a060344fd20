"""The collector's writer thread: groups what arrives, commits it, then publishes it.

Only this thread touches the database, so commits are serial and the live
stream is in commit order. Each group (whatever arrives within
:data:`LINGER`, up to :data:`MAX_GROUP` status packets) is one transaction,
deduplicated by packet id; heartbeats in it are recorded in a transaction of
their own and answered at once. Once committed, the new StatusChanges are
shown to ``on_commit``, the senders are answered (their jobs' futures), and
the packets are published with their stream sequence numbers. Every
:data:`LOST_CHECK` seconds, agents whose heartbeats stopped are marked lost.

While commits fail nothing is acknowledged; each reason is logged once, and
the end of the fault with how many commits were refused.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Final, cast

import attrs

from mtpkt import pkts
from mtpkt.agents.home.awake import Awake
from mtpkt.bus import Publisher
from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.link import Heartbeat, Published
from mtpkt.pkts.status import StatusChange
from mtpkt.store import Store, StoreError

__all__ = ["PUBLISH_BYTES", "Job", "OnCommit", "Writer", "fitting"]

_log = logging.getLogger(__name__)

OnCommit = Callable[[Sequence[StatusChange]], None]
"""Sees each group's newly committed StatusChanges, in the writer thread."""

MAX_GROUP: Final = 20000
"""Most status packets committed in one group transaction."""
LINGER: Final = 0.003
"""Seconds the writer waits for more frames before committing what it has."""
QUEUE_SIZE: Final = 1000
"""Most jobs waiting for the writer; beyond, senders wait (and are told the home is busy)."""
PUBLISH_BATCH: Final = 500
"""Most packets in one published frame."""
PUBLISH_BYTES: Final = 1_000_000
"""Packed bytes a published frame (or a query's answer) aims at; one packet of up to
:data:`pkts.MAX_PACKET_SIZE` goes alone."""
LOST_CHECK: Final = 1.0
"""Seconds between looks for agents whose heartbeats stopped."""


@attrs.define
class Job:
    """Work for the writer: status packets to commit, or a heartbeat to record."""

    columns: StatusColumns | None = None
    beat: Heartbeat | None = None
    done: "Future[None]" = attrs.field(factory=Future)
    """Set once committed (or with the StoreError that kept it from being)."""


@attrs.define
class _Fault:
    """Commits failing since ``since`` (monotonic): how many, and the reasons logged."""

    since: float
    refused: int = 0
    reasons: set[str] = attrs.field(factory=set)


class Writer:
    """The thread that commits the collector's jobs and publishes them.

    Args:
        store: the databases (written only from this thread).
        key: the area's secret; published frames are signed with it.
        publisher: the live stream.
        on_commit: sees the StatusChanges of each group once committed, before they
            are published; it must be quick and must not wait for a commit.
    """

    def __init__(
        self, store: Store, key: bytes, publisher: Publisher, on_commit: OnCommit | None
    ) -> None:
        self.store = store
        self.key = key
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=QUEUE_SIZE)
        """What waits for the writer, in order."""
        self._publisher = publisher
        self._on_commit = on_commit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="collector writer")
        self._fault: _Fault | None = None  # while commits fail
        self._awake = Awake(LOST_CHECK, "the collector's check for lost agents")
        self.groups = 0
        """Group commits made."""
        self.grouped = 0
        """Status packets in those commits."""

    def start(self) -> None:
        self._awake.restart()
        self._thread.start()

    def close(self, timeout: float) -> None:
        """Stop once the jobs queued are written (waits up to ``timeout`` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        next_lost_check = time.monotonic() + LOST_CHECK
        while not (self._stop.is_set() and self.jobs.empty()):
            try:
                first = self.jobs.get(timeout=0.1)
            except queue.Empty:
                first = None
            if first is not None:
                self.write(self._group(first))
            if time.monotonic() >= next_lost_check:
                next_lost_check = time.monotonic() + LOST_CHECK
                self._check_lost()

    def _group(self, first: Job) -> list[Job]:
        """The first job and what else arrives within LINGER, up to MAX_GROUP packets.

        A commit costs the same fixed work (transactions, syncs, roll-ups) however
        many packets it holds, and senders wait for their receipts: lingering a
        moment while frames keep arriving makes fewer, larger commits.
        """
        jobs = [first]
        size = len(first.columns or ())
        deadline = time.monotonic() + LINGER
        while size < MAX_GROUP:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job.columns or ())
        if size:  # a group of heartbeats alone commits no status packet
            self.groups += 1
            self.grouped += size
        return jobs

    def write(self, jobs: list[Job]) -> None:
        """Commit one group, answer its jobs, publish what it committed (this thread only)."""
        now = time.time()
        beats = [job for job in jobs if job.beat is not None]
        if beats:
            self._write_beats(beats, now)
        jobs = [job for job in jobs if job.beat is None]
        parts = [job.columns for job in jobs if job.columns]
        if not parts:
            return
        columns = StatusColumns.join(parts)
        try:
            committed = self.store.apply_columns(columns, received=now)
        except StoreError as exc:
            self._failed(jobs, exc)
            return
        self._writable()
        if committed:
            self._observe(columns, committed)
        for job in jobs:
            job.done.set_result(None)
        if committed:
            seqs, indices = zip(*committed, strict=True)
            self._publish(seqs, list(map(columns.packed.__getitem__, indices)))

    def _write_beats(self, jobs: list[Job], now: float) -> None:
        """Record a group's heartbeats in one transaction and answer them at once.

        With hundreds of agents, beats arrive all the time: one commit each, and
        an answer only after the group's status commit, made every beat wait for
        work it has nothing to do with.
        """
        try:
            self.store.heartbeats([job.beat for job in jobs if job.beat], received=now)
        except StoreError as exc:
            self._failed(jobs, exc)
            return
        self._writable()
        for job in jobs:
            job.done.set_result(None)

    def _failed(self, jobs: list[Job], exc: StoreError) -> None:
        self._report_store_error(exc)
        for job in jobs:
            job.done.set_exception(exc)

    def _writable(self) -> None:
        if self._fault is not None:
            _log.warning(
                "the database is writable again; committing resumed (%d commits refused in %.1f s)",
                self._fault.refused,
                time.monotonic() - self._fault.since,
            )
            self._fault = None

    def _observe(self, columns: StatusColumns, committed: list[tuple[int, int]]) -> None:
        """Show ``on_commit`` the StatusChanges just committed."""
        if self._on_commit is None or not columns.changes:
            return
        changes = set(columns.changes)
        packets = [columns.packet(index) for _, index in committed if index in changes]
        if not packets:
            return
        try:
            self._on_commit(cast(list[StatusChange], packets))
        except Exception:  # an observer's bug must not stop commits
            _log.exception("on_commit handler failed")

    def _report_store_error(self, exc: StoreError) -> None:
        """Log each reason of a fault once (not once per commit refused), and count them."""
        fault = self._fault
        if fault is None:
            fault = self._fault = _Fault(since=time.monotonic())
        fault.refused += 1
        if str(exc) not in fault.reasons:
            fault.reasons.add(str(exc))
            _log.error("NOT COMMITTED, nothing acknowledged: %s", exc)

    def _publish(self, seqs: Sequence[int], packed: Sequence[bytes]) -> None:
        """Publish committed packets: their stream seqs and their bytes, in the same order."""
        head = seqs[-1]
        start = 0
        while start < len(seqs):
            end = start + fitting(packed[start : start + PUBLISH_BATCH])
            header = Published(origin="home", seqs=tuple(seqs[start:end]), head=head)
            try:
                frame = pkts.seal([pkts.pack(header), *packed[start:end]], self.key)
            except pkts.PacketError as exc:  # cannot happen within the sizes checked on arrival
                _log.error("cannot publish seqs %d to %d: %s", seqs[start], seqs[end - 1], exc)
            else:
                self._publisher.publish(frame)
            start = end

    def _check_lost(self) -> None:
        try:
            up_since = self._awake.since()
            for name in self.store.mark_lost(time.time(), up_since=up_since):
                _log.warning("agent %s is lost: no heartbeat for twice its interval", name)
        except StoreError as exc:
            self._report_store_error(exc)


def fitting(packed: Sequence[bytes]) -> int:
    """How many of ``packed``, from the first, go in one frame: at least one, and no more
    than :data:`PUBLISH_BYTES` together unless the first alone is larger."""
    total = 0
    for count, data in enumerate(packed):
        total += len(data)
        if total > PUBLISH_BYTES and count:
            return count
    return len(packed)
