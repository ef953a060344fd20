"""The host agent: pulls tasks from the home, runs test instances, and reports on them.

One agent runs on every host of the farm. Its control path is a loop of
:class:`pkts.link.Pull` requests to the home (every ``pull_interval``, and at
once when a test ends); the home answers with a :class:`pkts.link.Receipt`
and the agent's :class:`pkts.link.Task` packets it has not yet acknowledged.
For each task the agent

1. records the task id durably in :class:`agents.host.seen.SeenTasks` first, and
   acts only if the id is new, so a task is executed at most once, across
   restarts (DESIGN guarantee 2);
2. acknowledges the id in its next pull, whether it was new or not;
3. runs the test instance (``run``: planned from the area's own files, run in
   a thread of its own by :class:`agents.area.TestProcess`, one slot each) or
   stops it (``kill``).

While the agent's disk fails (its spool holds status packets it cannot
write, see :class:`~bus.Spool`) it takes no new tests: its pulls offer no
free slot, and a run task that comes anyway is neither recorded nor
acknowledged, so the home sends it again once the disk is fixed. The tests
running go on; their status is held in memory and written as soon as the
disk takes it. A task that cannot be recorded in ``seen.db`` (the same disk)
is not acknowledged and not carried out: it comes again (exactly once).

A run task that finds every slot taken waits here for one (the home gives
no more than the pull's ``free``, but a pull that timed out may still have
been served). A pull's ``running`` lists every run task taken and not yet
ended, waiting ones included. While draining, a new run task is neither
recorded nor acknowledged: it stays with the home, for another agent.

What the tests do goes out as status packets: the
:class:`~agents.area.Reporter` puts each into the durable
:class:`~bus.Spool` (``state_dir/spool.db``), and the :class:`~bus.Sender`
sends them to the home and deletes them on its receipt (DESIGN guarantee 3).
A :class:`~bus.Heartbeater` tells the home the agent is alive.

The home may be down or restart at any time: pulls time out, the problem is
logged once, and the agent keeps trying; NNG reconnects by itself. A home
whose answers are signed with another key is not retried for ever: after
:data:`BAD_KEY_ANSWERS` of them in a row the agent drains and stops, and
:attr:`HostAgent.failure` says why.

Shutting down: :meth:`HostAgent.drain` (first SIGTERM) takes no new tests,
lets the running ones finish and their status reach the home, then stops;
:meth:`HostAgent.stop` (second SIGTERM) kills running tests now. Signal
handlers should only set a flag and let a thread call these methods.
"""

import collections
import contextlib
import logging
import math
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import apsw
import attrs

from mtpkt import pkts
from mtpkt.agents.area import Area, AreaError, Instance, TestRef, plan_run
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.runner import KILL_WAIT, TestProcess
from mtpkt.agents.host.seen import SeenTasks
from mtpkt.bus import BusError, Heartbeater, Requester, Sender, Spool, Tls
from mtpkt.bus.sender import Trouble
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.link import Pull, Receipt, Task
from mtpkt.pkts.text import display_name, one_line

__all__ = ["DRAIN_SPOOL", "PULL_BACKOFF_MAX", "PULL_TIMEOUT", "STOP_SPOOL", "HostAgent"]

_log = logging.getLogger(__name__)

PULL_TIMEOUT: Final = 2.0
"""Seconds a pull waits for the home's answer (a home that is down looks like a timeout)."""
PULL_BACKOFF_MAX: Final = 5.0
"""Longest wait between pulls after failures (it doubles from ``pull_interval``)."""
DRAIN_SPOOL: Final = 10.0
"""Seconds :meth:`HostAgent.drain` waits at most for the home to receive the last status."""
STOP_SPOOL: Final = 1.0
"""Seconds :meth:`HostAgent.stop` gives the home to receive the status of killed tests."""
JOIN_TIMEOUT: Final = 5.0
"""Seconds to wait for the pull thread to end, and for test threads beyond their kill time."""
PLANS_KEPT: Final = 16
"""Tests whose plans (every item) an agent keeps, so their items are not planned again."""
BAD_KEY_ANSWERS: Final = 3
"""Answers in a row from the home whose MAC does not verify before the agent stops.

Such a home signs with another key than the agent's (another area's home at that
address, or the agent was given another area's key, or the area's secret was
made anew). The agent reads its key once, at start, so retrying cannot help:
it drains and stops with one line, for its operator (or supervisor) to start it
again with the right key. One bad answer alone could be corruption; a few in a
row are not.
"""


def _testpatt(test: str, item: str) -> str:
    """The testpatt that selects ``test``/``item`` (and perhaps more; the caller picks one).

    ``%`` in a name is a wildcard that also matches the name itself; a ``,`` or a
    leading ``~`` cannot be said in a testpatt, so the whole run is planned then.
    """
    if "," in test or "," in item or test.startswith("~"):
        return "%"
    return display_name(test, item)


@attrs.define(eq=False)
class _Job:
    """One accepted ``run`` task: queued, planning, or running."""

    task: Task
    ref: TestRef
    thread: threading.Thread | None = None
    """Set when it was started (it occupies a slot from then on)."""
    process: TestProcess | None = None
    """Set once planned."""
    kill: tuple[str, float] | None = None
    """A kill (reason, grace) that came while it was being planned."""


@attrs.frozen
class _Parts:
    """What a started agent owns; made by :meth:`HostAgent.start`."""

    seen: SeenTasks
    spool: Spool
    reporter: Reporter
    sender: Sender
    heartbeater: Heartbeater
    requester: Requester


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
        self._parts: _Parts | None = None
        self._pull_thread: threading.Thread | None = None
        # Guards _jobs and _stopping; _changed tells drain() that a job ended.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[bytes, _Job] = {}  # by task id, in arrival order (the start order)
        self._stopping = False
        self._drain_spool = DRAIN_SPOOL  # seconds drain() gives the spool to empty
        self._acks: tuple[bytes, ...] = ()  # only the pull thread touches it
        self._ran = 0
        self._wake = threading.Event()
        self._pull_stop = threading.Event()
        self._draining = threading.Event()
        self._stop_now = threading.Event()
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._plans: collections.OrderedDict[tuple[bytes, str, str, str], dict[TestRef, Instance]]
        self._plans = collections.OrderedDict()
        self._plans_lock = threading.Lock()
        self._trouble = Trouble(f"agent {name}: pull from {home}", _log)
        self._bad_key_answers = 0  # only the pull thread touches it
        self.failure: str | None = None
        """Why the agent stopped by itself (the home's answers do not verify), or None."""
        self._record_trouble = Trouble(f"agent {name}: recording tasks", _log, logging.ERROR)
        self._disk_trouble = Trouble(f"agent {name}", _log, logging.ERROR)
        self._finish_trouble = Trouble(f"agent {name}: seen.db", _log, logging.ERROR)

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
                sender = Sender(
                    spool, self.status_home, self._key, name=f"{self.name} status", tls=self.tls
                )
                undo.callback(sender.stop)
                heartbeater = Heartbeater(
                    self.status_home,
                    self._key,
                    origin=self.name,
                    interval=self.heartbeat,
                    load=self._load,
                    tls=self.tls,
                )
                undo.callback(heartbeater.stop)
                requester = Requester(self.home, timeout=PULL_TIMEOUT, tls=self.tls)
                undo.callback(requester.close)
                parts = _Parts(
                    seen=seen,
                    spool=spool,
                    reporter=Reporter(self.name, spool.put, next_seq=spool.next_seq),
                    sender=sender,
                    heartbeater=heartbeater,
                    requester=requester,
                )
                thread = threading.Thread(
                    target=self._pull_loop, args=(parts,), name=f"agent {self.name} pulls"
                )
                thread.daemon = True
                self._report_cut_short(parts)
                sender.start()
                heartbeater.start()
                thread.start()
                undo.pop_all()
            self._parts, self._pull_thread = parts, thread
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
        self._draining.set()
        self._wake.set()  # tell the home at once
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._jobs:
                _log.info("agent %s draining: waiting for %d tests", self.name, len(self._jobs))
            while self._jobs and not self._stop_now.is_set():
                left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if left <= 0:
                    break
                self._changed.wait(left)
            if self._jobs and not self._stop_now.is_set():
                _log.warning(
                    "agent %s: %d tests still running after %gs of draining; killing them",
                    self.name,
                    len(self._jobs),
                    timeout,
                )
                self._stop_now.set()
            left = math.inf if deadline is None else deadline - time.monotonic()
            self._drain_spool = max(STOP_SPOOL, min(DRAIN_SPOOL, left))
        self._shutdown(parts)

    def stop(self) -> None:
        """Kill running tests (SIGTERM, ``kill_grace``, SIGKILL) and stop every thread.

        Waits for the killed tests to end and up to :data:`STOP_SPOOL` seconds for
        their status to reach the home (the rest stays spooled for the next start).
        Calling it again does nothing; calling it while :meth:`drain` waits cuts
        the drain short.
        """
        self._stop_now.set()
        with self._lock:
            self._changed.notify_all()  # wakes a drain() waiting for the tests
        parts = self._started_parts()
        if parts is not None:
            self._shutdown(parts)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the agent has stopped; whether it has."""
        return self._stopped.wait(timeout)

    @property
    def running(self) -> list[TestRef]:
        """The test instances started here and not yet ended."""
        with self._lock:
            return [job.ref for job in self._jobs.values() if job.thread is not None]

    def __enter__(self) -> "HostAgent":
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

    def _report_cut_short(self, parts: _Parts) -> None:
        """Report DEAD the tests the agent before this one left unfinished (it died under them)."""
        for task_id, ref in parts.seen.unfinished():
            _log.warning(
                "agent %s: %s of %s/%s was cut short when this agent last stopped: DEAD",
                self.name,
                ref,
                ref.target,
                ref.runname,
            )
            comment = f"agent {self.name} stopped while it ran (reported on its restart)"
            self._report_end(parts, ref, State.COMPLETED, comment, Status.DEAD)
            self._finish(parts, task_id, ref)

    def _load(self) -> tuple[int, int]:
        """``(slots, busy)`` for the heartbeats."""
        return self.slots, len(self.running)

    def _shutdown(self, parts: _Parts) -> None:
        """Stop pulling, end the tests, flush the spool a while, stop and close the rest."""
        with self._shutdown_lock:
            if self._stopped.is_set():
                return
            with self._lock:
                self._stopping = True  # no task is recorded from now on
            self._pull_stop.set()
            self._wake.set()
            parts.requester.close()  # cuts a pull in flight short
            thread = self._pull_thread
            if thread is not None:
                thread.join(JOIN_TIMEOUT)
                if thread.is_alive():
                    _log.warning("agent %s: pull thread still running after stop", self.name)
            self._end_jobs(parts)
            self._flush(parts)
            parts.sender.stop()
            parts.heartbeater.stop()
            unsent = len(parts.spool)
            parts.spool.close()
            parts.seen.close()
            self._stopped.set()
        _log.info(
            "agent %s stopped: %d tests run, %d status packets left in the spool",
            self.name,
            self._ran,
            unsent,
        )

    def _flush(self, parts: _Parts) -> None:
        """Give the sender time to empty the spool: a drain's time, or :data:`STOP_SPOOL`.

        A :meth:`stop` during a drain's wait cuts it to :data:`STOP_SPOOL` from its start.
        """
        began = time.monotonic()
        while len(parts.spool):
            limit = STOP_SPOOL if self._stop_now.is_set() else self._drain_spool
            if time.monotonic() - began >= limit:
                return
            time.sleep(0.02)

    def _end_jobs(self, parts: _Parts) -> None:
        """Kill what still runs (withdraw what never started) and wait for the test threads."""
        reason = f"agent {self.name} is stopping"
        processes = []
        with self._lock:
            for task_id, job in list(self._jobs.items()):
                if job.thread is None:
                    del self._jobs[task_id]
                    comment = f"{reason} before the test started"
                    self._report_end(parts, job.ref, State.KILLED, comment)
                    self._finish(parts, task_id, job.ref)
                elif job.process is None:
                    job.kill = (reason, self.kill_grace)  # its thread kills it once planned
                else:
                    processes.append(job.process)
            threads = [job.thread for job in self._jobs.values() if job.thread is not None]
        for process in processes:
            process.kill(reason, grace=self.kill_grace)
        deadline = time.monotonic() + self.kill_grace + KILL_WAIT + JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _log.warning("agent %s: %s still running after stop", self.name, thread.name)

    # -- the pull loop (its own thread) -------------------------------------------------

    def _pull_loop(self, parts: _Parts) -> None:
        delay = 0.0
        while not self._pull_stop.is_set():
            self._wake.clear()
            try:
                ok = self._pull(parts)
            except Exception:
                # The loop is the agent's lifeline (kills, acks): an unexpected error in one
                # round is logged with its traceback and the next round tries again.
                _log.exception("agent %s: pull round failed", self.name)
                ok = False
            if ok:
                delay = self.pull_interval
            else:
                delay = min(PULL_BACKOFF_MAX, max(self.pull_interval, delay * 2))
            self._wake.wait(delay)

    def _make_pull(self, parts: _Parts) -> Pull:
        draining = self._draining.is_set()
        full = self._disk_failing(parts)
        with self._lock:
            running = tuple(self._jobs)
            free = 0 if draining or full else max(0, self.slots - len(self._jobs))
        return Pull(
            origin=self.name,
            slots=self.slots,
            free=free,
            acks=self._acks,
            running=running,
            draining=draining,
        )

    def _pull(self, parts: _Parts) -> bool:
        """One pull and its tasks; whether the home answered it."""
        try:
            reply = parts.requester.request(pkts.encode(self._make_pull(parts), self._key))
        except BusError as exc:
            if not self._pull_stop.is_set():  # a pull cut short by stop() is no problem
                self._trouble.report(str(exc))
            return False
        tasks = self._read_reply(reply)
        if isinstance(tasks, str):
            self._trouble.report(tasks)
            if self._bad_key_answers >= BAD_KEY_ANSWERS:
                self._give_up(f"{tasks}: is the key the area's?")
            return False
        self._trouble.clear()
        self._acks = tuple(dict.fromkeys(self._take(parts, tasks)))
        return True

    def _read_reply(self, reply: bytes) -> list[Task] | str:
        """The tasks of the home's answer, or a one-line problem."""
        try:
            packets = pkts.decode_batch(reply, self._key)
        except pkts.BadMac as exc:
            self._bad_key_answers += 1
            return f"the answers from {self.home} do not verify ({exc})"
        except pkts.PacketError as exc:
            return f"bad answer from {self.home}: {exc}"
        self._bad_key_answers = 0
        if not packets or not isinstance(packets[0], Receipt):
            return f"the answer from {self.home} does not start with a receipt"
        if packets[0].error:
            return f"home at {self.home} refused the pull: {packets[0].error}"
        tasks = [packet for packet in packets[1:] if isinstance(packet, Task)]
        if len(tasks) != len(packets) - 1:
            others = sorted({p.kind for p in packets[1:] if not isinstance(p, Task)})
            _log.warning("agent %s: ignored %s packets in a pull's answer", self.name, others)
        return tasks

    def _give_up(self, why: str) -> None:
        """Stop pulling, and drain the agent from a thread of its own (it joins this one)."""
        if self.failure is not None:
            return
        self.failure = why
        _log.error("agent %s stops: %s", self.name, why)
        self._pull_stop.set()
        threading.Thread(target=self.drain, name=f"agent {self.name} gives up").start()

    def _disk_failing(self, parts: _Parts) -> bool:
        """Whether the spool holds status packets it cannot write (logged when it changes)."""
        if parts.spool.held:
            self._disk_trouble.report("takes no new tests while its spool cannot be written")
            return True
        self._disk_trouble.clear()
        return False

    def _take(self, parts: _Parts, tasks: list[Task]) -> list[bytes]:
        """Record a pull's new tasks (in one durable write) and carry them out; the ids to
        acknowledge."""
        with self._lock:
            if self._stopping:
                return []  # not recorded: the home sends them again to the next start
            taken, acks = self._choose(parts, tasks)
            if not taken:
                return acks
            try:
                new = parts.seen.add_many(
                    [(task.id, ref if task.action is Action.RUN else None) for task, ref in taken]
                )
            except apsw.Error as exc:
                self._record_trouble.report(f"cannot record tasks: {one_line(exc)}")
                return acks  # the others are not acked, nor carried out: they come again
            self._record_trouble.clear()
            for task, ref in taken:
                acks.append(task.id)
                if task.id not in new:
                    _log.debug(
                        "agent %s: task %s seen before, not run again", self.name, task.id.hex()
                    )
                    continue
                match task.action:
                    case Action.RUN:
                        self._accept(parts, task, ref)
                    case Action.KILL:
                        self._kill(parts, task, ref)
        return acks

    def _choose(
        self, parts: _Parts, tasks: list[Task]
    ) -> tuple[list[tuple[Task, TestRef]], list[bytes]]:
        """The tasks to take now, and the ids of those left that can be acknowledged already.

        A run task is left while draining (the home gives it to another agent) or while
        the disk fails (the home sends it again); one recorded before is acknowledged.
        """
        taken: list[tuple[Task, TestRef]] = []
        acks: list[bytes] = []
        closed = self._draining.is_set() or self._disk_failing(parts)
        for task in tasks:
            if task.action is Action.RUN and closed:
                if task.id in parts.seen:
                    acks.append(task.id)
                continue
            taken.append((task, TestRef(task.target, task.runname, task.test, task.item)))
        return taken, acks

    def _accept(self, parts: _Parts, task: Task, ref: TestRef) -> None:
        """Queue a new run task and start it if a slot is free (lock held)."""
        if any(job.ref == ref for job in self._jobs.values()):
            _log.warning(
                "agent %s: run of %s %s/%s ignored: that instance already runs here",
                self.name,
                ref,
                ref.target,
                ref.runname,
            )
            self._finish(parts, task.id, ref)  # not left unfinished: it never started
            return
        self._jobs[task.id] = _Job(task=task, ref=ref)
        self._start_ready(parts)

    def _kill(self, parts: _Parts, task: Task, ref: TestRef) -> None:
        """Stop the instance if it runs here; withdraw it if it waits for a slot (lock held)."""
        reason = "killed by request"
        for task_id, job in list(self._jobs.items()):
            if job.ref != ref:
                continue
            _log.info("agent %s: killing %s in %s/%s", self.name, ref, ref.target, ref.runname)
            if job.thread is None:
                del self._jobs[task_id]
                self._changed.notify_all()
                self._report_end(parts, ref, State.KILLED, reason)
                self._finish(parts, task_id, ref)
            elif job.process is None:
                job.kill = (reason, task.grace)
            else:
                job.process.kill(reason, grace=task.grace)
            return
        _log.info("agent %s: kill of %s: not running here", self.name, ref)

    def _start_ready(self, parts: _Parts) -> None:
        """Start queued jobs, oldest first, while slots are free (lock held)."""
        if self._stopping:
            return
        busy = sum(job.thread is not None for job in self._jobs.values())
        for job in self._jobs.values():
            if busy >= self.slots:
                return
            if job.thread is None:
                job.thread = threading.Thread(
                    target=self._work, args=(parts, job), name=f"test {job.ref}", daemon=True
                )
                job.thread.start()
                busy += 1

    # -- one test (its own thread) ------------------------------------------------------

    def _work(self, parts: _Parts, job: _Job) -> None:
        try:
            self._execute(parts, job)
        except Exception:
            # E.g. the spool's disk failed under the runner: this test is lost, the agent
            # and the other tests carry on.
            _log.exception("agent %s: running %s failed", self.name, job.ref)
        finally:
            self._finish(parts, job.task.id, job.ref)
            with self._lock:
                self._jobs.pop(job.task.id, None)
                self._ran += 1
                self._changed.notify_all()
                self._start_ready(parts)
            self._wake.set()  # pull at once: a slot is free

    def _finish(self, parts: _Parts, task_id: bytes, ref: TestRef) -> None:
        """Note that a run task's test ended (its end is in the spool, or held by it).

        A note that cannot be written is kept by ``seen`` and written later; if the agent
        stops before, its next start reports the test DEAD.
        """
        try:
            parts.seen.finish(task_id)
        except apsw.Error as exc:
            self._finish_trouble.report(f"cannot note the end of tests: {one_line(exc)}")
        else:
            self._finish_trouble.clear()

    def _execute(self, parts: _Parts, job: _Job) -> None:
        instance = self._plan(job)
        if isinstance(instance, str):
            _log.warning("agent %s: %s", self.name, instance)
            self._report_end(parts, job.ref, State.COMPLETED, instance)
            return
        process = TestProcess(
            instance.job, parts.reporter, host=self.name, kill_grace=self.kill_grace
        )
        with self._lock:
            job.process = process
            kill = job.kill
        if kill is not None:
            process.kill(kill[0], grace=kill[1])
        outcome = process.run()
        _log.info(
            "agent %s: %s in %s/%s ended %s/%s",
            self.name,
            job.ref,
            job.ref.target,
            job.ref.runname,
            outcome.state,
            outcome.status,
        )

    def _report_end(
        self,
        parts: _Parts,
        ref: TestRef,
        state: State,
        comment: str,
        status: Status = Status.ABORT,
    ) -> None:
        """Report that a test that did not run (to its end) ended ``state``/``status``.

        Not for a target that does not fit the area's keys: the home's store would
        refuse the packet, and the spool would hold every later packet behind it.
        """
        try:
            self.area.split_target(ref.target)
        except AreaError as exc:
            _log.error("agent %s: %s not reported: %s", self.name, ref, one_line(exc))
            return
        parts.reporter.change(ref, state, status, comment=comment, host=self.name)

    def _plan(self, job: _Job) -> Instance | str:
        """The planned instance of a run task, or a one-line reason why there is none.

        A test is planned once per launch (all its items), not once per item:
        the plans of the latest few tests are kept.
        """
        task, ref = job.task, job.ref
        where = f"{ref.target}/{ref.runname}"
        key = (task.control, task.target, task.runname, task.test)
        with self._plans_lock:
            instances = self._plans.get(key)
            if instances is not None:
                self._plans.move_to_end(key)
        if instances is None:
            try:
                plan = plan_run(self.area, task.target, task.runname, _testpatt(task.test, ""))
            except (AreaError, OSError) as exc:
                return f"cannot plan {ref} of {where}: {one_line(exc)}"
            except Exception as exc:
                _log.exception("agent %s: planning %s of %s failed", self.name, ref, where)
                return f"cannot plan {ref} of {where}: internal error: {one_line(exc)}"
            planned = plan.tests.get(task.test)
            instances = {i.ref: i for i in planned.instances} if planned is not None else {}
            with self._plans_lock:
                self._plans[key] = instances
                while len(self._plans) > PLANS_KEPT:
                    self._plans.popitem(last=False)
        return instances.get(ref) or f"the area has no test instance {ref} for {where}"
