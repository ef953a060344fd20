"""A test instance's step logs on disk, as ``mtpkt log`` finds, lists and follows them.

A step's output is ``<rundir>/<step>.log`` (:mod:`agents.host.runner`), and the
store keeps both halves: the run directory in the test's record
(``tests.rundir``, with the host that ran it) and each step's log file,
relative to it, in its step packets. Nothing here needs the home: any host
that sees the run tree (a shared disk) reads the files themselves. Every
failure is a :class:`~tools.errors.CliError` of one line.
"""

import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import attrs

from mtpkt.pkts import StepState
from mtpkt.pkts.text import display_name
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import names

if TYPE_CHECKING:  # imported for real by the callers: `mtpkt --help` stays quick
    from mtpkt.pkts.status import Step
    from mtpkt.store.query import RunResults
    from mtpkt.store.rows import TestRow

__all__ = [
    "CHUNK",
    "Instance",
    "copy_from",
    "follow",
    "instance_of",
    "log_path",
    "print_log",
    "step_lines",
    "step_of",
]

CHUNK: Final = 1 << 16
"""Bytes read and written at a time: a log is streamed, never read whole."""


@attrs.frozen
class Instance:
    """One test instance of a run: its record and the steps of its last attempt."""

    row: "TestRow"
    steps: "tuple[Step, ...]"

    @property
    def name(self) -> str:
        """``test/item``, or ``test``."""
        return display_name(self.row.testname, self.row.item_path)


def instance_of(results: "RunResults", run: str, wanted: str) -> Instance:
    """The instance ``wanted`` (``TEST`` or ``TEST/ITEM``) of the run named ``run``.

    Raises:
        CliError: no such test or item (``ERROR``, naming those there are); a test with
            items named without one (``USAGE``, naming its items).
    """
    test, _, item = wanted.partition("/")
    rows = [row for row in results.tests if row.testname == test]
    if not rows:
        there = names(row.testname for row in results.tests) or "none yet"
        raise CliError(f"run {run} has no test {test!r} (its tests: {there})")
    items = [row.item_path for row in rows if row.item_path]
    if not item and items:
        raise CliError(
            f"test {test} has items: name one as {test}/ITEM (its items: {names(items)})",
            ExitCode.USAGE,
        )
    found = [row for row in rows if row.item_path == item]
    if not found:
        raise CliError(f"test {test} of run {run} has no item {item!r} (its items: {names(items)})")
    row = found[0]
    return Instance(row, tuple(results.steps.get((row.testname, row.item_path), ())))


def step_of(instance: Instance, name: str) -> "Step":
    """The step ``name`` of the instance's last attempt.

    Raises:
        CliError: it has no such step (yet), naming the steps it has.
    """
    for step in instance.steps:
        if step.step == name:
            return step
    there = names(step.step for step in instance.steps) or "none has started"
    raise CliError(f"{instance.name} has no step {name!r} (its steps: {there})")


def log_path(instance: Instance, logfile: str) -> Path:
    """Where ``logfile`` (relative to the run directory) is, checked to be readable here.

    Raises:
        CliError: the test has no run directory yet, the run directory is not visible from
            this host (naming the host that ran the test and the path), or the log is not
            in it.
    """
    row = instance.row
    if not row.rundir:
        raise CliError(f"{instance.name} has no run directory yet ({row.state}): no logs")
    rundir = Path(row.rundir)
    path = rundir / logfile
    if not rundir.is_dir():
        ran = f"it ran on {row.host}" if row.host else "no host has run it"
        raise CliError(
            f"the log of {instance.name} is not visible from {socket.gethostname()}: {path}"
            f" ({ran}; its run directory is not there from here)"
        )
    if not path.is_file():
        why = "the test was archived" if row.archived else "not written, or removed since"
        raise CliError(f"no log {path} ({why})")
    return path


def copy_from(stream: BinaryIO, out: BinaryIO) -> int:
    """Copy what ``stream`` holds from where it stands to its end; the bytes copied."""
    copied = 0
    while chunk := stream.read(CHUNK):
        out.write(chunk)
        copied += len(chunk)
    out.flush()
    return copied


def print_log(path: Path, out: BinaryIO) -> None:
    """Copy the whole log at ``path`` to ``out``.

    Raises:
        CliError: it cannot be read.
    """
    try:
        with path.open("rb") as stream:
            copy_from(stream, out)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def follow(
    path: Path,
    out: BinaryIO,
    ended: Callable[[], bool],
    *,
    poll: float = 0.5,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Copy ``path`` to ``out``, then what is added to it, until ``ended()`` says the test
    has ended (what the log holds then is copied too) or ``deadline`` (of ``clock``) passes.

    A log written anew (a rerun truncates it) is copied again from its start.

    Returns:
        Whether the test ended (False: the deadline passed first).

    Raises:
        CliError: the log cannot be read.
    """
    try:
        with path.open("rb") as stream:
            while True:
                done = ended()  # before the copy: nothing written before the end is missed
                if os.fstat(stream.fileno()).st_size < stream.tell():
                    stream.seek(0)
                copy_from(stream, out)
                if done:
                    return True
                if deadline is not None and clock() >= deadline:
                    return False
                time.sleep(poll)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def step_lines(instance: Instance) -> Sequence[tuple[str, str, str]]:
    """(step, how it stands, its log relative to the run directory) for each step."""
    lines = []
    for step in instance.steps:
        how = step.status.value if step.state is StepState.END else "running"
        lines.append((step.step, how, step.logfile or f"{step.step}.log"))
    return lines
