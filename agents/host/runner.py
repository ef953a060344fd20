"""Runs one test instance on this host: each step a child process in its own process group.

A step runs as ``bash -c <command>`` in the test's run directory, with exactly
the environment it is given, its output (stdout and stderr) in
``<rundir>/<step>.log``. Megatest's rules apply (launch.scm): logpro judges an
ezstep's log where it applies (:mod:`~mtpkt.agents.host.steplogpro`), the
step's status and the test's come from logpro's code or the exit code
(:mod:`~mtpkt.agents.host.steprules`), a FAIL may be waived
(:mod:`~mtpkt.agents.host.waivers`), and a test may set its own state and
status (:meth:`TestProcess.set_status`). The test's ``runtimelim`` and a kill
stop the running step and end the test ``KILLED``/``KILLED`` (launch.scm:425-440).

Stopping a step means stopping its whole process group (SIGTERM, a grace
period, then SIGKILL), not just the ``bash`` at its top: killing only the job
process leaves ``sh → sleep`` children behind (salt #26490, celery #1106).
Whatever a step leaves running in its group when it ends is stopped the same
way, so no process outlives its step. Should the runner itself die, its
:mod:`~agents.host.guard` kills the groups of the steps it was running. One
escape remains, as in every runner without cgroups: a process that starts
its own session (``setsid``) leaves the group.

Progress goes out as status packets through a :class:`~agents.host.report.Reporter`;
this module knows nothing of sockets or config files.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import attrs

from mtpkt import pkts
from mtpkt.agents.area.environment import env_files
from mtpkt.agents.area.errors import AreaError
from mtpkt.agents.area.job import StepSpec, TestJob
from mtpkt.agents.host import guard, rollup, steplogpro, steprules, workarea
from mtpkt.agents.host.pgroups import KILL_WAIT, exit_signal, group_alive, stop_group
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.waivers import Previous, waive
from mtpkt.pkts.outcome import FINAL
from mtpkt.pkts.text import one_line

__all__ = ["KILL_WAIT", "Outcome", "TestProcess"]

POLL_INTERVAL = 0.05
"""Seconds between looks at a running step where a kill cannot wake the runner (no pidfd or
eventfd): how soon a kill is noticed then."""
LOOK_INTERVAL = 1.0
"""Seconds between looks at a running step where a kill wakes the runner at once (through
an eventfd): only a safety net. Waking every :data:`POLL_INTERVAL` for each running step
cost an agent with 32 steps running 640 wake-ups a second."""

State = pkts.State
Status = pkts.Status


@attrs.frozen
class Outcome:
    """How a test run ended: the last state and status reported for it."""

    state: pkts.State
    """``COMPLETED``, ``KILLED`` or ``INCOMPLETE`` (or a final state the test set itself)."""
    status: pkts.Status
    """``PASS``, ``FAIL``, ``WARN``, ``KILLED`` … (:mod:`~mtpkt.agents.host.steprules`)."""
    comment: str = ""
    """The test's comment when it ended."""


@attrs.frozen
class _Stop:
    """A reason to stop the running step and start no other."""

    comment: str
    grace: float
    """Seconds between SIGTERM and SIGKILL."""


@attrs.frozen
class _StepEnd:
    """What became of one step's process."""

    code: int | None = None
    """Its exit code; None when it was killed by a signal or never ran."""
    logfile: str = ""
    stopped: _Stop | None = None
    """Set when the step was stopped by a kill or the runtimelim."""
    error: str = ""
    """Why it did not run at all (the runner's words); "" when it ran."""
    how: str = ""
    """How it ended, when not with 0: "exited with 3", "was killed by SIGSEGV"."""


class TestProcess:
    """Runs one :class:`TestJob` and reports its progress; :meth:`kill` stops it from any thread.

    Args:
        job: the test to run.
        reporter: where status packets go.
        host: this host's name, carried by the state changes reported.
        kill_grace: seconds a step's processes get between SIGTERM and SIGKILL.
        previous: the previous run's record of the test, for its waivers (None: none).
        env: added to every step's environment over the job's (the agent's endpoint for
            ``megatest`` calls from inside the test, :mod:`~mtpkt.agents.host.endpoint`).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        job: TestJob,
        reporter: Reporter,
        *,
        host: str = "",
        kill_grace: float = 10.0,
        previous: Previous | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._job = job
        self._env = dict(env or {})
        self._reporter = reporter
        self._host = host
        self._kill_grace = kill_grace
        self._previous = previous
        self._lock = threading.Lock()
        self._started = False
        self._finished = False
        self._kill: _Stop | None = None
        self._kick: int | None = None  # an eventfd the waiting runner watches (lock held)
        self._pgid: int | None = None
        self._now = Outcome(State.LAUNCHED, Status.NA)
        """The state, status and comment reported last."""

    @property
    def pgid(self) -> int | None:
        """Process group of the step running now; None between steps."""
        return self._pgid

    def run(self) -> Outcome:
        """Run the test to its end and report it; blocks. Call it once.

        Returns:
            The final state, status and comment, as reported.

        Raises:
            RuntimeError: called a second time.
        """
        with self._lock:
            if self._started:
                raise RuntimeError("a TestProcess runs only once")
            self._started = True
        try:
            self._run()
        finally:
            with self._lock:
                self._finished = True
                outcome = self._now
        rollup.after_item(self._job)  # [testrollup], after the item's end as in Megatest
        return outcome

    def kill(self, reason: str = "killed by request", *, grace: float | None = None) -> None:
        """Ask the test to stop; returns at once and may be called from any thread.

        The first call reports ``KILLREQ``; the thread in :meth:`run` then stops
        the running step's processes, starts no further step and reports
        ``KILLED``/``KILLED``. Later calls, and calls after the test finished, do nothing.

        Args:
            reason: the comment reported with ``KILLREQ`` and ``KILLED``.
            grace: seconds between SIGTERM and SIGKILL; default ``kill_grace``.
        """
        with self._lock:
            if self._finished or self._kill is not None:
                return
            self._kill = _Stop(reason, self._kill_grace if grace is None else grace)
            if self._kick is not None:  # wake the runner waiting for its step
                os.eventfd_write(self._kick, 1)
            # Reported under the lock so that it always comes before the final state.
            self._report(State.KILLREQ, Status.NA, reason)

    def set_status(
        self, state: pkts.State, status: pkts.Status, comment: str = "", logfile: str = ""
    ) -> bool:
        """Set the test's state and status from inside it (Megatest's ``tests:test-set-status!``,
        tests.scm:399-440), as ``megatest -test-status`` does; thread-safe.

        A FAIL may become WAIVED (:mod:`~mtpkt.agents.host.waivers`). A state set here
        stays when the steps are done, unless it is ``RUNNING`` or another that is not
        final (launch.scm:780). Until then, each ezstep's end sets the state and status
        again, as in Megatest.

        Args:
            comment: the test's new comment; "" keeps it.
            logfile: the test's main log (Megatest's ``final_logf``); "" keeps it.

        Returns:
            False when nothing was reported: the test has finished, or is being killed.
        """
        return self._set(state, status, comment or None, logfile)

    def _set(
        self,
        state: pkts.State,
        status: pkts.Status,
        comment: str | None,
        logfile: str = "",
        *,
        final: bool = False,
    ) -> bool:
        """Report a state and status (a FAIL perhaps waived); ``comment`` None keeps the
        test's comment; ``final``: the runner's last word on the test."""
        status, comment = waive(self._job, self._previous, status, comment)
        with self._lock:
            if self._finished:
                return False
            if self._kill is not None:
                if not final:  # no RUNNING after a KILLREQ
                    return False
                state, status, comment = State.KILLED, Status.KILLED, self._kill.comment
            self._finished = final
            self._report(state, status, comment, logfile)
            return True

    def _report(
        self, state: pkts.State, status: pkts.Status, comment: str | None, logfile: str = ""
    ) -> None:
        """Report with the lock held."""
        text = self._now.comment if comment is None else comment
        self._now = Outcome(state, status, text)
        self._reporter.change(
            self._job.ref, state, status, comment=text, host=self._host, logfile=logfile
        )

    def _end(self, state: pkts.State, status: pkts.Status, comment: str) -> None:
        self._set(state, status, comment, final=True)

    def _run(self) -> None:
        job = self._job
        if self._kill is not None:
            return self._end(State.KILLED, Status.KILLED, self._kill.comment)
        try:
            workarea.prepare(job)  # with [disks]: on a disk, linked from the linktree
            with _FORK_LOCK:  # no step may fork while a copied script is open for writing
                if job.source_dir is not None:
                    shutil.copytree(job.source_dir, job.rundir, symlinks=True, dirs_exist_ok=True)
                _write_env_files(job)
        except (OSError, AreaError) as error:
            comment = f"cannot prepare run directory {job.rundir}: {one_line(error)}"
            return self._end(State.INCOMPLETE, Status.ABORT, comment)
        self._set(State.RUNNING, Status.NA, None)
        limit = job.runtimelim
        deadline = None if limit is None else time.monotonic() + limit
        rollup = steprules.Rollup()
        for index, spec in enumerate(job.steps):
            if (stop := self._stop_requested(deadline)) is not None:
                return self._end(State.KILLED, Status.KILLED, stop.comment)
            going = self._run_step(spec, deadline, rollup, index == len(job.steps) - 1)
            if isinstance(going, _Stop):
                return self._end(State.KILLED, Status.KILLED, going.comment)
            if not going:
                break
        return self._end_rule(rollup)

    def _end_rule(self, rollup: steprules.Rollup) -> None:
        """A test still running when its steps are done ends COMPLETED with the rollup's
        status; a final state it set itself stays (launch.scm:778-797)."""
        status, comment = waive(self._job, self._previous, rollup.final(), None)
        with self._lock:
            if self._finished or (self._kill is None and self._now.state in FINAL):
                return
            self._finished = True
            if self._kill is not None:
                self._report(State.KILLED, Status.KILLED, self._kill.comment)
            else:
                self._report(State.COMPLETED, status, comment)

    def _stop_requested(self, deadline: float | None) -> _Stop | None:
        if self._kill is not None:
            return self._kill
        if deadline is not None and time.monotonic() >= deadline:
            return _Stop(f"runtimelim of {self._job.runtimelim:g}s exceeded", self._kill_grace)
        return None

    def _run_step(
        self, spec: StepSpec, deadline: float | None, rollup: steprules.Rollup, last: bool
    ) -> "_Stop | bool":
        """Run one step and set the test's status by Megatest's rules.

        Returns:
            Why it was stopped; else whether the next step may run.
        """
        ref, rundir = self._job.ref, self._job.rundir
        self._reporter.step(ref, spec.name, pkts.StepState.START)
        started = time.monotonic()
        if _unsafe_name(spec.name):
            error = f"step {spec.name!r}: not a safe file name for its log, so it was not run"
            end = _StepEnd(error=error)
        else:
            end = self._execute(spec, deadline)
        if end.stopped is not None:
            self._step_end(spec, started, Status.KILLED, end)
            return end.stopped
        if not spec.ezstep:  # a runscript: its exit code is the rollup (launch.scm:279-289)
            code = None if end.error else end.code
            status = steprules.code_status(code)
            comment = end.error or (f"step {spec.name!r} {end.how}" if end.how else "")
            self._step_end(spec, started, status, end, comment)
            rollup.after_runscript(code)
            if comment:
                with self._lock:
                    self._now = attrs.evolve(self._now, comment=comment)
            return code == 0
        judged = None if end.error else steplogpro.apply(rundir, spec)
        code = end.code if judged is None else judged.code
        this = Status.FAIL if end.error else steprules.step_status(code, judged is not None)
        self._step_end(spec, started, this, end, end.error or (judged.comment if judged else ""))
        if judged is not None and judged.rows:
            self._reporter.test_data(ref, judged.rows)
        verdict = rollup.after_step(spec.name, this, last)
        html = judged.html if judged is not None else ""
        final = verdict.state is State.COMPLETED
        self._set(verdict.state, verdict.status, end.error or verdict.comment, html, final=final)
        return not end.error and steprules.keeps_going(code, judged is not None)

    def _step_end(
        self, spec: StepSpec, started: float, status: pkts.Status, end: _StepEnd, comment: str = ""
    ) -> None:
        self._reporter.step(
            self._job.ref,
            spec.name,
            pkts.StepState.END,
            status=status,
            exit_code=end.code,
            logfile=end.logfile,
            duration=time.monotonic() - started,
            comment=comment,
        )

    def _execute(self, spec: StepSpec, deadline: float | None) -> _StepEnd:
        logfile = f"{spec.name}.log"
        try:
            log = _open_log(self._job.rundir / logfile)
        except OSError as error:
            return _StepEnd(error=f"step {spec.name!r}: cannot open {logfile}: {one_line(error)}")
        with log:
            try:
                process = self._start(spec, log)
            except (OSError, ValueError) as error:
                error_text = f"step {spec.name!r} could not start: {one_line(error)}"
                return _StepEnd(logfile=logfile, error=error_text)
            self._pgid = process.pid
            try:
                stopped = self._supervise(spec, process, log, deadline)
            finally:
                self._pgid = None
                guard.release(process.pid)
        code = process.returncode  # None only if it survived SIGKILL
        exit_code = code if code is not None and code >= 0 else None  # negative: killed by signal
        if stopped is not None or code == 0:
            return _StepEnd(exit_code, logfile, stopped)
        how = f"exited with {code}" if code > 0 else f"was killed by {_signal_name(-code)}"
        return _StepEnd(exit_code, logfile, how=how)

    def _start(self, spec: StepSpec, log: BinaryIO) -> subprocess.Popen[bytes]:
        # No preexec_fn: subprocess can then use vfork, much cheaper from a big process.
        env = {**self._job.env, **self._env, guard.VARIABLE: guard.ready()}
        if spec.ezstep:  # Megatest runs ezsteps with "." last on PATH (launch.scm:134-135)
            env["PATH"] = f"{env['PATH']}:." if "PATH" in env else "."
        with _FORK_LOCK:  # Popen returns once its child has exec'd: its copies are closed
            process = subprocess.Popen(
                ["bash", "-c", spec.command],
                executable=_BASH,
                cwd=self._job.rundir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and process group, the unit we stop
            )
        guard.watch(process.pid)
        return process

    def _supervise(
        self,
        spec: StepSpec,
        process: subprocess.Popen[bytes],
        log: BinaryIO,
        deadline: float | None,
    ) -> _Stop | None:
        """Wait for the step's end or a reason to stop it; leave none of its processes behind.

        Returns:
            Why the step was stopped, or None when it ended by itself.
        """
        what = f"{self._job.ref} step {spec.name!r}"
        try:
            stop = self._wait(process, deadline)
        except BaseException:
            # The runner itself is going down (Ctrl-C, an error): do not leave the step running.
            stop_group(process, 0.0, what)
            raise
        if stop is not None:
            how = stop_group(process, stop.grace, what)
            _note(log, f"{stop.comment}: step {how}")
        elif group_alive(process.pid):
            how = stop_group(process, self._kill_grace, what)
            _note(log, f"the step ended but left processes in its process group: {how}")
        return stop

    def _wait(self, process: subprocess.Popen[bytes], deadline: float | None) -> _Stop | None:
        try:
            kick: int | None = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except (AttributeError, OSError):  # not Linux: look every POLL_INTERVAL
            kick = None  # (so also without a pidfd, whose select watches the kick)
        with self._lock:
            self._kick = kick
        try:
            with exit_signal(process, kick) as (ended, kicked):
                while True:
                    if (stop := self._stop_requested(deadline)) is not None:
                        return stop
                    timeout = LOOK_INTERVAL if kicked else POLL_INTERVAL
                    if deadline is not None:
                        timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                    if ended(timeout):
                        return None
        finally:
            with self._lock:
                self._kick = None
            if kick is not None:
                os.close(kick)


def _unsafe_name(name: str) -> bool:
    """Whether ``<name>.log`` could land outside the run directory, or is no file name at all."""
    return name in ("", ".", "..") or "/" in name or "\0" in name


def _write_env_files(job: TestJob) -> None:
    """Write ``megatest.sh`` and ``megatest.csh``: the steps' environment, as Megatest records it
    in the run directory before the steps run (``launch.scm:719-723``)."""
    sh, csh = env_files(job.env, job.blacklistvars)
    for name, text in (("megatest.sh", sh), ("megatest.csh", csh)):
        path = job.rundir / name
        if path.is_symlink():  # copied in from the test's source: replace it, never write through
            path.unlink()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with open(os.open(path, flags, 0o644), "wb") as file:
            file.write(text.encode(errors="surrogateescape"))


def _open_log(path: Path) -> BinaryIO:
    # O_NOFOLLOW: a symlink named like the log (copied in from the test's source) must not
    # send the output outside the run directory. O_APPEND keeps the runner's notes after
    # whatever the step's processes wrote through the same file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_NOFOLLOW
    return open(os.open(path, flags, 0o644), "ab", buffering=0)


def _note(log: BinaryIO, text: str) -> None:
    """Append a line of the runner's own to a step's log."""
    with contextlib.suppress(OSError):  # a full disk must not stop the runner
        log.write(f"[mtpkt] {text}\n".encode())


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_BASH = shutil.which("bash") or "/bin/bash"
_FORK_LOCK = threading.Lock()
"""Held while a test's files are copied into its run directory and while a step starts.

A child forked by one thread holds copies of every descriptor of the process until it
execs. If another thread has a test's script open for writing at that moment (copying
it into a run directory), and that script is then executed before the child execs,
exec fails with ETXTBSY ("Text file busy") and the step FAILs for nothing (Go's
golang/go#22315 is the same race). ``Popen`` returns only once its child has exec'd,
and copies are made under the same lock, so no fork overlaps an open script."""
"""The shell steps run in, found on the runner's PATH (the step's PATH is the job's business)."""
