"""The collector: commits status packets from agents, then acknowledges and publishes them.

One request endpoint takes three kinds of frames:

* a batch of status packets (``ack``, ``step``, ``status_change``): committed
  in a group transaction with whatever else arrived meanwhile, deduplicated by
  packet id; only then answered with a ``receipt`` listing every id of the
  frame, and published on the live stream with stream sequence numbers;
* a ``heartbeat``: the agent registry is updated; answered with a ``receipt``;
* a ``query``: committed history after a stream position, for tails that
  start up or missed part of the live stream.

Other kinds go to the ``other`` handler when one is given (the home's
dispatcher takes control packets and agents' pulls there). Anything else,
and any frame that does not decode (bad MAC, garbage, oversized …), is
logged with its reason and answered with a ``receipt`` carrying the error.
Nothing a sender sends can stop the collector.

A batch frame of status packets is read by columns
(:func:`pkts.columns.read_status`) and committed as such: no packet object
is made for it on the way to the database and the stream.

The home's own status packets (``LAUNCHED``, ``PREQ_FAIL`` …) go in through
:meth:`Collector.submit`, so they are numbered, committed and published
like an agent's; ``on_commit`` sees every StatusChange once it is committed.

Only the writer thread touches the database, so commits are serial and the
stream is in commit order; worker threads decode, wait and answer.
"""

import argparse
import itertools
import logging
import operator
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Final, cast

import attrs

from mtpkt import pkts
from mtpkt.agents.home import peers
from mtpkt.agents.home.awake import Awake
from mtpkt.bus.sockets import Publisher, Replier
from mtpkt.bus.tls import Tls
from mtpkt.pkts.columns import StatusColumns, read_status
from mtpkt.pkts.link import Heartbeat, Published, Query, Receipt
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step
from mtpkt.store import HistoryReader, Store, StoreError

__all__ = ["Collector", "OtherHandler"]

OtherHandler = Callable[[Sequence[pkts.Packet]], bytes]
"""Answers a frame of packets the collector does not take itself (returns the reply frame)."""

_log = logging.getLogger(__name__)

MAX_GROUP: Final = 20000
"""Most status packets committed in one group transaction."""
PUBLISH_BATCH: Final = 500
"""Most packets in one published frame."""
PUBLISH_BYTES: Final = 1_000_000
"""Packed bytes a published frame (or a query's answer) aims at; one packet of up to
:data:`pkts.MAX_PACKET_SIZE` goes alone."""
REPLY_TIMEOUT: Final = 30.0
"""Seconds a worker waits for the writer before answering with an error."""
LINGER: Final = 0.003
"""Seconds the writer waits for more frames before committing what it has."""
LOST_CHECK: Final = 1.0
"""Seconds between looks for agents whose heartbeats stopped."""


@attrs.define
class _Job:
    """Work for the writer: status packets to commit, or a heartbeat to record."""

    columns: StatusColumns | None = None
    beat: Heartbeat | None = None
    done: "Future[None]" = attrs.field(factory=Future)


@attrs.define
class _Fault:
    """Commits failing since ``since`` (monotonic): how many, and the reasons logged."""

    since: float
    refused: int = 0
    reasons: set[str] = attrs.field(factory=set)


class Collector:
    """Serves one request endpoint and one publish endpoint for a store.

    Args:
        store: the databases (written only from this collector's writer thread).
        key: the area's secret; every frame in and out is signed with it.
        listen: request endpoint, e.g. ``tcp://127.0.0.1:7400`` or ``ipc:///…/home.ipc``.
        publish: live stream endpoint.
        workers: threads answering requests.
        other: answers frames of other kinds (default: they are rejected).
        on_commit: called in the writer thread with each group's newly
            committed StatusChange packets, after they are committed and
            before they are published; it must be quick and must not wait for
            :meth:`submit`.
        tls: both endpoints listen with TLS (``tls+tcp://``); mutual if it holds a CA.
    """

    def __init__(
        self,
        store: Store,
        key: bytes,
        *,
        listen: str,
        publish: str,
        workers: int = 4,
        other: OtherHandler | None = None,
        on_commit: Callable[[Sequence[StatusChange]], None] | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self._other = other
        self._on_commit = on_commit
        self._reader = HistoryReader(store.dbdir)
        self._jobs: queue.Queue[_Job] = queue.Queue(maxsize=1000)
        self._submit_lock = threading.Lock()
        self._submitted: _Job | None = None  # the last job of submit()
        self._stop = threading.Event()
        try:
            self._publisher = Publisher(publish, tls=tls)
        except BaseException:
            self._reader.close()
            raise
        try:
            self._replier = Replier(
                listen, self._handle, workers=workers, name="collector", tls=tls
            )
        except BaseException:
            self._publisher.close()
            self._reader.close()
            raise
        self._writer = threading.Thread(target=self._write_loop, name="collector writer")
        self._fault: _Fault | None = None  # while commits fail
        self._awake = Awake(LOST_CHECK, "the collector's check for lost agents")
        self.rejected = 0
        """Frames refused since start (bad MAC, garbage, unknown kind …)."""
        self.groups = 0
        """Group commits made."""
        self.grouped = 0
        """Status packets in those commits."""

    @property
    def listen_address(self) -> str:
        return self._replier.address

    @property
    def publish_address(self) -> str:
        return self._publisher.address

    def start(self) -> None:
        """Start serving."""
        self._awake.restart()
        self._writer.start()
        self._replier.start()

    def close(self) -> None:
        """Stop serving; work already committed stays committed."""
        self._stop.set()
        self._replier.close()
        self._writer.join(timeout=REPLY_TIMEOUT)
        self._publisher.close()
        self._reader.close()

    def __enter__(self) -> "Collector":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests (worker threads) ------------------------------------------------------

    def _handle(self, frame: bytes) -> bytes:
        try:
            packets = self._read(frame)
        except pkts.PacketError as exc:
            return self._reject(f"a frame of {len(frame)} bytes", str(exc))
        if isinstance(packets, StatusColumns):
            if not len(packets):
                return self._receipt()
            problem = self._check_targets(packets) or _check_sizes(packets)
            if problem:
                return self._reject(f"status packets from {packets.origins[0]}", problem)
            return self._submit(_Job(columns=packets), packets.ids)
        if not packets:
            return self._receipt()
        first = packets[0]
        if len(packets) == 1 and isinstance(first, Heartbeat):
            problem = peers.problem(first)
            if problem:
                return self._reject(f"a heartbeat from {first.origin!r}", problem)
            return self._submit(_Job(beat=first), [])
        if len(packets) == 1 and isinstance(first, Query):
            return self._answer(first)
        if self._other is not None:
            return self._other(packets)
        kinds = ", ".join(sorted({p.kind for p in packets}))
        return self._reject(f"{kinds} packets from {first.origin}", "not taken by this endpoint")

    def _read(self, frame: bytes) -> StatusColumns | list[pkts.Packet]:
        """A frame's status packets by columns, or its packets of other kinds.

        Raises:
            PacketError: it cannot be read.
        """
        columns = read_status(frame, self.key)
        if columns is not None:
            return columns
        packets = pkts.decode_batch(frame, self.key)
        status = [p for p in packets if isinstance(p, Ack | Step | StatusChange)]
        if status and len(status) == len(packets):
            return StatusColumns.of(status)
        return packets

    def _reject(self, what: str, reason: str) -> bytes:
        self.rejected += 1
        _log.warning("rejected %s: %s", what, reason)
        return self._receipt(error=f"rejected: {reason}")

    def _check_targets(self, columns: StatusColumns) -> str:
        """Why the frame cannot be committed as it is, or "" (checked before it joins a group,
        so one bad frame cannot fail the commits of others)."""
        tested = map(operator.ne, columns.kinds, itertools.repeat(Ack.kind))
        for target in set(itertools.compress(columns.targets, tested)):
            try:
                self.store.check_target(target)
            except StoreError as exc:
                return str(exc)
        return ""

    def submit(self, packets: Sequence[StatusPacket]) -> Callable[[], None]:
        """Queue status packets made in this process for commit, behind everything queued
        before them; the function returned waits until they are committed.

        Packets queued one after the other are committed in that order, maybe in
        the same group: a caller that must keep its packets in order queues them
        under its own lock and waits outside it. With no packets, the function
        waits for those queued last (and so for all queued before them).

        Raises:
            TimeoutError: the queue stayed full (from this call); the writer did not
                get to them in time (from the function returned).
            StoreError: they could not be committed (from the function returned).
        """
        job: _Job | None
        with self._submit_lock:
            if packets:
                job = _Job(columns=StatusColumns.of(packets))
                try:
                    self._jobs.put(job, timeout=REPLY_TIMEOUT)
                except queue.Full:
                    raise TimeoutError("the collector's queue stayed full") from None
                self._submitted = job
            else:  # nothing new, but what was queued before must be committed first
                job = self._submitted
        if job is None or job.done.done():  # (a failed one was reported to its own caller)
            return _done
        done = job.done

        def wait() -> None:
            done.result(timeout=REPLY_TIMEOUT)

        return wait

    def _submit(self, job: _Job, ids: list[bytes]) -> bytes:
        try:
            self._jobs.put(job, timeout=REPLY_TIMEOUT)
            job.done.result(timeout=REPLY_TIMEOUT)
        except StoreError as exc:
            return self._receipt(error=f"not committed: {exc}")
        except (queue.Full, TimeoutError):
            return self._receipt(error="not committed: the home is overloaded, try again")
        return self._receipt(ids=ids)

    def _answer(self, query: Query) -> bytes:
        limit = max(1, min(query.limit, 5000))
        try:
            head = self._reader.head()
            rows = self._reader.history(
                after=query.after, limit=limit, target=query.target, runname=query.runname
            )
        except StoreError as exc:  # e.g. a target that does not fit the area's fields
            return self._receipt(error=str(exc))
        packed = [pkts.pack(packet) for _, packet in rows]
        count = _fitting(packed)
        if count < len(rows):  # cut short: the asker goes on from the last seq given
            head = rows[count - 1][0]
        seqs = [seq for seq, _ in rows[:count]]
        return pkts.seal(
            [pkts.pack(Published(origin="home", seqs=tuple(seqs), head=head)), *packed[:count]],
            self.key,
        )

    def _receipt(self, *, ids: Sequence[bytes] = (), error: str = "") -> bytes:
        return pkts.encode(Receipt(origin="home", ids=tuple(ids), error=error), self.key)

    # -- the writer thread --------------------------------------------------------------

    def _write_loop(self) -> None:
        next_lost_check = time.monotonic() + LOST_CHECK
        while not (self._stop.is_set() and self._jobs.empty()):
            try:
                first = self._jobs.get(timeout=0.1)
            except queue.Empty:
                first = None
            if first is not None:
                self._write(self._group(first))
            if time.monotonic() >= next_lost_check:
                next_lost_check = time.monotonic() + LOST_CHECK
                self._check_lost()

    def _group(self, first: _Job) -> list[_Job]:
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
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job.columns or ())
        self.groups += 1
        self.grouped += size
        return jobs

    def _write(self, jobs: list[_Job]) -> None:
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

    def _write_beats(self, jobs: list[_Job], now: float) -> None:
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

    def _failed(self, jobs: list[_Job], exc: StoreError) -> None:
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
            end = start + _fitting(packed[start : start + PUBLISH_BATCH])
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


def _done() -> None:
    """Nothing to wait for."""


def _check_sizes(columns: StatusColumns) -> str:
    """Why a frame's status packets cannot be committed and published, or ""."""
    largest = max(map(len, columns.packed))
    if largest > pkts.MAX_PACKET_SIZE:
        return (
            f"a status packet of {largest} bytes exceeds the limit of"
            f" {pkts.MAX_PACKET_SIZE} bytes (it could not be published)"
        )
    return ""


def _fitting(packed: Sequence[bytes]) -> int:
    """How many of ``packed``, from the first, go in one frame: at least one, and no more
    than :data:`PUBLISH_BYTES` together unless the first alone is larger."""
    total = 0
    for count, data in enumerate(packed):
        total += len(data)
        if total > PUBLISH_BYTES and count:
            return count
    return len(packed)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agents.home.collector``: a collector process on its own."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.home.collector",
        description="Commit status packets from agents into a store and publish them.",
    )
    parser.add_argument(
        "--dbdir", required=True, type=Path, help="directory of main.db and <run_id>.db"
    )
    parser.add_argument("--fields", required=True, help="the area's [fields] keys, comma-separated")
    parser.add_argument(
        "--listen", required=True, help="request endpoint, e.g. tcp://127.0.0.1:7400"
    )
    parser.add_argument("--publish", required=True, help="live stream endpoint")
    parser.add_argument("--key-file", required=True, type=Path, help="the area's secret key")
    parser.add_argument(
        "--not-durable",
        action="store_true",
        help="synchronous=NORMAL: survives a crash of this process, not of the OS",
    )
    parser.add_argument("--workers", type=int, default=4, help="threads answering requests")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s collector %(levelname)s %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    key = args.key_file.read_bytes()
    fields = [field for field in args.fields.split(",") if field]
    with Store(args.dbdir, fields, durable=not args.not_durable) as store:
        with Collector(
            store, key, listen=args.listen, publish=args.publish, workers=args.workers
        ) as collector:
            print(
                f"collector ready: requests {collector.listen_address}, "
                f"stream {collector.publish_address}, head {store.head()}",
                flush=True,
            )
            while not stop.wait(0.2):
                pass
        if collector.groups:
            average = collector.grouped / collector.groups
            print(f"collector done: {collector.groups} commits, {average:.0f} packets each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
