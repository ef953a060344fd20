"""Runs one test instance on this host: each step a child process in its own process group.

A step runs as ``bash -c <command>`` in the test's run directory, with exactly
the environment it is given, its output (stdout and stderr) in
``<rundir>/<step>.log``. Megatest's rules apply: a step that exits 0 passes,
anything else fails and stops the remaining steps; the test's ``runtimelim``
and a kill stop the running step and end the test ``KILLED``/``ABORT``.

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
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import attrs

from mtpkt import pkts
from mtpkt.agents.area.environment import env_files
from mtpkt.agents.area.errors import AreaError
from mtpkt.agents.area.job import StepSpec, TestJob
from mtpkt.agents.host import guard, rollup, workarea
from mtpkt.agents.host.report import Reporter
from mtpkt.pkts.text import one_line

__all__ = ["Outcome", "TestProcess"]

POLL_INTERVAL = 0.05
"""Seconds between looks at a running step: how soon a kill or the runtimelim is noticed."""
GONE_POLL = 0.02
"""Seconds between looks at a process group that was told to stop."""
KILL_WAIT = 5.0
"""Seconds to wait for a process group to vanish after SIGKILL before giving up on it."""

_log = logging.getLogger(__name__)


@attrs.frozen
class Outcome:
    """How a test run ended: the last state and status reported for it."""

    state: pkts.State
    """``COMPLETED``, ``KILLED`` or ``INCOMPLETE``."""
    status: pkts.Status
    """``PASS``, ``FAIL`` or ``ABORT``."""
    comment: str = ""
    """Why, in one line, when it did not pass."""


@attrs.frozen
class _Stop:
    """A reason to stop the running step and start no other."""

    comment: str
    grace: float
    """Seconds between SIGTERM and SIGKILL."""


@attrs.frozen
class _StepEnd:
    """What became of one step."""

    status: pkts.Status
    exit_code: int | None = None
    logfile: str = ""
    stopped: _Stop | None = None
    """Set when the step was stopped by a kill or the runtimelim."""
    comment: str = ""
    """The test's comment, should the test end with this step."""


class TestProcess:
    """Runs one :class:`TestJob` and reports its progress; :meth:`kill` stops it from any thread.

    Args:
        job: the test to run.
        reporter: where status packets go.
        host: this host's name, carried by the state changes reported.
        kill_grace: seconds a step's processes get between SIGTERM and SIGKILL.
        env: added to every step's environment over the job's (the agent's endpoint for
            ``megatest`` calls from inside the test, :mod:`~mtpkt.agents.host.calls`).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        job: TestJob,
        reporter: Reporter,
        *,
        host: str = "",
        kill_grace: float = 10.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._job = job
        self._env = dict(env or {})
        self._set_by_test: tuple[pkts.State, pkts.Status] | None = None
        self._reporter = reporter
        self._host = host
        self._kill_grace = kill_grace
        self._lock = threading.Lock()
        self._started = False
        self._finished = False
        self._kill: _Stop | None = None
        self._pgid: int | None = None

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
        outcome = self._run()
        with self._lock:
            self._finished = True
            kill = self._kill
        if kill is not None and outcome.state is pkts.State.COMPLETED:
            # The kill was accepted (and KILLREQ reported) before the test finished.
            outcome = Outcome(pkts.State.KILLED, pkts.Status.ABORT, kill.comment)
        self._change(outcome.state, outcome.status, outcome.comment)
        rollup.after_item(self._job)  # [testrollup], after the item's end as in Megatest
        return outcome

    def kill(self, reason: str = "killed by request", *, grace: float | None = None) -> None:
        """Ask the test to stop; returns at once and may be called from any thread.

        The first call reports ``KILLREQ``; the thread in :meth:`run` then stops
        the running step's processes, starts no further step and reports
        ``KILLED``. Later calls, and calls after the test finished, do nothing.

        Args:
            reason: the comment reported with ``KILLREQ`` and ``KILLED``.
            grace: seconds between SIGTERM and SIGKILL; default ``kill_grace``.
        """
        with self._lock:
            if self._finished or self._kill is not None:
                return
            self._kill = _Stop(reason, self._kill_grace if grace is None else grace)
            # Reported under the lock so that it always comes before the final state.
            self._change(pkts.State.KILLREQ, pkts.Status.NA, reason)

    def set_status(
        self, state: pkts.State, status: pkts.Status, comment: str = "", logfile: str = ""
    ) -> bool:
        """Set the test's state and status from inside it (``tests:test-set-status!``,
        tests.scm:398-439); whether it was reported: under the test's lock, so never after
        its final state (then False). Remembered for launch.scm:780's end rule."""
        with self._lock:
            if self._finished:
                return False
            self._set_by_test = (state, status)
            self._reporter.change(
                self._job.ref, state, status, comment=comment, host=self._host, logfile=logfile
            )
            return True

    def _run(self) -> Outcome:
        job = self._job
        if self._kill is not None:
            return Outcome(pkts.State.KILLED, pkts.Status.ABORT, self._kill.comment)
        try:
            workarea.prepare(job)  # with [disks]: on a disk, linked from the linktree
            with _FORK_LOCK:  # no step may fork while a copied script is open for writing
                if job.source_dir is not None:
                    shutil.copytree(job.source_dir, job.rundir, symlinks=True, dirs_exist_ok=True)
                _write_env_files(job)
        except (OSError, AreaError) as error:
            comment = f"cannot prepare run directory {job.rundir}: {one_line(error)}"
            return Outcome(pkts.State.INCOMPLETE, pkts.Status.ABORT, comment)
        with self._lock:
            if self._kill is None:  # no RUNNING after a KILLREQ
                self._change(pkts.State.RUNNING, pkts.Status.NA)
        return self._run_steps()

    def _run_steps(self) -> Outcome:
        limit = self._job.runtimelim
        deadline = None if limit is None else time.monotonic() + limit
        for spec in self._job.steps:
            if (stop := self._stop_requested(deadline)) is not None:
                return Outcome(pkts.State.KILLED, pkts.Status.ABORT, stop.comment)
            end = self._run_step(spec, deadline)
            if end.stopped is not None:
                return Outcome(pkts.State.KILLED, pkts.Status.ABORT, end.stopped.comment)
            if end.status is not pkts.Status.PASS:
                return Outcome(pkts.State.COMPLETED, end.status, end.comment)
        return Outcome(pkts.State.COMPLETED, pkts.Status.PASS)

    def _stop_requested(self, deadline: float | None) -> _Stop | None:
        if self._kill is not None:
            return self._kill
        if deadline is not None and time.monotonic() >= deadline:
            return _Stop(f"runtimelim of {self._job.runtimelim:g}s exceeded", self._kill_grace)
        return None

    def _run_step(self, spec: StepSpec, deadline: float | None) -> _StepEnd:
        self._reporter.step(self._job.ref, spec.name, pkts.StepState.START)
        started = time.monotonic()
        if _unsafe_name(spec.name):
            comment = f"step {spec.name!r}: not a safe file name for its log, so it was not run"
            end = _StepEnd(pkts.Status.FAIL, comment=comment)
        else:
            end = self._execute(spec, deadline)
        self._reporter.step(
            self._job.ref,
            spec.name,
            pkts.StepState.END,
            status=end.status,
            exit_code=end.exit_code,
            logfile=end.logfile,
            duration=time.monotonic() - started,
        )
        return end

    def _execute(self, spec: StepSpec, deadline: float | None) -> _StepEnd:
        logfile = f"{spec.name}.log"
        try:
            log = _open_log(self._job.rundir / logfile)
        except OSError as error:
            comment = f"step {spec.name!r}: cannot open {logfile}: {one_line(error)}"
            return _StepEnd(pkts.Status.FAIL, comment=comment)
        with log:
            try:
                process = self._start(spec, log)
            except (OSError, ValueError) as error:
                comment = f"step {spec.name!r} could not start: {one_line(error)}"
                return _StepEnd(pkts.Status.FAIL, logfile=logfile, comment=comment)
            self._pgid = process.pid
            try:
                stopped = self._supervise(spec, process, log, deadline)
            finally:
                self._pgid = None
                guard.release(process.pid)
        code = process.returncode  # None only if it survived SIGKILL
        exit_code = code if code is not None and code >= 0 else None  # negative: killed by signal
        if stopped is not None:
            return _StepEnd(pkts.Status.ABORT, exit_code, logfile, stopped)
        if code == 0:
            return _StepEnd(pkts.Status.PASS, 0, logfile)
        how = f"exited with {code}" if code > 0 else f"was killed by {_signal_name(-code)}"
        return _StepEnd(pkts.Status.FAIL, exit_code, logfile, comment=f"step {spec.name!r} {how}")

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
            _stop_group(process, 0.0, what)
            raise
        if stop is not None:
            how = _stop_group(process, stop.grace, what)
            _note(log, f"{stop.comment}: step {how}")
        elif _group_alive(process.pid):
            how = _stop_group(process, self._kill_grace, what)
            _note(log, f"the step ended but left processes in its process group: {how}")
        return stop

    def _wait(self, process: subprocess.Popen[bytes], deadline: float | None) -> _Stop | None:
        with _exit_signal(process) as ended:
            while True:
                timeout = POLL_INTERVAL
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                if ended(timeout):
                    return None
                if (stop := self._stop_requested(deadline)) is not None:
                    return stop

    def _change(self, state: pkts.State, status: pkts.Status, comment: str = "") -> None:
        self._reporter.change(self._job.ref, state, status, comment=comment, host=self._host)


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


# Process groups


def _stop_group(process: subprocess.Popen[bytes], grace: float, what: str) -> str:
    """Stop every process in ``process``'s group: SIGTERM, up to ``grace`` seconds, then SIGKILL.

    Args:
        process: the group's leader (the group id is its pid).
        grace: seconds the processes get to exit after SIGTERM.
        what: names the step in log messages.

    Returns:
        How it went, as words for the step's log.
    """
    pgid = process.pid
    _signal_group(pgid, signal.SIGTERM)
    if _wait_gone(process, grace):
        return "stopped with SIGTERM"
    _log.warning("%s: processes still running %gs after SIGTERM, sending SIGKILL", what, grace)
    _signal_group(pgid, signal.SIGKILL)
    if _wait_gone(process, KILL_WAIT):
        return f"stopped with SIGKILL (still running {grace:g}s after SIGTERM)"
    _log.error("%s: processes of group %d still there %gs after SIGKILL", what, pgid, KILL_WAIT)
    return f"NOT stopped: processes still there {KILL_WAIT:g}s after SIGKILL"


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


@contextlib.contextmanager
def _exit_signal(process: subprocess.Popen[bytes]) -> Iterator[Callable[[float], bool]]:
    """A function that waits up to its argument's seconds for ``process`` to exit (and reaps it).

    Through a pidfd where Linux has them, woken the moment the process exits;
    else through :meth:`subprocess.Popen.wait`, which polls at growing intervals
    (a step that ends within 3 ms may be noticed 4 ms later).
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or it was reaped already
        pidfd = None

    def ended(timeout: float) -> bool:
        if pidfd is not None:
            if not select.select([pidfd], [], [], timeout)[0]:
                return False
            process.wait()
            return True
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    try:
        yield ended
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_gone(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the whole group to be gone; whether it is."""
    deadline = time.monotonic() + timeout
    while True:
        # Reap the leader first: as a zombie it would keep the group alive. Wait for that
        # even if /proc already shows it dying, so that its exit status is known.
        if process.poll() is not None and not _group_alive(process.pid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(GONE_POLL, remaining))


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group could still run.

    Zombies do not count: a grandchild that died after its parent waits for
    init to reap it, and some inits (in containers) take seconds to do so.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, but not ours to signal
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """Whether ``/proc`` shows a group member that is not a zombie; True if it cannot tell."""
    try:
        entries = os.listdir("/proc") if os.path.exists("/proc/self/stat") else None
    except OSError:
        entries = None
    if entries is None:  # no Linux /proc: believe killpg
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold anything, so split after its ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


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
