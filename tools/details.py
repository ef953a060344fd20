"""A test instance's details as the views show them: its steps, its test data and its log.

``mtpkt tests --steps/--data`` and ``mtpkt report`` (``--json``, ``--junit``)
show the same things the same way: a step as its newest packet of the last
attempt (:func:`mtpkt.store.query.last_attempts`), a row of test data as the
store keeps it (:class:`~mtpkt.store.rows.TestDataRow`: numbers as numbers).
"""

from typing import TYPE_CHECKING

import attrs

from mtpkt.pkts import StepState
from mtpkt.pkts.testdata import parse_number
from mtpkt.pkts.text import one_line

if TYPE_CHECKING:  # imported for real by the callers: `mtpkt --help` stays quick
    from rich.console import Console
    from rich.table import Table

    from mtpkt.pkts.status import Step
    from mtpkt.store.query import RunResults
    from mtpkt.store.rows import TestDataRow, TestRow

__all__ = [
    "Details",
    "data_line",
    "data_record",
    "data_table",
    "data_words",
    "step_record",
    "steps_table",
    "value_text",
]


def value_text(value: float | str | None) -> str:
    """A test data value as text: ``10`` for 10.0, ``1.25``, the text as it is, ``""`` for
    none."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def step_record(step: "Step") -> dict[str, object]:
    """A step as a JSON object: ``name``, ``state`` (``start`` while it runs, ``end``),
    ``status``, ``exit_code``, ``duration`` (seconds), ``logfile`` (relative to the run
    directory) and ``comment``."""
    return {
        "name": step.step,
        "state": step.state.value,
        "status": step.status.value,
        "exit_code": step.exit_code,
        "duration": step.duration,
        "logfile": step.logfile,
        "comment": step.comment,
    }


def data_record(row: "TestDataRow") -> dict[str, object]:
    """A row of test data as a JSON object: ``category``, ``variable``, ``value``,
    ``expected``, ``tol`` (numbers as numbers, text as text, null when none), ``units``,
    ``comment``, ``status`` and ``type``."""
    return {
        "category": row.category,
        "variable": row.variable,
        "value": row.value,
        "expected": row.expected,
        "tol": row.tol,
        "units": row.units,
        "comment": row.comment,
        "status": row.status,
        "type": row.type,
    }


def data_line(row: "TestDataRow") -> str:
    """``data perf/cpu = 1.2 s pass (expected 1 ± 0.5)``: a row in one line."""
    value, expected, tol = (value_text(v) for v in (row.value, row.expected, row.tol))
    status = "" if row.status == "n/a" else row.status
    return data_words(row.category, row.variable, value, expected, tol, row.units, status,
                      row.comment)  # fmt: skip


def data_words(
    category: str,
    variable: str,
    value: str,
    expected: str,
    tol: str,
    units: str,
    status: str,
    comment: str,
) -> str:
    """A row of test data in one line, from its cells as text (see :func:`data_line`)."""
    line = f"data {category}/{variable} = {value or '(none)'}"
    line += f" {units}" if units else ""
    line += f" {status}" if status else ""
    if expected and parse_number(tol) is not None:
        line += f" (expected {expected} ± {tol.strip()})"
    elif expected and tol:
        line += f" (expected {tol} {expected})"
    elif expected:
        line += f" (expected {expected})"
    line += f": {comment}" if comment else ""
    return one_line(line)


def steps_table(steps: "tuple[Step, ...]") -> "Table":
    """A test instance's steps: name, status, exit code, time, log and comment."""
    from mtpkt.tools.colours import styled
    from mtpkt.tools.tables import cell, table

    grid = table()
    for name in ("step", "status", "exit", "time", "log"):
        grid.add_column(name, no_wrap=True, overflow="ellipsis")
    grid.add_column("comment")
    for step in steps:
        ended = step.state is StepState.END
        grid.add_row(
            step.step,
            styled(step.status.value) if ended else "running",
            "" if step.exit_code is None else str(step.exit_code),
            "" if step.duration is None else f"{step.duration:.1f}s",
            step.logfile,
            cell(step.comment),
        )
    return grid


def data_table(rows: "tuple[TestDataRow, ...]") -> "Table":
    """A test instance's data: category/variable, value, expected, tol, units, status,
    comment."""
    from mtpkt.tools.colours import styled
    from mtpkt.tools.tables import cell, table

    grid = table()
    grid.add_column("category/variable", overflow="fold")
    for name in ("value", "expected", "tol", "units"):
        grid.add_column(name, no_wrap=True, overflow="ellipsis")
    grid.add_column("status", no_wrap=True)
    grid.add_column("comment")
    for row in rows:
        grid.add_row(
            f"{row.category}/{row.variable}",
            *(cell(value_text(v)) for v in (row.value, row.expected, row.tol)),
            cell(row.units),
            styled(row.status.upper()) if row.status in ("pass", "fail") else cell(row.status),
            cell(row.comment),
        )
    return grid


@attrs.frozen
class Details:
    """The steps and data of a run's records, as ``mtpkt tests --steps/--data`` shows them."""

    results: "RunResults"
    steps: bool = False
    data: bool = False

    def record(self, row: "TestRow") -> dict[str, object]:
        """The ``steps`` and ``data`` lists of a record's JSON object (those asked for)."""
        key = (row.testname, row.item_path)
        found: dict[str, object] = {}
        if self.steps:
            found["steps"] = [step_record(step) for step in self.results.steps.get(key, ())]
        if self.data:
            found["data"] = [data_record(data) for data in self.results.data.get(key, ())]
        return found

    def show(self, out: "Console", rows: "list[TestRow]") -> None:
        """Print, for each of ``rows`` that has any, a heading and its steps and data."""
        from rich.text import Text

        from mtpkt.pkts.text import display_name, end_label
        from mtpkt.tools.colours import styled

        for row in rows:
            key = (row.testname, row.item_path)
            steps = self.results.steps.get(key, ()) if self.steps else ()
            data = self.results.data.get(key, ()) if self.data else ()
            if not (steps or data or row.final_logf):
                continue
            heading = Text(f"\n{display_name(*key)}  ", style="bold")
            heading.append_text(styled(end_label(row.state, row.status)))
            if row.final_logf:
                heading.append(f"  log {row.final_logf}", style="dim")
            out.print(heading)
            if steps:
                out.print(steps_table(steps))
            if data:
                out.print(data_table(data))
