"""Stopping a step's whole process group, and knowing when it is gone.

A step runs in a process group of its own (``start_new_session``); stopping
it means stopping the group (SIGTERM, a grace period, then SIGKILL), not just
the ``bash`` at its top: killing only the job process leaves ``sh → sleep``
children behind (salt #26490, celery #1106). Used by
:mod:`~mtpkt.agents.host.runner`.
"""

import contextlib
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["GONE_POLL", "KILL_WAIT", "exit_signal", "group_alive", "stop_group"]

GONE_POLL = 0.02
"""Seconds between looks at a process group that was told to stop."""
KILL_WAIT = 5.0
"""Seconds to wait for a process group to vanish after SIGKILL before giving up on it."""

_log = logging.getLogger(__name__)


def stop_group(process: subprocess.Popen[bytes], grace: float, what: str) -> str:
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
def exit_signal(
    process: subprocess.Popen[bytes], kick: int | None = None
) -> Iterator[tuple[Callable[[float], bool], bool]]:
    """A function that waits up to its argument's seconds for ``process`` to exit (and reaps it),
    and whether ``kick`` wakes it.

    Through a pidfd where Linux has them, woken the moment the process exits, or
    (returning False) the moment ``kick`` (an eventfd) is written to; else through
    :meth:`subprocess.Popen.wait`, which polls at growing intervals (a step that
    ends within 3 ms may be noticed 4 ms later), and ``kick`` is not looked at
    (no pidfd: a kernel before 5.3, a seccomp rule, no descriptor left).
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or it was reaped already
        pidfd = None

    def ended(timeout: float) -> bool:
        if pidfd is not None:
            watched = [pidfd] if kick is None else [pidfd, kick]
            ready = select.select(watched, [], [], timeout)[0]
            if kick is not None and kick in ready:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(kick)
            if pidfd not in ready:
                return False
            process.wait()
            return True
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    try:
        yield ended, pidfd is not None and kick is not None
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_gone(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the whole group to be gone; whether it is."""
    deadline = time.monotonic() + timeout
    while True:
        # Reap the leader first: as a zombie it would keep the group alive. Wait for that
        # even if /proc already shows it dying, so that its exit status is known.
        if process.poll() is not None and not group_alive(process.pid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(GONE_POLL, remaining))


def group_alive(pgid: int) -> bool:
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
