"""The host agent: pulls tasks from the home, runs test instances, and reports on them.

One agent runs on every host of the farm. :class:`HostAgent` wires its parts
and runs its life (start, drain, stop):

* :class:`~mtpkt.agents.host.pulls.PullLoop` asks the home for tasks and takes
  each at most once, recording its id in :class:`~mtpkt.agents.host.seen.SeenTasks`
  (``state_dir/seen.db``) first; its module says how (DESIGN guarantee 2), and
  what happens while the disk fails, while draining, and when the home is down
  or signs with another key;
* :class:`~mtpkt.agents.host.slots.SlotTable` holds the run tasks taken: each
  waits for one of the ``slots`` and runs in a thread of its own, or is killed;
* :class:`~mtpkt.agents.host.plans.PlanCache` plans a test once per launch,
  from the area's own files;
* :class:`~mtpkt.agents.host.endpoint.Endpoint` takes the ``megatest`` calls of
  the running tests' steps (``ipc://`` under ``state_dir``), each exactly once.

What the tests do goes out as status packets: the
:class:`~mtpkt.agents.host.report.Reporter` puts each into the durable
:class:`~mtpkt.bus.Spool` (``state_dir/spool.db``), and the :class:`~mtpkt.bus.Sender`
sends them to the home and deletes them on its receipt (DESIGN guarantee 3).
A :class:`~mtpkt.bus.Heartbeater` tells the home the agent is alive. A test
that the agent before this one left unfinished (it died under it) is reported
DEAD when this one starts.

Shutting down: :meth:`HostAgent.drain` (first SIGTERM) takes no new tests,
lets the running ones finish and their status reach the home, then stops;
:meth:`HostAgent.stop` (second SIGTERM) kills running tests now. Signal
handlers should only set a flag and let a thread call these methods. When
the home's answers keep failing to verify, the agent drains and stops by
itself, and :attr:`HostAgent.failure` says why.
"""

import contextlib
import logging
import math
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import attrs

from mtpkt import pkts
from mtpkt.agents.area import Area, TestRef
from mtpkt.agents.host.endpoint import Endpoint
from mtpkt.agents.host.plans import PlanCache
from mtpkt.agents.host.pulls import PullLoop
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.seen import SeenTasks
from mtpkt.agents.host.slots import SlotTable
from mtpkt.bus import Heartbeater, Sender, Spool, Tls

__all__ = ["DRAIN_SPOOL", "STOP_SPOOL", "HostAgent"]

_log = logging.getLogger(__name__)

DRAIN_SPOOL: Final = 10.0
"""Seconds :meth:`HostAgent.drain` waits at most for the home to receive the last status."""
STOP_SPOOL: Final = 1.0
"""Seconds :meth:`HostAgent.stop` gives the home to receive the status of killed tests."""


@attrs.frozen
class _Parts:
    """What a started agent owns; made by :meth:`HostAgent.start`."""

    seen: SeenTasks
    spool: Spool
    reporter: Reporter
    slots: SlotTable
    pulls: PullLoop
    sender: Sender
    heartbeater: Heartbeater
    endpoint: Endpoint


class HostAgent:
    """Runs the tests the home gives this host, and reports on them.

    Args:
        area: the test-suite area (tests are planned from its files only).
        key: the area's secret; every frame is signed with it.
        home: the home's request address (pulls go there).
        name: this agent's name: the origin of its packets and the host of its tests.
        slots: tests run at once.
        state_dir: where ``spool.db`` and ``seen.db`` live; one agent at a time.
        kill_grace: seconds between SIGTERM and SIGKILL when the agent stops a test.
        pull_interval: seconds between pulls.
        heartbeat: seconds between heartbeats.
        status_home: where status packets and heartbeats go (default: ``home``).
        tls: dial the home with TLS (the addresses become ``tls+tcp://``).

    Raises:
        ValueError: a number is out of range, the name is empty or the key too short.
    """

    def __init__(
        self,
        area: Area,
        key: bytes,
        *,
        home: str,
        name: str,
        slots: int,
        state_dir: Path,
        kill_grace: float = 10.0,
        pull_interval: float = 0.2,
        heartbeat: float = 2.0,
        status_home: str | None = None,
        tls: Tls | None = None,
    ) -> None:
        if not name:
            raise ValueError("an agent needs a name")
        if slots < 1:
            raise ValueError(f"slots must be at least 1, not {slots}")
        if pull_interval <= 0 or heartbeat <= 0 or kill_grace < 0:
            raise ValueError(
                f"intervals must be positive and kill_grace not negative, not "
                f"pull_interval={pull_interval}, heartbeat={heartbeat}, kill_grace={kill_grace}"
            )
        if len(key) < pkts.MIN_KEY_SIZE:
            raise ValueError(f"the key must be at least {pkts.MIN_KEY_SIZE} bytes")
        self.area = area
        self.name = name
        self.slots = slots
        self.home = home
        self.status_home = status_home or home
        self.tls = tls
        self.state_dir = Path(state_dir)
        self.kill_grace = kill_grace
        self.pull_interval = pull_interval
        self.heartbeat = heartbeat
        self._key = key
        self._plans = PlanCache(area, agent=name)
        self._parts: _Parts | None = None
        self._drain_spool = DRAIN_SPOOL  # seconds drain() gives the spool to empty
        self._stop_now = threading.Event()
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()

    @property
    def failure(self) -> str | None:
        """Why the agent stopped by itself (the home's answers do not verify), or None."""
        parts = self._parts
        return None if parts is None else parts.pulls.failure

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the state files and start pulling, sending and heartbeating.

        Raises:
            bus.SpoolError: another agent uses ``state_dir``.
            agents.host.seen.SeenError: ``seen.db`` cannot be used.
            bus.BusError: an address is malformed.
            RuntimeError: the agent was already started.
        """
        with self._shutdown_lock:
            if self._parts is not None or self._stopped.is_set():
                raise RuntimeError(f"agent {self.name} was already started")
            with contextlib.ExitStack() as undo:
                spool = Spool(self.state_dir / "spool.db")
                undo.callback(spool.close)
                seen = SeenTasks(self.state_dir / "seen.db")
                undo.callback(seen.close)
                wake = threading.Event()  # the pull loop pulls at once when it is set
                reporter = Reporter(self.name, spool.put, next_seq=spool.next_seq)
                endpoint = Endpoint(self.state_dir, spool, reporter, agent=self.name)
                undo.callback(endpoint.close)
                slots = SlotTable(
                    self.area,
                    agent=self.name,
                    slots=self.slots,
                    kill_grace=self.kill_grace,
                    seen=seen,
                    reporter=reporter,
                    plans=self._plans,
                    on_free=wake.set,
                    endpoint=endpoint,
                )
                sender = Sender(
                    spool, self.status_home, self._key, name=f"{self.name} status", tls=self.tls
                )
                undo.callback(sender.stop)
                heartbeater = Heartbeater(
                    self.status_home,
                    self._key,
                    origin=self.name,
                    interval=self.heartbeat,
                    load=lambda: (self.slots, len(slots.running)),
                    tls=self.tls,
                )
                undo.callback(heartbeater.stop)
                pulls = PullLoop(
                    agent=self.name,
                    home=self.home,
                    key=self._key,
                    slots=slots,
                    seen=seen,
                    spool=spool,
                    interval=self.pull_interval,
                    wake=wake,
                    on_give_up=self.drain,
                    tls=self.tls,
                )
                undo.callback(pulls.stop)
                slots.report_cut_short()
                endpoint.start()
                sender.start()
                heartbeater.start()
                pulls.start()
                undo.pop_all()
            self._parts = _Parts(
                seen=seen,
                spool=spool,
                reporter=reporter,
                slots=slots,
                pulls=pulls,
                sender=sender,
                heartbeater=heartbeater,
                endpoint=endpoint,
            )
        _log.info(
            "agent %s: %d slots, pulling from %s, reporting to %s",
            self.name,
            self.slots,
            self.home,
            self.status_home,
        )

    def drain(self, timeout: float | None = None) -> None:
        """Take no new tests, let the running ones finish, send their status, then stop.

        Kills still work while draining. Returns once the agent has stopped;
        calling it again, or after :meth:`stop`, does nothing.

        Args:
            timeout: seconds to wait for running tests; then they are killed as by
                :meth:`stop` (None: wait for them however long they take).
        """
        parts = self._started_parts()
        if parts is None:
            return
        parts.pulls.drain()
        deadline = None if timeout is None else time.monotonic() + timeout
        left = parts.slots.wait_empty(deadline, self._stop_now)
        if left and not self._stop_now.is_set():
            _log.warning(
                "agent %s: %d tests still running after %gs of draining; killing them",
                self.name,
                left,
                timeout,
            )
            self._stop_now.set()
        remaining = math.inf if deadline is None else deadline - time.monotonic()
        self._drain_spool = max(STOP_SPOOL, min(DRAIN_SPOOL, remaining))
        self._shutdown(parts)

    def stop(self) -> None:
        """Kill running tests (SIGTERM, ``kill_grace``, SIGKILL) and stop every thread.

        Waits for the killed tests to end and up to :data:`STOP_SPOOL` seconds for
        their status to reach the home (the rest stays spooled for the next start).
        Calling it again does nothing; calling it while :meth:`drain` waits cuts
        the drain short.
        """
        self._stop_now.set()
        parts = self._started_parts()
        if parts is not None:
            parts.slots.interrupt()  # wakes a drain() waiting for the tests
            self._shutdown(parts)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the agent has stopped; whether it has."""
        return self._stopped.wait(timeout)

    @property
    def running(self) -> list[TestRef]:
        """The test instances started here and not yet ended."""
        parts = self._parts
        return [] if parts is None else parts.slots.running

    @property
    def taken(self) -> int:
        """Run tasks taken since the agent started."""
        parts = self._parts
        return 0 if parts is None else parts.slots.taken

    @property
    def answered(self) -> int:
        """Pulls the home has answered since the agent started."""
        parts = self._parts
        return 0 if parts is None else parts.pulls.answered

    @property
    def holding(self) -> int:
        """Run tasks taken and not ended yet, waiting ones included."""
        parts = self._parts
        return 0 if parts is None else len(parts.slots.tasks_and_free()[0])

    def mute(self) -> None:
        """Report nothing more (:meth:`Reporter.mute
        <mtpkt.agents.host.report.Reporter.mute>`): for the agent in a batch job that its
        batch system ends; what is spooled already is still sent."""
        parts = self._parts
        if parts is not None:
            parts.reporter.mute()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _started_parts(self) -> _Parts | None:
        """The parts of a running agent; None (and marked stopped) if it never started or stopped.

        Waits for a :meth:`start` in progress, so that a stop cannot slip in before it.
        """
        with self._shutdown_lock:
            if self._parts is None or self._stopped.is_set():
                self._stopped.set()
                return None
            return self._parts

    def _shutdown(self, parts: _Parts) -> None:
        """Stop pulling, end the tests, flush the spool a while, stop and close the rest."""
        with self._shutdown_lock:
            if self._stopped.is_set():
                return
            parts.slots.close()  # no task is recorded from now on
            parts.pulls.stop()
            parts.slots.end_all()
            parts.endpoint.close()  # its tests have ended: no call is taken any more
            self._flush(parts)
            parts.sender.stop()
            parts.heartbeater.stop()
            unsent = len(parts.spool)
            parts.spool.close()
            parts.seen.close()
            _log.info(
                "agent %s stopped: %d tests run, %d status packets left in the spool",
                self.name,
                parts.slots.ran,
                unsent,
            )
            self._stopped.set()  # after the line: a waiter's own last words come after it

    def _flush(self, parts: _Parts) -> None:
        """Give the sender time to empty the spool: a drain's time, or :data:`STOP_SPOOL`.

        A :meth:`stop` during a drain's wait cuts it to :data:`STOP_SPOOL` from its start.
        """
        began = time.monotonic()
        if left := len(parts.spool):  # a home that does not answer makes this wait its whole
            _log.info(
                "agent %s: sending %d spooled status packet(s) before it stops (up to %gs;"
                " what is not sent stays spooled for its next start)",
                self.name,
                left,
                STOP_SPOOL if self._stop_now.is_set() else self._drain_spool,
            )
        while len(parts.spool):
            limit = STOP_SPOOL if self._stop_now.is_set() else self._drain_spool
            if time.monotonic() - began >= limit:
                return
            time.sleep(0.02)
