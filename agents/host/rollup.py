"""``[testrollup]``: an itemized test's summary script, run after each of its items ends.

When an item of a test ends, Megatest's ``megatest -execute`` (the process
that ran it, on the test's host) summarizes the test (launch.scm:806-807,
``tests:summarize-items``, tests.scm:497-540): in the test's toplevel
directory, under the lock ``megatest-rollup-<test>.html.lock``, it runs the
``[testrollup] <test>`` command of megatest.config with its output in
``megatest-rollup-<test>.html``. So does the agent that ran the item, right
after reporting the item's end, with the item's environment.

Differences: Megatest starts the script in the background (``&``) and does
not wait; here it is waited for, up to :data:`ROLLUP_TIMEOUT` seconds (then
its process group is killed), so that no process outlives the agent's work
on the test. Without ``[testrollup]``, Megatest writes an HTML table of the
items instead; mtpkt writes none (``mtpkt tests`` and the live view show the
items).
"""

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Final

from mtpkt.agents.area.job import TestJob
from mtpkt.agents.host import guard
from mtpkt.store.files import lock_file

__all__ = ["LOCK_WAIT", "ROLLUP_TIMEOUT", "after_item", "output_name"]

_log = logging.getLogger(__name__)

ROLLUP_TIMEOUT: Final = 300.0
"""Seconds a ``[testrollup]`` script may run before its process group is killed."""
LOCK_WAIT: Final = 60.0
"""Seconds to wait for another item's summary to finish before giving this one up."""
_POLL: Final = 0.1


def output_name(test: str) -> str:
    """The summary file in the test's toplevel directory (tests.scm:501)."""
    return f"megatest-rollup-{test}.html"


def after_item(job: TestJob) -> None:
    """Run the job's ``[testrollup]`` script if it is an item of a test that has one.

    Never raises: a summary that cannot be made is logged, and the test's outcome
    stands.
    """
    if not job.rollup or not job.ref.item:
        return
    top = job.test_dir
    name = output_name(job.ref.test)
    try:
        fd = _lock(top / f"{name}.lock")
    except OSError as exc:
        _log.warning("%s: cannot lock the summary %s: %s", job.ref, top / name, exc)
        return
    if fd is None:
        _log.warning("%s: summary %s still locked after %gs, not made", job.ref, name, LOCK_WAIT)
        return
    try:
        _run(job, f"{job.rollup} > {name}")
    finally:
        os.close(fd)


def _lock(path: Path) -> int | None:
    deadline = time.monotonic() + LOCK_WAIT
    while (fd := lock_file(path)) is None:
        if time.monotonic() >= deadline:
            return None
        time.sleep(_POLL)
    return fd


def _run(job: TestJob, command: str) -> None:
    env = {**job.env, guard.VARIABLE: guard.ready()}
    try:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=job.test_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a group of its own: killed whole on timeout
        )
    except OSError as exc:
        _log.warning("%s: [testrollup] %r could not start: %s", job.ref, job.rollup, exc)
        return
    guard.watch(process.pid)
    try:
        process.wait(ROLLUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        what = f"{job.ref}: [testrollup] {job.rollup!r}"
        _log.warning("%s still running after %gs: killed", what, ROLLUP_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever it left behind in its group
        process.wait()
        guard.release(process.pid)
    if process.returncode:
        _log.warning("%s: [testrollup] %r exited with %d", job.ref, job.rollup, process.returncode)
