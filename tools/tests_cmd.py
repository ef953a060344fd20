"""``mtpkt tests``: the test records of one run, from the area's databases (read-only).

Each record: test, item path, state, status, host (for a test run in a
batch job, the job: slurm:4711), run duration, comment and run directory;
an itemized test has a toplevel record (item path empty) that rolls up its
items. The table starts with a summary line and shows at
most --limit records (it says how many it left out); --json prints all of
them as one JSON list of objects with the fields "test", "item", "state",
"status", "host", "run_duration" (seconds), "comment", "rundir", "attemptnum",
"event_time" (the sender's clock), "last_update" (the home's clock),
"archived", "logfile" (the test's main log, megatest -setlog or a logpro
.html, relative to its run directory) and "job" (the batch job it ran in
last, "slurm:4711", or ""). Works whether the home runs or not.

--defined lists instead the tests the area defines, before any run exists (items, waiton,
priority, tags, description; --json for scripts).

--steps and --data add, for each record shown, the steps of its last attempt
(status, exit code, time, log, comment) and its test data (category/variable,
value, expected, tol, units, status, comment), as tables after the list, or
as "steps" and "data" lists in each --json object (the fields of mtpkt report
--json). An itemized test's toplevel record has neither: its items have them.

examples:
  mtpkt tests -t ubuntu/x86_64 -r nightly
  mtpkt tests -t ubuntu/x86_64 -r nightly --status FAIL,ABORT --limit 0
  mtpkt tests -t ubuntu/x86_64 -r nightly --testpatt 'unit/%' --state RUNNING
  mtpkt tests -t ubuntu/x86_64 -r nightly --json > nightly.json
  mtpkt tests -t ubuntu/x86_64 -r nightly --testpatt runfirst --steps --data
  mtpkt tests --defined --testpatt 'unit/%'
"""

import argparse
import collections
from typing import TYPE_CHECKING, Any, Final

from mtpkt.pkts.text import display_name, end_label
from mtpkt.tools.area_tests import DEFINED_HELP, list_defined
from mtpkt.tools.colours import styled
from mtpkt.tools.details import Details
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import find_run, open_query
from mtpkt.tools.options import (
    STATES,
    STATUSES,
    add_testpatt,
    query_parser,
    run_options,
    whole_number,
)
from mtpkt.tools.tables import cell, console, outcomes, print_json, table, writing

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from rich.table import Table
    from rich.text import Text

    from mtpkt.store.rows import RunRow, TestRow

__all__ = ["DEFAULT_LIMIT", "add_parser", "record", "run"]

DEFAULT_LIMIT: Final = 50
"""Records the table shows unless --limit says otherwise."""
WIDE: Final = 120
"""Columns from which the table also shows each record's run directory."""


_limit: Final = whole_number("a number of records", 0, "give 0 (all) or more")


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt tests``."""
    parser = query_parser(
        commands,
        "tests",
        "list a run's test records: state, status, host, time, comment",
        __doc__,
    )
    which = parser.add_argument_group("which tests")
    run_options(which, required=True)
    for action in which._group_actions:  # required unless --defined: run() checks
        action.required = False
    add_testpatt(which)
    which.add_argument("--defined", action="store_true", help=DEFINED_HELP)
    which.add_argument(
        "--state",
        type=STATES,
        default=(),
        metavar="S",
        help="only records in one of these states, comma-separated (e.g. RUNNING,KILLED)",
    )
    which.add_argument(
        "--status",
        type=STATUSES,
        default=(),
        metavar="S",
        help="only records with one of these statuses, comma-separated (e.g. FAIL,ABORT)",
    )
    parser.add_argument(
        "--steps",
        action="store_true",
        help="also show each record's steps (last attempt) with their comments and logs",
    )
    parser.add_argument(
        "--data", action="store_true", help="also show each record's test data and verdicts"
    )
    parser.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"records the table shows, 0 for all (default: {DEFAULT_LIMIT}; --json shows all)",
    )
    parser.set_defaults(run=run)


def record(row: "TestRow") -> dict[str, object]:
    """A test record as a JSON object (the fields listed in ``mtpkt tests --help``)."""
    return {
        "test": row.testname,
        "item": row.item_path,
        "state": row.state,
        "status": row.status,
        "host": row.host,
        "run_duration": row.run_duration,
        "comment": row.comment,
        "rundir": row.rundir,
        "attemptnum": row.attemptnum,
        "event_time": row.event_time,
        "last_update": row.last_update,
        "archived": bool(row.archived),
        "logfile": row.final_logf,
        "job": row.job,
    }


def _duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``3m04s``, ``2h05m``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _summary(run: "RunRow", rows: "list[TestRow]", patt: str) -> "Text":
    from rich.text import Text

    from mtpkt.store.query import most_first, standing

    counts = collections.Counter(standing(row.state, row.status) for row in rows)
    what = f"run {run.target} {run.runname} (id {run.id})"
    if patt != "%":
        what += f" {patt}"
    noun = "record" if len(rows) == 1 else "records"
    line = Text(f"{what}: {len(rows):,} {noun}")
    if counts:
        line.append(": ")
        line.append_text(outcomes(most_first(counts)))
    return line


def _table(rows: "list[TestRow]", wide: bool) -> "Table":
    from rich.text import Text

    grid = table()
    grid.add_column("test", overflow="fold")
    grid.add_column("state", no_wrap=True)
    grid.add_column("host", overflow="ellipsis", no_wrap=True, max_width=12)
    grid.add_column("time", justify="right", no_wrap=True)
    grid.add_column("comment")  # one line, narrowed before the names are
    if wide:
        grid.add_column("rundir", overflow="fold")
    for row in rows:
        name = display_name(row.testname, row.item_path)
        cells: list[str | Text] = [
            name,
            styled(end_label(row.state, row.status)),
            row.job or row.host,
            _duration(row.run_duration) if row.run_duration else "",
            cell(row.comment),
        ]
        grid.add_row(*cells, *([row.rundir] if wide else []))
    return grid


def run(args: argparse.Namespace) -> int:
    """List the selected records of one run."""
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.store import StoreError

    if args.defined or not (args.target and args.runname):
        return list_defined(args)  # or the line on what to give
    try:
        patt = TestPatt.parse(args.testpatt)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    results = None
    with open_query(args.area) as query:
        run_row = find_run(query, args.target, args.runname)
        try:
            rows = query.tests(run_row.id, states=args.state, statuses=args.status)
            if args.steps or args.data:
                results = query.results(run_row)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    rows = [row for row in rows if patt.matches(row.testname, row.item_path)]
    details = Details(results, steps=args.steps, data=args.data) if results else None
    with writing():
        if args.json:
            print_json([record(row) | (details.record(row) if details else {}) for row in rows])
            return ExitCode.OK
        out = console()
        out.print(_summary(run_row, rows, patt.text))
        shown = rows[: args.limit] if args.limit else rows
        if shown:
            out.print(_table(shown, out.width >= WIDE))
        if len(shown) < len(rows):
            out.print(
                f"… {len(rows) - len(shown):,} more not shown (--limit 0: all; --json: scripts)",
                style="dim",
            )
        if shown and out.width < WIDE:
            out.print(f"(run directories: --json, or a terminal of {WIDE}+ columns)", style="dim")
        if details is not None:
            details.show(out, shown)
    return ExitCode.OK
