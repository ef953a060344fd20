"""The host agent's slot table: the run tasks it took, waiting for a slot or running in one.

The pull loop (:mod:`~mtpkt.agents.host.pulls`) hands each new run task here,
holding :attr:`SlotTable.lock` while it records the task in ``seen.db`` and
queues it, so that nothing is queued once the table is closed. A run task
that finds every slot taken waits here for one, oldest first (the home gives
no more than a pull's ``free``, but a pull that timed out may still have been
served). :meth:`SlotTable.tasks_and_free` tells the pull loop every run task
taken and not yet ended, waiting ones included.

A started job has a thread of its own: it takes the instance from the
:class:`~mtpkt.agents.host.plans.PlanCache`, runs it with a
:class:`~mtpkt.agents.host.runner.TestProcess`, notes its end in ``seen.db``,
frees its slot and wakes the pull loop. A kill stops a running job, or
withdraws a waiting one (reported KILLED, never started).

Stopping: :meth:`SlotTable.close` takes nothing new and starts nothing that
waits; :meth:`SlotTable.end_all` then withdraws what waits and kills what runs.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import apsw
import attrs

from mtpkt.agents.area import Area, AreaError, TestRef
from mtpkt.agents.host.endpoint import Endpoint
from mtpkt.agents.host.plans import PlanCache
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.runner import KILL_WAIT, TestProcess
from mtpkt.agents.host.seen import SeenTasks
from mtpkt.agents.host.waivers import Previous
from mtpkt.pkts import State, Status
from mtpkt.pkts.link import Task
from mtpkt.pkts.text import one_line
from mtpkt.pkts.trouble import Trouble

__all__ = ["JOIN_TIMEOUT", "SlotTable"]

_log = logging.getLogger(__name__)

JOIN_TIMEOUT: Final = 5.0
"""Seconds to wait for a thread to end: the pull thread, and test threads beyond their kill time."""


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


class SlotTable:
    """The run tasks a host agent took, each waiting for a slot or running in one.

    Args:
        area: the test-suite area (a target that does not fit it is not reported).
        agent: the agent's name: the host of its tests, and in its log lines.
        slots: tests run at once.
        kill_grace: seconds between SIGTERM and SIGKILL when the agent stops a test.
        seen: where the end of each run task's test is noted.
        reporter: turns what happens to the tests into status packets.
        plans: where a job takes its planned instance from.
        on_free: called when a job has ended (a slot is free: pull at once).
        endpoint: where the tests' ``megatest`` calls come in (each running test is
            admitted there for its run); None: steps cannot call back.
    """

    def __init__(
        self,
        area: Area,
        *,
        agent: str,
        slots: int,
        kill_grace: float,
        seen: SeenTasks,
        reporter: Reporter,
        plans: PlanCache,
        on_free: Callable[[], None],
        endpoint: Endpoint | None = None,
    ) -> None:
        self.area = area
        self._endpoint = endpoint
        self.agent = agent
        self.slots = slots
        self.kill_grace = kill_grace
        self._seen = seen
        self._reporter = reporter
        self._plans = plans
        self._on_free = on_free
        self.lock = threading.Lock()
        """Guards the table; held by callers of :meth:`accept` and :meth:`kill`."""
        self._changed = threading.Condition(self.lock)  # a job ended, or stop cut a wait short
        self._jobs: dict[bytes, _Job] = {}  # by task id, in arrival order (the start order)
        self.closed = False
        """Set by :meth:`close`: no task is recorded or started from then on (lock held)."""
        self.ran = 0
        """Jobs that ended after running."""
        self.taken = 0
        """Run tasks taken."""
        self._finish_trouble = Trouble(f"agent {agent}: seen.db", _log, logging.ERROR)

    # -- what the pull loop and the heartbeats read -------------------------------------

    def tasks_and_free(self) -> tuple[tuple[bytes, ...], int]:
        """The ids of every run task taken and not yet ended, and the slots not taken."""
        with self.lock:
            return tuple(self._jobs), max(0, self.slots - len(self._jobs))

    @property
    def running(self) -> list[TestRef]:
        """The test instances started here and not yet ended."""
        with self.lock:
            return [job.ref for job in self._jobs.values() if job.thread is not None]

    # -- taking tasks (the caller holds the lock) ---------------------------------------

    def accept(self, task: Task, ref: TestRef) -> None:
        """Queue a new run task and start it if a slot is free (lock held).

        A task for an instance whose earlier run is still here waits until that run has
        left: the home asks again only once the earlier run reported its end (Megatest's
        second pass, a ``-rerun``), and the end is reported before the job leaves the
        table. Dropping the task would leave the instance LAUNCHED for ever."""
        if any(job.ref == ref for job in self._jobs.values()):
            _log.info(
                "agent %s: run of %s %s/%s waits until its earlier run here has ended",
                self.agent,
                ref,
                ref.target,
                ref.runname,
            )
        self._jobs[task.id] = _Job(task=task, ref=ref)
        self.taken += 1
        self._start_ready()

    def kill(self, task: Task, ref: TestRef) -> None:
        """Stop the instance if it runs here; withdraw it if it waits for a slot (lock held)."""
        reason = "killed by request"
        found = False
        for task_id, job in list(self._jobs.items()):  # a run, and one waiting behind it
            if job.ref != ref:
                continue
            found = True
            _log.info("agent %s: killing %s in %s/%s", self.agent, ref, ref.target, ref.runname)
            if job.thread is None:
                del self._jobs[task_id]
                self._changed.notify_all()
                self.report_end(ref, State.KILLED, reason, Status.KILLED)
                self.finish(task_id, ref)
            elif job.process is None:
                job.kill = (reason, task.grace)
            else:
                job.process.kill(reason, grace=task.grace)
        if not found:
            _log.info("agent %s: kill of %s: not running here", self.agent, ref)

    def _start_ready(self) -> None:
        """Start queued jobs, oldest first, while slots are free (lock held)."""
        if self.closed:
            return
        busy = sum(job.thread is not None for job in self._jobs.values())
        running = {job.ref for job in self._jobs.values() if job.thread is not None}
        for job in self._jobs.values():
            if busy >= self.slots:
                return
            if job.thread is None and job.ref not in running:  # one run of an instance at once
                running.add(job.ref)
                job.thread = threading.Thread(
                    target=self._work, args=(job,), name=f"test {job.ref}", daemon=True
                )
                job.thread.start()
                busy += 1

    # -- one test (its own thread) ------------------------------------------------------

    def _work(self, job: _Job) -> None:
        try:
            self._execute(job)
        except Exception:
            # E.g. the spool's disk failed under the runner: this test is lost, the agent
            # and the other tests carry on.
            _log.exception("agent %s: running %s failed", self.agent, job.ref)
        finally:
            self.finish(job.task.id, job.ref)
            with self.lock:
                self._jobs.pop(job.task.id, None)
                self.ran += 1
                self._changed.notify_all()
                self._start_ready()
            self._on_free()

    def _execute(self, job: _Job) -> None:
        instance = self._plans.instance(job.task, job.ref)
        if isinstance(instance, str):
            _log.warning("agent %s: %s", self.agent, instance)
            self.report_end(job.ref, State.COMPLETED, instance)
            return
        token: str | None = None
        env: dict[str, str] = {}
        if self._endpoint is not None:
            token, env = self._endpoint.admit(job.ref, None, instance.job.env)
        try:
            process = TestProcess(
                instance.job,
                self._reporter,
                host=self.agent,
                kill_grace=self.kill_grace,
                previous=Previous.of(job.task.previous),
                env=env,
            )
            if token is not None and self._endpoint is not None:
                self._endpoint.bind(token, process)
            with self.lock:
                job.process = process
                kill = job.kill
            if kill is not None:
                process.kill(kill[0], grace=kill[1])
            outcome = process.run()
        finally:
            if token is not None and self._endpoint is not None:
                self._endpoint.dismiss(token)
        _log.info(
            "agent %s: %s in %s/%s ended %s/%s",
            self.agent,
            job.ref,
            job.ref.target,
            job.ref.runname,
            outcome.state,
            outcome.status,
        )

    def finish(self, task_id: bytes, ref: TestRef) -> None:
        """Note that a run task's test ended (its end is in the spool, or held by it).

        A note that cannot be written is kept by ``seen`` and written later; if the agent
        stops before, its next start reports the test DEAD.
        """
        try:
            self._seen.finish(task_id)
        except apsw.Error as exc:
            self._finish_trouble.report(f"cannot note the end of tests: {one_line(exc)}")
        else:
            self._finish_trouble.clear()

    def report_end(
        self, ref: TestRef, state: State, comment: str, status: Status = Status.ABORT
    ) -> None:
        """Report that a test that did not run (to its end) ended ``state``/``status``.

        Not for a target that does not fit the area's keys: the home's store would
        refuse the packet, and the spool would hold every later packet behind it.
        """
        try:
            self.area.split_target(ref.target)
        except AreaError as exc:
            _log.error("agent %s: %s not reported: %s", self.agent, ref, one_line(exc))
            return
        self._reporter.change(ref, state, status, comment=comment, host=self.agent)

    # -- the agent's start and end ------------------------------------------------------

    def report_cut_short(self) -> None:
        """Report DEAD the tests the agent before this one left unfinished (it died under them)."""
        for task_id, ref in self._seen.unfinished():
            _log.warning(
                "agent %s: %s of %s/%s was cut short when this agent last stopped: DEAD",
                self.agent,
                ref,
                ref.target,
                ref.runname,
            )
            comment = f"agent {self.agent} stopped while it ran (reported on its restart)"
            self.report_end(ref, State.COMPLETED, comment, Status.DEAD)
            self.finish(task_id, ref)

    def wait_empty(self, deadline: float | None, cut_short: threading.Event) -> int:
        """Wait until every job has ended, ``deadline`` (monotonic) passed or ``cut_short`` is
        set (see :meth:`interrupt`); how many jobs are left."""
        with self.lock:
            if self._jobs:
                _log.info("agent %s draining: waiting for %d tests", self.agent, len(self._jobs))
            while self._jobs and not cut_short.is_set():
                left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if left <= 0:
                    break
                self._changed.wait(left)
            return len(self._jobs)

    def interrupt(self) -> None:
        """Wake a :meth:`wait_empty`, to look at its ``cut_short`` again."""
        with self.lock:
            self._changed.notify_all()

    def close(self) -> None:
        """Take no task and start no job from now on."""
        with self.lock:
            self.closed = True

    def end_all(self) -> None:
        """Kill what still runs (withdraw what never started) and wait for the test threads."""
        reason = f"agent {self.agent} is stopping"
        processes = []
        with self.lock:
            for task_id, job in list(self._jobs.items()):
                if job.thread is None:
                    del self._jobs[task_id]
                    self.report_end(
                        job.ref, State.KILLED, f"{reason} before the test started", Status.KILLED
                    )
                    self.finish(task_id, job.ref)
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
                _log.warning("agent %s: %s still running after stop", self.agent, thread.name)
