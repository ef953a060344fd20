"""Steps die with the process that runs them, grandchildren included, however it dies.

Every process that runs steps (an agent, or a test driving the runner) starts one guard: a
small Python process, this file run as a script (standard library only),
that reads from a pipe the process groups of the steps running now. When
the runner ends in any way, ``kill -9`` included, the kernel closes the
pipe's write end; the guard sees the end of its input, sends SIGKILL to
every group still registered, then to every process whose environment holds
the runner's mark (:data:`VARIABLE`, set in every step's environment), and
exits. The mark also finds a step whose group was not yet registered when
the runner died, and processes that left their step's group with ``setsid``.

This replaces ``PR_SET_PDEATHSIG``, which kills only a step's top process
(``sh → sleep`` children live on) and must be set in the child between fork
and exec: in Python that means a full ``fork`` of the runner, or starting
every step through util-linux's ``setpriv``, each about 1 ms of CPU more per
step than the plain ``vfork`` and exec of ``bash`` this allows.

Limits: a guard that is itself killed is started again at the next step
(told every group registered so far), but a runner that dies before then
leaves its steps running; a process that both leaves its step's group and
clears its environment is not found.

Argument of the script: the mark. Input: lines ``+<pgid>`` (watch) and
``-<pgid>`` (released); anything else is ignored.
"""

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from typing import BinaryIO, Final

__all__ = ["VARIABLE", "Guard", "ready", "release", "shutdown", "watch"]

_log = logging.getLogger(__name__)

VARIABLE: Final = "MTPKT_GUARD"
"""The environment variable that marks a step's processes with their runner's guard."""
SCAN_ROUNDS: Final = 5
"""Times the guard looks for marked processes after killing, for those forked meanwhile."""
CLOSE_WAIT: Final = 5.0
"""Seconds :meth:`Guard.close` waits for the guard process to exit."""


class Guard:
    """The runner's side of a guard process.

    Start each step with ``{VARIABLE: guard.ready()}`` in its environment, then
    :meth:`watch` its group, and :meth:`release` it once none of it runs.
    Thread-safe. A guard that died is started again (and told every group
    still watched) at the next call.
    """

    def __init__(self) -> None:
        self.mark = f"{os.getpid()}-{secrets.token_hex(8)}"
        """The value of :data:`VARIABLE` in the environment of this runner's steps."""
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._groups: set[int] = set()
        self._warned = False

    @property
    def pid(self) -> int | None:
        """The guard process's pid; None if none was started or it was closed."""
        with self._lock:
            return None if self._process is None else self._process.pid

    def ready(self) -> str:
        """Start the guard process unless it runs; the mark to put in a step's environment."""
        with self._lock:
            self._send(b"")
        return self.mark

    def watch(self, pgid: int) -> None:
        """Have process group ``pgid`` killed should this process die before :meth:`release`."""
        with self._lock:
            self._groups.add(pgid)
            self._send(b"+%d\n" % pgid)

    def release(self, pgid: int) -> None:
        """Forget group ``pgid``: it is gone (call this only once none of it runs)."""
        with self._lock:
            self._groups.discard(pgid)
            if self._process is not None:
                self._send(b"-%d\n" % pgid)

    def close(self) -> None:
        """Stop the guard process; groups still watched are killed by it, as if this died."""
        with self._lock:
            process, self._process = self._process, None
            self._groups.clear()
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(CLOSE_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _send(self, line: bytes) -> None:
        """Write one line to a live guard, starting one (told every group) if needed (lock held)."""
        process = self._process
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            try:
                if line:
                    process.stdin.write(line)
                return
            except OSError:
                pass  # it died since: start another, told everything
        if process is not None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
            process.wait()
            _log.warning(
                "the guard of this process's steps (pid %d) died; starting another", process.pid
            )
        self._process = None
        try:
            process = _start(self.mark)
            assert process.stdin is not None
            process.stdin.write(b"".join(b"+%d\n" % pgid for pgid in sorted(self._groups)))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                _log.error(
                    "cannot start the guard of this process's steps (%s): steps will not be"
                    " killed should this process die",
                    exc,
                )
            return
        self._process = process
        self._warned = False


def _start(mark: str) -> "subprocess.Popen[bytes]":
    # -I -S: no environment, no site packages, not even this file's directory on sys.path.
    return subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__), mark],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        bufsize=0,
        cwd="/",  # holds no run directory
        start_new_session=True,  # signals sent to the runner's group do not reach it
    )


_GUARD = Guard()


def ready() -> str:
    """:meth:`Guard.ready` of this process's guard."""
    return _GUARD.ready()


def watch(pgid: int) -> None:
    """:meth:`Guard.watch` of this process's guard."""
    _GUARD.watch(pgid)


def release(pgid: int) -> None:
    """:meth:`Guard.release` of this process's guard."""
    _GUARD.release(pgid)


def shutdown() -> None:
    """:meth:`Guard.close` of this process's guard (a later :func:`watch` starts another)."""
    _GUARD.close()


# The guard process


def _serve(lines: BinaryIO) -> set[int]:
    """Read watch and release lines until the end of input; the groups left watched."""
    groups: set[int] = set()
    for line in lines:
        sign, number = line[:1], line[1:].strip()
        if not number.isdigit():
            continue
        pgid = int(number)
        if sign == b"+" and pgid > 1:
            groups.add(pgid)
        elif sign == b"-":
            groups.discard(pgid)
    return groups


def marked(mark: str) -> list[int]:
    """Processes whose environment holds ``VARIABLE=mark`` (none where there is no /proc)."""
    needle = f"{VARIABLE}={mark}".encode()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                environ = file.read()
        except OSError:
            continue  # gone, or not ours
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def main() -> None:
    """Run as the guard: wait for the runner's end, then kill what its steps left."""
    # The runner's end is the only way out: its terminal's Ctrl-C or a SIGTERM for its
    # whole service must not end the guard before the runner.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    mark = sys.argv[1]
    for pgid in _serve(sys.stdin.buffer):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for _ in range(SCAN_ROUNDS):
        pids = [pid for pid in marked(mark) if pid != os.getpid()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
