"""The guard process: it kills the step groups its runner leaves, and only those."""

import contextlib
import io
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.agents.host.guard import VARIABLE, Guard, _serve
from tests.support.procs import processes_with, wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def guard() -> Iterator[Guard]:
    value = Guard()
    yield value
    value.close()


@pytest.fixture
def sleepers() -> Iterator[list["subprocess.Popen[bytes]"]]:
    """Long sleeps in process groups of their own, as steps run; none outlives the test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def sleeper(
    started: list["subprocess.Popen[bytes]"], env: dict[str, str] | None = None
) -> "subprocess.Popen[bytes]":
    """A step-like group: a shell with a sleeping child."""
    token = f"3002.{secrets.randbelow(10**9):09d}"
    process = subprocess.Popen(
        ["bash", "-c", f"sleep {token}; true"],
        start_new_session=True,
        env=None if env is None else {**os.environ, **env},
    )
    started.append(process)
    assert wait_for(lambda: len(processes_with(token)) == 2)
    return process


def ignores(pid: int, signum: signal.Signals) -> bool:
    """Whether process ``pid`` ignores ``signum`` (from its /proc status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def gone(process: "subprocess.Popen[bytes]") -> bool:
    """Whether the group led by ``process`` has no live member (its leader reaped)."""
    if process.poll() is None:
        return False
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_closing_kills_the_groups_still_watched(
    guard: Guard, sleepers: list["subprocess.Popen[bytes]"]
) -> None:
    watched, released = sleeper(sleepers), sleeper(sleepers)
    guard.watch(watched.pid)
    guard.watch(released.pid)
    guard.release(released.pid)

    guard.close()

    assert wait_for(lambda: gone(watched), timeout=5.0)
    assert released.poll() is None


def test_closing_kills_the_processes_marked_with_its_mark(
    guard: Guard, sleepers: list["subprocess.Popen[bytes]"]
) -> None:
    # Never watched: a step whose runner died before it registered the group, or that
    # left its group. The mark in its environment finds it.
    marked = sleeper(sleepers, {VARIABLE: guard.ready()})
    other = sleeper(sleepers, {VARIABLE: Guard().mark})

    guard.close()

    assert wait_for(lambda: gone(marked), timeout=5.0)
    assert other.poll() is None


def test_a_killed_guard_is_started_again_and_told_every_group(
    guard: Guard, sleepers: list["subprocess.Popen[bytes]"]
) -> None:
    first = sleeper(sleepers)
    guard.watch(first.pid)
    old = guard.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: not processes_with(f"{old}") or guard.pid != old, timeout=5.0)

    second = sleeper(sleepers)
    guard.watch(second.pid)
    assert guard.pid not in (None, old)

    guard.close()
    assert wait_for(lambda: gone(first) and gone(second), timeout=5.0)


def test_the_guard_outlives_signals_meant_for_its_runner(
    guard: Guard, sleepers: list["subprocess.Popen[bytes]"]
) -> None:
    step = sleeper(sleepers)
    guard.watch(step.pid)
    pid = guard.pid
    assert pid is not None
    assert wait_for(lambda: ignores(pid, signal.SIGHUP))  # the guard has started up
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(pid, signum)

    guard.watch(step.pid)  # a write: a dead guard would be replaced here
    assert guard.pid == pid
    guard.close()
    assert wait_for(lambda: gone(step), timeout=5.0)


def test_the_guard_reads_only_well_formed_lines() -> None:
    lines = b"+100\n+200\n-100\n+1\n+0\nhello\n+-5\n+300\r\n*400\n+\n"

    assert _serve(io.BytesIO(lines)) == {200, 300}


def test_close_without_a_guard_does_nothing() -> None:
    guard = Guard()
    guard.release(12345)  # nothing started for a release alone
    guard.close()
    assert guard.pid is None
