"""Run a planned run on this host, with no home: tests in threads, as many at once as allowed.

Test support: it drives planning (:mod:`agents.area.plan`), the runner
(:mod:`agents.host.runner`) and :class:`~agents.area.progress.RunProgress`
together without sockets or a store, so the host's tests can check what a run
does end to end. mtpkt itself runs tests only through the home and its agents,
whose scheduling rules this repeats in small. Every state change goes out
through a :class:`~agents.host.report.Reporter` as the same status packets the
bus carries.
"""

import os
import queue
import threading
import time

from mtpkt.agents.area.job import TestRef
from mtpkt.agents.area.plan import Instance, Plan
from mtpkt.agents.area.progress import RunProgress
from mtpkt.agents.area.testpatt import TestPatt
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.runner import Outcome, TestProcess
from mtpkt.pkts import State, Status

__all__ = ["LocalRun"]

_TICK = 0.2  # seconds between looks at the clock while tests run


class LocalRun:
    """One run of a plan on this host.

    Args:
        plan: what to run.
        reporter: where the status packets go.
        host: the name tests are reported to run on.
        max_jobs: tests at once; the smaller of this and the area's
            ``max_concurrent_jobs`` (default: the number of CPUs).
        kill_grace: seconds between SIGTERM and SIGKILL when a test is stopped.
    """

    def __init__(
        self,
        plan: Plan,
        reporter: Reporter,
        *,
        host: str = "localhost",
        max_jobs: int | None = None,
        kill_grace: float = 10.0,
    ) -> None:
        self.plan = plan
        self.progress = RunProgress(plan)
        self.reporter = reporter
        self.host = host
        limits = [n for n in (max_jobs, plan.max_jobs) if n is not None]
        self.max_jobs = max(1, min(limits) if limits else os.cpu_count() or 1)
        self.kill_grace = kill_grace
        self._running: dict[TestRef, TestProcess] = {}
        self._done: queue.Queue[tuple[TestRef, Outcome | BaseException]] = queue.Queue()
        self._lock = threading.Lock()
        self._toplevel: dict[str, tuple[State, Status]] = {}

    def run(self, *, timeout: float | None = None) -> dict[TestRef, tuple[State, Status]]:
        """Run every test of the plan and wait until all have settled.

        Args:
            timeout: seconds after which every test still running is killed and
                TimeoutError raised (None: no limit beyond the tests' own runtimelim).

        Returns:
            The final state and status of every instance and toplevel record.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._report_not_started()
        while True:
            with self._lock:
                self._report_blocked()
                self._launch_ready()
                if self.progress.settled() and not self._running:
                    return self.progress.summary()
            if deadline is not None and time.monotonic() > deadline:
                self.kill("%", reason=f"run exceeded its {timeout}s limit")
                self._drain(time.monotonic() + self.kill_grace + 10)
                raise TimeoutError(f"run {self.plan.runname} did not settle in {timeout}s")
            self._wait_one(_TICK)

    def kill(self, testpatt: str = "%", *, reason: str = "killed by request") -> None:
        """Stop the selected tests: running ones are killed, waiting ones withdrawn."""
        patt = TestPatt.parse(testpatt)
        with self._lock:
            for ref, (state, _) in list(self.progress.records.items()):
                if not patt.matches(ref.test, ref.item):
                    continue
                if ref in self._running:
                    self._running[ref].kill(reason, grace=self.kill_grace)
                elif state is State.NOT_STARTED:
                    self._set(ref, State.KILLED, Status.KILLED, comment=reason)

    # -- internals ----------------------------------------------------------------------

    def _set(self, ref: TestRef, state: State, status: Status, *, comment: str = "") -> None:
        """Record and report an instance's new state, and its toplevel's if that changed."""
        self.progress.update(ref, state, status)
        self.reporter.change(ref, state, status, comment=comment, host=self.host)
        self._report_toplevel(ref.test)

    def _report_toplevel(self, test: str) -> None:
        planned = self.progress.tests[test]  # a deferred test's expansion, once made
        if not planned.itemized:
            return
        now = self.progress.test_state(test)
        if self._toplevel.get(test) != now:
            self._toplevel[test] = now
            self.reporter.change(self.plan.toplevel(test), *now)

    def _report_not_started(self) -> None:
        for test in self.plan.tests.values():
            for instance in test.instances:
                self.reporter.change(instance.ref, State.NOT_STARTED, Status.NA)
            if not test.instances:
                self.reporter.change(self.plan.toplevel(test.name), State.NOT_STARTED, Status.NA)
            self._report_toplevel(test.name)

    def _report_blocked(self) -> None:
        for name in self.progress.expand_due():  # deferred items: made when due
            for instance in self.progress.tests[name].instances:
                self.reporter.change(instance.ref, State.NOT_STARTED, Status.NA)
        for resolved in self.progress.resolve():
            for ref in resolved.refs:
                self.reporter.change(ref, resolved.state, resolved.status, comment=resolved.reason)
            self._report_toplevel(resolved.test)

    def _launch_ready(self) -> None:
        for instance in self.progress.ready():
            if len(self._running) >= self.max_jobs:
                return
            self._launch(instance)

    def _launch(self, instance: Instance) -> None:
        ref = instance.ref
        self._set(ref, State.LAUNCHED, Status.NA)
        process = TestProcess(
            instance.job, self.reporter, host=self.host, kill_grace=self.kill_grace
        )
        self._running[ref] = process

        def work() -> None:
            try:
                self._done.put((ref, process.run()))
            except BaseException as exc:  # handed to the run loop, which re-raises it
                self._done.put((ref, exc))

        threading.Thread(target=work, name=f"test {ref}", daemon=True).start()

    def _wait_one(self, timeout: float) -> bool:
        """Take one finished test off the queue; False if none finished in time."""
        try:
            ref, result = self._done.get(timeout=timeout)
        except queue.Empty:
            return False
        with self._lock:
            del self._running[ref]
            if isinstance(result, BaseException):
                raise RuntimeError(f"running {ref} failed: {result}") from result
            # The runner reported the final change itself; record it and roll up.
            self.progress.update(ref, result.state, result.status)
            self._report_toplevel(ref.test)
        return True

    def _drain(self, deadline: float) -> None:
        while self._running and time.monotonic() < deadline:
            self._wait_one(_TICK)
