"""Following the home's committed status packets: snapshot, then the live stream, with no gap.

The live stream (NNG pub/sub) is lossy by design: a subscriber that joins
late misses what went before, and one that is slow or paused has messages
dropped. So a :class:`Follower` never trusts it alone:

1. it subscribes first, so that nothing published from then on is missed;
2. it asks the home for the committed history (``query``), page by page, up
   to the newest stream sequence number (the *head*);
3. it then takes live frames, each packet numbered with its stream sequence
   number. A number above the next expected one is a gap: the missing part
   is asked for again (``query``) before going on. When the stream is quiet
   it asks anyway, now and then, so a gap at the very end is noticed too.

What it yields is exactly the committed history of the selected runs, in
commit order, each packet once.
"""

import threading
import time
from collections.abc import Iterator

from mtpkt import pkts
from mtpkt.bus.errors import BusError
from mtpkt.bus.pubsub import Subscriber
from mtpkt.bus.reqrep import Requester
from mtpkt.bus.tls import Tls
from mtpkt.pkts.link import Published, Query, Receipt
from mtpkt.pkts.status import Ack, StatusPacket

__all__ = ["Follower", "QueryRefused"]

IDLE_POLL = 1.0
"""Seconds of silence on the live stream after which the home is asked for what is new."""


class QueryRefused(Exception):
    """The home answered a query with an error (a target that does not fit the area's
    fields, say); the message is its line."""


class Follower:
    """Committed status packets of some runs (or all), in order, each once.

    Args:
        request_address: the home's request endpoint.
        publish_address: the home's live stream endpoint.
        key: the area's secret.
        target: only this target's packets (empty: all).
        runname: only this run name's packets (empty: all).
        acks: with a target or runname, the ``ack`` packets too (they belong to no run).
        page: packets asked for in one query.
        timeout: seconds to wait for an answer to a query.
        tls: dial both endpoints with TLS.
    """

    def __init__(
        self,
        request_address: str,
        publish_address: str,
        key: bytes,
        *,
        target: str = "",
        runname: str = "",
        acks: bool = False,
        page: int = 1000,
        timeout: float = 5.0,
        tls: Tls | None = None,
    ) -> None:
        self.key = key
        self.target = target
        self.runname = runname
        self.acks = acks
        self.page = page
        self.position = 0
        """Every selected packet with a stream sequence number up to this has been yielded."""
        self.refills = 0
        """How many times a gap in the live stream was filled from the home's history."""
        self._subscriber = Subscriber(publish_address, tls=tls)
        try:
            self._requester = Requester(request_address, timeout=timeout, tls=tls)
        except BaseException:
            self._subscriber.close()
            raise
        self._last_heard = time.monotonic()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Make a :meth:`catch_up` or :meth:`poll` running in another thread end soon (within
        :data:`~bus.nng.POLL_INTERVAL`, or when a query in flight is answered or times
        out) with :class:`~bus.errors.BusError`, and every later call at once.

        Unlike :meth:`close`, safe while another thread waits in NNG: closing a socket
        that another thread is receiving on can make NNG panic (nng #2238).
        """
        self._stop.set()

    def close(self) -> None:
        """Close the sockets; call it when no other thread uses the follower."""
        self._subscriber.close()
        self._requester.close()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise BusError("the follower was stopped")

    def __enter__(self) -> "Follower":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _selected(self, packet: StatusPacket) -> bool:
        if isinstance(packet, Ack):
            return self.acks or not (self.target or self.runname)
        return (not self.target or packet.target == self.target) and (
            not self.runname or packet.runname == self.runname
        )

    def catch_up(self) -> list[tuple[int, StatusPacket]]:
        """Everything committed after :attr:`position`, from the home's history.

        Raises:
            BusError: the home did not answer (the position is kept; call again), or
                :meth:`stop` was called.
            QueryRefused: the home refused the query.
        """
        found: list[tuple[int, StatusPacket]] = []
        while True:
            self._check_stop()
            query = Query(
                after=self.position,
                limit=self.page,
                target=self.target,
                runname=self.runname,
                acks=self.acks,
            )
            reply = self._requester.request(pkts.encode(query, self.key))
            header, rows = _read_frame(reply, self.key)
            if len(rows) < self.page:
                # The home reads its head before the rows: rows committed in between come
                # beyond it. They are left for the stream (or the next query), which would
                # otherwise give them a second time; up to the head, nothing is missing.
                found.extend(row for row in rows if row[0] <= header.head)
                self.position = max(self.position, header.head)
                return found
            found.extend(rows)
            self.position = rows[-1][0]

    def poll(self, timeout: float) -> list[tuple[int, StatusPacket]]:
        """New packets within about ``timeout`` seconds (possibly none).

        Raises:
            BusError: a gap needed the home's history and the home did not answer, or
                :meth:`stop` was called.
        """
        deadline = time.monotonic() + timeout
        result: list[tuple[int, StatusPacket]] = []
        while not result:
            self._check_stop()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            frame = self._subscriber.recv(min(remaining, IDLE_POLL), stop=self._stop)
            if frame is None:
                if time.monotonic() - self._last_heard >= IDLE_POLL:
                    self._last_heard = time.monotonic()
                    result.extend(self._refill())
                continue
            self._last_heard = time.monotonic()
            result.extend(self._take(frame))
        return result

    def follow(self, *, until: float | None = None) -> Iterator[tuple[int, StatusPacket]]:
        """The history so far, then new packets as they are committed.

        Args:
            until: stop at this ``time.monotonic()`` value (None: never, or at :meth:`stop`).
        """
        yield from self.catch_up()
        while until is None or time.monotonic() < until:
            remaining = 0.5 if until is None else max(0.0, min(0.5, until - time.monotonic()))
            try:
                yield from self.poll(remaining)
            except BusError:
                if self._stop.is_set():
                    return
                time.sleep(min(0.5, remaining))  # the home is away: the stream resumes later

    def _refill(self) -> list[tuple[int, StatusPacket]]:
        before = self.position
        rows = self.catch_up()
        if rows or self.position > before:
            self.refills += 1
        return rows

    def _take(self, frame: bytes) -> list[tuple[int, StatusPacket]]:
        try:
            _, rows = _read_frame(frame, self.key)
        except pkts.PacketError:
            return []  # not from our home (or corrupt): ignored, the history has the truth
        if not rows or rows[-1][0] <= self.position:
            return []  # already had all of it
        if rows[0][0] > self.position + 1:
            return self._refill()  # a gap: the history covers this frame too
        fresh = [(seq, packet) for seq, packet in rows if seq > self.position]
        # Not header.head: one commit may be published as several frames sharing it.
        self.position = rows[-1][0]
        return [(seq, packet) for seq, packet in fresh if self._selected(packet)]


def _read_frame(frame: bytes, key: bytes) -> tuple[Published, list[tuple[int, StatusPacket]]]:
    """A ``published`` frame's header and its numbered status packets.

    Raises:
        PacketError: it is not a well-formed published frame.
    """
    packets = pkts.decode_batch(frame, key)
    if len(packets) == 1 and isinstance(packets[0], Receipt) and packets[0].error:
        raise QueryRefused(packets[0].error)
    if not packets or not isinstance(packets[0], Published):
        raise pkts.PacketError("expected a published frame")
    header = packets[0]
    body = packets[1:]
    if len(body) != len(header.seqs):
        raise pkts.PacketError("published frame: numbers and packets do not match")
    rows: list[tuple[int, StatusPacket]] = []
    for seq, packet in zip(header.seqs, body, strict=True):
        if not isinstance(packet, StatusPacket):
            raise pkts.PacketError(f"published frame holds a {packet.kind} packet")
        rows.append((seq, packet))
    return header, rows
