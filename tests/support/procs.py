"""Helpers for tests that start processes: find them through /proc, wait for a condition,
read a line a process prints, pick a free port for it to listen on."""

import selectors
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["free_port", "processes_with", "read_line", "stop_process", "wait_for", "wait_until"]


def processes_with(token: str, program: str = "") -> list[int]:
    """Live processes whose command line holds ``token`` (and, if given, that run ``program``:
    their first argument ends with it).

    Zombies have an empty command line, so they are not found: they are dead.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        if any(token.encode() in arg for arg in argv) and argv[0].endswith(program.encode()):
            found.append(int(entry.name))
    return found


def wait_for(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds pass; whether it was.

    For ``assert wait_for(…), what_to_show`` where the failure wants its own message.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def wait_until(
    check: Callable[[], object], timeout: float = 10.0, what: str = "", interval: float = 0.02
) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds.

    Raises:
        AssertionError: naming ``what`` (or ``check``) was waited for.
    """
    if not wait_for(check, timeout, interval):
        raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")


def stop_process(process: "subprocess.Popen[str] | subprocess.Popen[bytes]") -> int:
    """Kill ``process`` if it still runs, reap it and close its pipes; its exit status.

    For the end of a test, whatever state it left the process in (a stopped one too:
    SIGKILL ends it).
    """
    if process.poll() is None:
        process.kill()
    status = process.wait(timeout=10)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return status


def free_port() -> int:
    """A tcp port on 127.0.0.1 that is free now (for a process that must listen on a fixed
    port, e.g. to be restarted on the same address)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_line(source: "IO[str] | subprocess.Popen[str]", needle: str, timeout: float) -> str:
    """The first line holding ``needle`` that ``source`` (a stream, or a process: its stdout)
    gives within ``timeout`` seconds.

    Raises:
        AssertionError: the stream ended, or the time passed, first; with the lines read.
    """
    stream = source.stdout if isinstance(source, subprocess.Popen) else source
    assert stream is not None, "the process's stdout is not a pipe"
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.2):
                continue
            line = stream.readline()
            if not line:  # end of the stream: the process closed it or ended
                break
            seen.append(line)
            if needle in line:
                return line
    finally:
        selector.close()
    raise AssertionError(f"no line with {needle!r} within {timeout}s; got {seen!r}")
