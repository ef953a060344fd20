"""What ``mtpkt report`` reports of a run: the store's records of it (steps, test data, the
test's main log), and the end of each step's log read from the test's run directory while
that is still on disk.

:func:`read_suite` gathers both into the plain records of :mod:`tools.junit`.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mtpkt.tools.itemized import Itemized
from mtpkt.tools.junit import Case, StepRun, Suite

if TYPE_CHECKING:  # imported for real by the caller: `mtpkt --help` stays quick
    from mtpkt.pkts.status import Step
    from mtpkt.store.query import StoreQuery
    from mtpkt.store.rows import RunRow, TestDataRow, TestRow

__all__ = ["LOG_BYTES", "LOG_LINES", "log_tail", "read_suite"]

LOG_LINES: Final = 50
"""Lines of each step's log shown in a testcase's system-out."""
LOG_BYTES: Final = 64 * 1024
"""Bytes read from the end of a log at most (a log of very long lines shows fewer lines)."""


def read_suite(area: Path, query: "StoreQuery", run: "RunRow") -> Suite:
    """The run as the report shows it: each test instance (a test without items, or each
    item of an itemized test, whose toplevel record only sums up the items) with the steps
    of its last attempt and the end of their logs, its test data and its main log.

    Args:
        area: the area (run directories recorded as relative paths are under it).

    Raises:
        StoreError: the run has no database, or it cannot be read.
    """
    results = query.results(run)
    itemized = Itemized.of((row.testname, row.item_path) for row in results.tests)
    cases = tuple(
        _case(
            area,
            row,
            results.steps.get((row.testname, row.item_path), ()),
            results.data.get((row.testname, row.item_path), ()),
        )
        for row in results.tests
        if itemized.counts(row.testname, row.item_path)
    )
    return Suite(run=run, cases=cases)


def _case(
    area: Path, row: "TestRow", steps: "tuple[Step, ...]", data: "tuple[TestDataRow, ...]"
) -> Case:
    rundir = area / row.rundir if row.rundir else None  # an absolute rundir stays as it is
    if rundir is None or not rundir.is_dir():
        runs = tuple(StepRun(packet=step) for step in steps)
        return Case(row=row, rundir=rundir, steps=runs, data=data)
    runs = tuple(
        StepRun(packet=step, log=tuple(_log_lines(rundir, step.logfile))) for step in steps
    )
    log = rundir / row.final_logf if row.final_logf else None
    attached = log if log is not None and not _problem(rundir, row.final_logf) else None
    return Case(row=row, rundir=rundir, on_disk=True, steps=runs, data=data, log=attached)


def log_tail(path: Path, lines: int = LOG_LINES) -> tuple[list[str], bool]:
    """The last ``lines`` lines of a log, read from its end, and whether it holds more.

    At most :data:`LOG_BYTES` are read; bytes that are not UTF-8 show as U+FFFD.

    Raises:
        OSError: it cannot be read.
    """
    with path.open("rb") as log:
        size = log.seek(0, os.SEEK_END)
        start = max(0, size - LOG_BYTES)
        log.seek(start)
        data = log.read(LOG_BYTES)
    found = data.decode("utf-8", errors="replace").split("\n")
    if found and not found[-1]:
        found.pop()  # the newline that ends the last line
    if start > 0 and found:
        found.pop(0)  # cut in the middle
    return [line.rstrip("\r") for line in found[-lines:]], start > 0 or len(found) > lines


def _problem(rundir: Path, logfile: str) -> str:
    """Why a log of the run directory is not shown (``""``: it can be)."""
    path = rundir / logfile
    try:
        inside = path.resolve().is_relative_to(rundir.resolve())
    except (OSError, RuntimeError):  # a link loop
        inside = False
    if not inside:
        return f"log {logfile} is outside the run directory: not read"
    if not path.exists():
        return f"log {logfile} is not on disk"
    if not path.is_file():
        return f"log {logfile} is not a regular file: not read"
    return ""


def _log_lines(rundir: Path, logfile: str) -> list[str]:
    """A step's log section of system-out: its last lines, or why they are not shown."""
    if not logfile:
        return []
    problem = _problem(rundir, logfile)
    if problem:
        return [f"  ({problem})"]
    path = rundir / logfile
    try:
        tail, more = log_tail(path)
    except OSError as exc:
        return [f"  (log {logfile} cannot be read: {exc.strerror or exc})"]
    if not tail:
        return [f"  (log {logfile} is empty)"]
    what = f"last {len(tail)} lines of {logfile}" if more else logfile
    return [f"--- {what} ---", *tail, f"--- end of {logfile} ---"]
