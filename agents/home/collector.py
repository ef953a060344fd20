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
(:func:`pkts.columns.read_status_frame`) and committed as such: no packet object
is made for it on the way to the database and the stream.

The home's own status packets (``LAUNCHED``, ``PREQ_FAIL`` …) go in through
:meth:`Collector.submit`, so they are numbered, committed and published
like an agent's; ``on_commit`` sees every StatusChange once it is committed.

Worker threads decode, check, wait and answer; only the writer thread
(:mod:`~mtpkt.agents.home.writer`) touches the database, so commits are
serial and the stream is in commit order.
"""

import contextlib
import itertools
import logging
import operator
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Final

from mtpkt import pkts
from mtpkt.agents.home import peers
from mtpkt.agents.home.writer import Job, OnCommit, Writer, fitting
from mtpkt.bus import Publisher, Replier
from mtpkt.bus.tls import Tls
from mtpkt.pkts.columns import StatusColumns, read_status_frame
from mtpkt.pkts.link import Heartbeat, Published, Query, Receipt
from mtpkt.pkts.status import Ack, StatusPacket
from mtpkt.store import HistoryReader, Store, StoreError

__all__ = ["Collector", "OtherHandler"]

OtherHandler = Callable[[Sequence[pkts.Packet]], bytes]
"""Answers a frame of packets the collector does not take itself (returns the reply frame)."""

_log = logging.getLogger(__name__)

REPLY_TIMEOUT: Final = 30.0
"""Seconds a worker waits for the writer before answering with an error."""


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
        on_commit: OnCommit | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self._other = other
        self._submit_lock = threading.Lock()
        self._submitted: Job | None = None  # the last job of submit()
        with contextlib.ExitStack() as undo:  # what was opened is closed if the rest fails
            self._reader = HistoryReader(store.dbdir)
            undo.callback(self._reader.close)
            self._publisher = Publisher(publish, tls=tls)
            undo.callback(self._publisher.close)
            self._replier = Replier(
                listen, self._handle, workers=workers, name="collector", tls=tls
            )
            undo.pop_all()
        self.writer = Writer(store, key, self._publisher, on_commit)
        """The thread that commits, answers and publishes (:mod:`~mtpkt.agents.home.writer`)."""
        self.rejected = 0
        """Frames refused since start (bad MAC, garbage, unknown kind …)."""

    @property
    def listen_address(self) -> str:
        return self._replier.address

    @property
    def publish_address(self) -> str:
        return self._publisher.address

    def start(self) -> None:
        """Start serving."""
        self.writer.start()
        self._replier.start()

    def close(self) -> None:
        """Stop serving; work already committed stays committed."""
        self._replier.close()
        self.writer.close(timeout=REPLY_TIMEOUT)
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
            return self._submit(Job(columns=packets), packets.ids)
        if not packets:
            return self._receipt()
        first = packets[0]
        if len(packets) == 1 and isinstance(first, Heartbeat):
            problem = peers.problem(first)
            if problem:
                return self._reject(f"a heartbeat from {first.origin!r}", problem)
            return self._submit(Job(beat=first), [])
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
        columns = read_status_frame(frame, self.key)
        if columns is not None:
            return columns
        packets = pkts.decode_batch(frame, self.key)
        status = [p for p in packets if isinstance(p, StatusPacket)]
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
        job: Job | None
        with self._submit_lock:
            if packets:
                job = Job(columns=StatusColumns.of(packets))
                try:
                    self.writer.jobs.put(job, timeout=REPLY_TIMEOUT)
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

    def _submit(self, job: Job, ids: list[bytes]) -> bytes:
        try:
            self.writer.jobs.put(job, timeout=REPLY_TIMEOUT)
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
                after=query.after,
                limit=limit,
                target=query.target,
                runname=query.runname,
                acks=query.acks,
            )
        except StoreError as exc:  # e.g. a target that does not fit the area's fields
            return self._receipt(error=str(exc))
        packed = [pkts.pack(packet) for _, packet in rows]
        count = fitting(packed)
        if count < len(rows):  # cut short: the asker goes on from the last seq given
            head = rows[count - 1][0]
        seqs = [seq for seq, _ in rows[:count]]
        return pkts.seal(
            [pkts.pack(Published(origin="home", seqs=tuple(seqs), head=head)), *packed[:count]],
            self.key,
        )

    def _receipt(self, *, ids: Sequence[bytes] = (), error: str = "") -> bytes:
        return pkts.encode(Receipt(origin="home", ids=tuple(ids), error=error), self.key)


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
