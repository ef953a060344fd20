"""The agent side of the status path: sending the spool to the home, and heartbeats.

The retry policy of the status path lives here and nowhere else: a packet
leaves the :class:`~bus.spool.Spool` only when the home's
:class:`~pkts.link.Receipt` names it. Anything else (a timeout, a bad reply,
a receipt with an error) means the same packets are sent again after a back-off;
the home dedupes by packet id, so nothing is lost and nothing is doubled.
"""

import abc
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Final

import apsw
import attrs

from mtpkt import pkts
from mtpkt.bus.errors import BusError
from mtpkt.bus.nng import POLL_INTERVAL
from mtpkt.bus.reqrep import Requester
from mtpkt.bus.spool import RETRY_HELD, Spool
from mtpkt.bus.tls import Tls
from mtpkt.pkts.link import Heartbeat, Receipt
from mtpkt.pkts.text import one_line
from mtpkt.pkts.trouble import Trouble

__all__ = [
    "BACKOFF_MAX",
    "BACKOFF_MIN",
    "FRAME_BUDGET",
    "Heartbeater",
    "Sender",
    "SenderStats",
]

logger = logging.getLogger(__name__)

BACKOFF_MIN: Final = 0.2
"""Seconds before the first retry of a failed send; doubles on each failure."""
BACKOFF_MAX: Final = 5.0
"""Longest wait between retries."""
FRAME_BUDGET: Final = 1_000_000
"""Packed bytes per frame the Sender aims at (well under :data:`pkts.MAX_FRAME_SIZE`)."""
LINGER: Final = 0.005
"""Seconds the Sender waits for more packets when it has only a few to send: fewer, fuller
frames for both sides to handle, at the cost of that much latency."""
LINGER_BELOW: Final = 8
"""A batch of fewer packets than this waits :data:`LINGER` first."""
BUSY_WITHIN: Final = 0.1
"""A Sender whose last frame went out less than this many seconds ago is busy: it lingers
:data:`LINGER_BUSY` instead of :data:`LINGER`."""
LINGER_BUSY: Final = 0.05
"""Seconds a busy Sender waits for more packets when it has fewer than
:data:`LINGER_BUSY_BELOW`. Under a stream of packets (an agent ending many short tests)
frames of one or two packets cost the agent and the home a round trip each, and that CPU
is what the tests lack; the live view then sees a change up to this much later. An idle
Sender (one packet now and then) keeps :data:`LINGER`."""
LINGER_BUSY_BELOW: Final = 64
"""A busy Sender's batch of fewer packets than this waits :data:`LINGER_BUSY` first."""
OFFLINE_TIMEOUT: Final = 1.0
"""Seconds the ``offline`` heartbeat may take at stop; it is best effort."""
BEAT_TIMEOUT: Final = 5.0
"""Longest wait for the home's receipt of a heartbeat.

While the home is down a beat waits this long (and reaches the home if it comes
up meanwhile); the next beat follows at once if its time has passed.
"""
_STOP_JOIN: Final = 2.0


class _Backoff:
    """0.2 s, doubling to 5 s; back to 0.2 s after a success."""

    def __init__(self) -> None:
        self._delay = 0.0

    def next(self) -> float:
        self._delay = min(BACKOFF_MAX, self._delay * 2) if self._delay else BACKOFF_MIN
        return self._delay

    def reset(self) -> None:
        self._delay = 0.0


def _check_receipt(reply: bytes, key: bytes, address: str) -> Receipt | str:
    """The reply as a successful receipt, or a one-line problem."""
    try:
        packet = pkts.decode(reply, key)
    except pkts.PacketError as exc:
        return f"bad reply from {address}: {exc}"
    if not isinstance(packet, Receipt):
        return f"reply from {address} is a {packet.kind!r} packet, not a receipt"
    if packet.error:
        return f"home at {address} could not commit: {packet.error}"
    return packet


class _Talker(abc.ABC):
    """A daemon thread that talks to the home through a Requester of its own.

    Subclasses implement :meth:`_run`; :meth:`_halt` stops the thread, cutting
    a request in flight short rather than waiting for its timeout.
    """

    def __init__(self, address: str, tls: Tls | None, name: str) -> None:
        self._address = address
        self._tls = tls
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._requester: Requester | None = None
        self._trouble = Trouble(name, logger)

    def _start(self, timeout: float) -> None:
        """Dial the home and start the thread.

        Raises:
            BusError: the home's address is malformed.
            RuntimeError: already started.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self._name} was already started")
        self._requester = Requester(self._address, timeout=timeout, tls=self._tls)
        self._thread = threading.Thread(target=self._run, args=(self._requester,), name=self._name)
        self._thread.daemon = True
        self._thread.start()

    @abc.abstractmethod
    def _run(self, requester: Requester) -> None:
        """The thread's work, talking through ``requester``, until the stop flag is set."""

    def _stopping(self) -> threading.Thread | None:
        """The thread, if it runs and no stop was asked for yet (a second stop does nothing)."""
        return None if self._stop.is_set() else self._thread

    def _halt(self, thread: threading.Thread) -> None:
        """Stop the thread: set the flag, close the socket, wait a little."""
        self._stop.set()
        if self._requester is not None:
            self._requester.close()  # ends a request in flight now, not at its timeout
        thread.join(_STOP_JOIN)
        if thread.is_alive():
            logger.warning("%s: thread still running after stop", self._name)


@attrs.frozen(kw_only=True)
class SenderStats:
    """What a :class:`Sender` has done so far."""

    frames: int = 0
    """Frames sent (each one request to the home)."""
    acknowledged: int = 0
    """Packets the home's receipts named, deleted from the spool."""
    retries: int = 0
    """Sends that failed and were (or will be) tried again."""


class Sender(_Talker):
    """Sends a spool's packets to the home in batches; deletes each one its Receipt lists.

    A daemon thread takes the oldest pending packets (up to ``batch``, about
    :data:`FRAME_BUDGET` bytes), seals them into one frame, and waits for the
    home's :class:`~pkts.link.Receipt`. It wakes as soon as a packet is put and
    sends whatever is waiting, so latency stays low at low rates and batches
    grow at high rates. On a timeout, a bad reply or a receipt with an error it
    logs (once per distinct problem), backs off from 0.2 s doubling to 5 s, and
    sends the same packets again. Stop the Sender before closing its spool.

    Args:
        spool: the agent's spool; the Sender deletes from it, nothing else should.
        address: the home's address.
        key: the area's secret.
        batch: at most this many packets per frame.
        timeout: seconds to wait for each receipt.
        name: shown in logs and the thread name.
        tls: dial the home with TLS.
    """

    def __init__(
        self,
        spool: Spool,
        address: str,
        key: bytes,
        *,
        batch: int = 500,
        timeout: float = 5.0,
        name: str = "",
        tls: Tls | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        super().__init__(address, tls, name or f"sender to {address}")
        self._spool = spool
        self._key = key
        self._batch = batch
        self._timeout = timeout
        self._stats_lock = threading.Lock()
        self._stats = SenderStats()
        self._last_frame = -math.inf  # monotonic time the last frame's request ended

    @property
    def stats(self) -> SenderStats:
        """A snapshot of the counters."""
        with self._stats_lock:
            return self._stats

    @property
    def running(self) -> bool:
        """Whether the sending thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _count(self, *, frames: int = 0, acknowledged: int = 0, retries: int = 0) -> None:
        with self._stats_lock:
            stats = self._stats
            self._stats = SenderStats(
                frames=stats.frames + frames,
                acknowledged=stats.acknowledged + acknowledged,
                retries=stats.retries + retries,
            )

    def start(self) -> None:
        """Start sending in a daemon thread.

        Raises:
            BusError: the home's address is malformed.
            RuntimeError: already started.
        """
        self._start(self._timeout)

    def _run(self, requester: Requester) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            try:
                sent = self._round(requester)
            except apsw.Error as exc:  # the spool's disk failed: the packets stay, try again
                self._count(retries=1)
                self._trouble.report(f"spool {self._spool.path}: {one_line(exc)}")
                sent = False
            if sent:
                backoff.reset()
            elif sent is not None:
                self._stop.wait(backoff.next())

    def _round(self, requester: Requester) -> bool | None:
        """Send the oldest packets once; whether the home acknowledged some (None: none to send).

        Packets the spool holds in memory are written to it first (when it can take them),
        since only what is on disk is sent.

        Raises:
            apsw.Error: the spool could not be read, or could not delete what the home
                acknowledged (the home dedupes what is sent again).
        """
        if self._spool.held and not self._spool.flush():
            self._stop.wait(RETRY_HELD)  # and send what is on disk meanwhile
        batch = self._spool.pending(limit=self._batch, max_bytes=FRAME_BUDGET)
        if not batch:
            self._spool.wait(POLL_INTERVAL)  # wakes at once on put()
            return None
        busy = time.monotonic() - self._last_frame < BUSY_WITHIN
        if len(batch) < (LINGER_BUSY_BELOW if busy else LINGER_BELOW):
            if self._stop.wait(LINGER_BUSY if busy else LINGER):
                return None  # stopped meanwhile: the packets stay in the spool
            batch = self._spool.pending(limit=self._batch, max_bytes=FRAME_BUDGET)
        return self._send(requester, batch)

    def _send(self, requester: Requester, batch: list[tuple[bytes, bytes]]) -> bool:
        """Send one frame; True when the home acknowledged some of it."""
        self._count(frames=1)
        try:
            frame = pkts.seal([data for _, data in batch], self._key)
            outcome = _check_receipt(requester.request(frame), self._key, self._address)
        except (BusError, pkts.PacketError) as exc:
            outcome = str(exc)
        self._last_frame = time.monotonic()
        if isinstance(outcome, Receipt):
            removed = self._spool.remove(outcome.ids)
            if removed:
                self._count(acknowledged=removed)
                self._trouble.clear()
                return True
            outcome = f"receipt from {self._address} names none of the {len(batch)} packets sent"
        self._count(retries=1)
        if not self._stop.is_set():  # a request cut short by stop() is not a problem
            self._trouble.report(outcome)
        return False

    def stop(self, *, drain: float = 0.0) -> None:
        """Stop sending, after waiting up to ``drain`` seconds for the spool to empty.

        Returns within about ``drain`` seconds plus a fraction of one: a request
        still waiting is cut short; its packets stay in the spool for the next
        start. Calling it again does nothing.
        """
        thread = self._stopping()
        if thread is None:
            return
        deadline = time.monotonic() + drain
        while thread.is_alive() and len(self._spool) and time.monotonic() < deadline:
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        self._halt(thread)


class Heartbeater(_Talker):
    """Sends Heartbeat packets: online at start, a beat every ``interval``, offline at stop.

    Each heartbeat is a single-packet frame; the home answers it with a
    :class:`~pkts.link.Receipt` (no ids). A beat waits up to :data:`BEAT_TIMEOUT`
    for it (a home that comes up meanwhile still gets the beat); a missing
    receipt is logged, and the next beat follows on schedule, at once if its
    time passed while waiting. The ``offline`` beat at stop is best effort
    (:data:`OFFLINE_TIMEOUT`).

    Args:
        address: the home's address.
        key: the area's secret.
        origin: the agent's name.
        interval: seconds between beats (carried in each beat).
        load: returns ``(slots, busy)``: tests the agent can run at once and runs now.
        tls: dial the home with TLS.
        on_beat: called from the beating thread after each ``online`` or ``beat`` with
            its round-trip time in seconds, or None when no receipt came (for load
            measurements; it must be quick).
    """

    def __init__(
        self,
        address: str,
        key: bytes,
        *,
        origin: str,
        interval: float = 5.0,
        load: Callable[[], tuple[int, int]] = lambda: (0, 0),
        tls: Tls | None = None,
        on_beat: Callable[[float | None], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"heartbeat interval must be positive, not {interval}")
        super().__init__(address, tls, f"heartbeat of {origin} to {address}")
        self._key = key
        self._origin = origin
        self._interval = interval
        self._load = load
        self._on_beat = on_beat
        self._load_trouble = Trouble(self._name, logger)

    def start(self) -> None:
        """Send ``online`` and then beats, from a daemon thread.

        Raises:
            BusError: the home's address is malformed.
            RuntimeError: already started.
        """
        self._start(BEAT_TIMEOUT)

    def _run(self, requester: Requester) -> None:
        phase = pkts.Phase.ONLINE
        next_beat = time.monotonic()
        while not self._stop.is_set():
            self._beat(requester, phase, BEAT_TIMEOUT)
            phase = pkts.Phase.BEAT
            # Keep the cadence: a slow receipt does not push every later beat back.
            next_beat = max(next_beat + self._interval, time.monotonic())
            self._stop.wait(next_beat - time.monotonic())

    def _heartbeat(self, phase: pkts.Phase) -> Heartbeat:
        try:
            slots, busy = self._load()
        except Exception as exc:
            # load() is the agent's code; its failure must not stop the beats that keep
            # the agent's tests alive at the home.
            self._load_trouble.report(f"load() failed, reporting 0 slots: {exc!r}")
            slots, busy = 0, 0
        else:
            self._load_trouble.clear()
        return Heartbeat(
            origin=self._origin,
            phase=phase,
            interval=self._interval,
            slots=slots,
            busy=busy,
            pid=os.getpid(),
        )

    def _exchange(self, requester: Requester, phase: pkts.Phase, timeout: float) -> Receipt | str:
        """Send one heartbeat; the home's receipt, or a one-line problem."""
        try:
            frame = pkts.encode(self._heartbeat(phase), self._key)
            reply = requester.request(frame, timeout=timeout)
        except (BusError, pkts.PacketError) as exc:
            return f"{phase} heartbeat: {exc}"
        return _check_receipt(reply, self._key, self._address)

    def _beat(self, requester: Requester, phase: pkts.Phase, timeout: float) -> None:
        began = time.monotonic()
        outcome = self._exchange(requester, phase, timeout)
        if self._on_beat is not None and not self._stop.is_set():
            self._on_beat(time.monotonic() - began if isinstance(outcome, Receipt) else None)
        if isinstance(outcome, Receipt):
            self._trouble.clear()
        elif not self._stop.is_set():  # a beat cut short by stop() is not a problem
            self._trouble.report(outcome)

    def stop(self) -> None:
        """Stop beating and send ``offline`` (waits at most about :data:`OFFLINE_TIMEOUT`).

        Calling it again does nothing.
        """
        thread = self._stopping()
        if thread is None:
            return
        self._halt(thread)  # cuts a beat in flight short
        # A fresh socket: the beating one is closed, and this must not wait behind it.
        with Requester(self._address, timeout=OFFLINE_TIMEOUT, tls=self._tls) as requester:
            outcome = self._exchange(requester, pkts.Phase.OFFLINE, OFFLINE_TIMEOUT)
        if not isinstance(outcome, Receipt):
            logger.info("%s: offline not acknowledged: %s", self._name, outcome)
