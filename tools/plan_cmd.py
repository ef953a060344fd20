"""``mtpkt plan``: a dry run: the tests and items a run would have, in dependency order.

Reads the area's files here, as the home reads them when a run arrives (no home needed,
nothing runs, nothing is recorded): the tests the testpatt selects and those they wait on,
each with its level (1: waits on none; a test runs after the levels before it), its items,
priority and prerequisites. Items that come from a [system …] command are made only when
the test comes up to run, so the plan says so instead of listing them. With -r naming a
run that exists, it says which instances are already done and would be kept by `mtpkt send
run` (COMPLETED unless the configs changed, KILLED, STUCK, ARCHIVED; those being run stay
with their launch).

The testpatt is --testpatt (as `mtpkt send run` takes it), or the value of a runconfigs.config
key with --modepatt KEY (as `mtpkt megatest -run -modepatt KEY` reads it; `send run` does
not read TESTPATT). --json prints one JSON list, a test per object: "test", "level",
"waiton", "priority", "items" (the item paths of its instances, [""] for a test without
items, [] when it has no instance), "named" (the testpatt names it, not only a waiter),
"deferred" (items made when it comes up to run), "comment" (why it has no instance),
"mode", "jobgroup" and "done" (item path → STATE/STATUS a run would keep).

Planning runs what the configs' #{shell …} forms run, in this shell's environment: the home
plans in its own, so a config that reads the environment may plan differently there.

examples:
  mtpkt plan -t ubuntu/x86_64
  mtpkt plan -t ubuntu/x86_64 -r nightly --testpatt 'unit/%,~slow'
  mtpkt plan -t ubuntu/x86_64 --modepatt TESTPATT --json | jq '.[].test'
"""

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mtpkt.pkts.text import counted
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.listings import first_of, grid, listed, reading_area
from mtpkt.tools.local_area import load_area
from mtpkt.tools.options import add_testpatt, query_parser
from mtpkt.tools.planned import PlannedRow, listing
from mtpkt.tools.tables import cell

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from rich.console import Console
    from rich.table import Table

    from mtpkt.agents.area import Area, Plan
    from mtpkt.store.rows import TestRow

__all__ = ["DEFAULT_RUNNAME", "add_parser", "run"]

DEFAULT_RUNNAME: Final = "plan"
"""The run name planned with when -r gives none ($MT_RUNNAME, the run directory)."""


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt plan``."""
    parser = query_parser(
        commands, "plan", "a dry run: the tests, items and order a run would have", __doc__
    )
    which = parser.add_argument_group("which run")
    which.add_argument(
        "-t", "--target", required=True, help="the run's key values joined by /, e.g. ubuntu/x86"
    )
    which.add_argument(
        "-r",
        "--runname",
        help=f"the run's name; a run that exists: which instances are done"
        f" (default: {DEFAULT_RUNNAME!r}, a new run)",
    )
    add_testpatt(which, lead="which tests: ")
    which.add_argument(
        "--modepatt",
        metavar="KEY",
        help="take the testpatt from this runconfigs.config key of the target, e.g. TESTPATT"
        " (as `megatest -run -modepatt KEY`)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Plan the run and print it."""
    from mtpkt.agents.area import plan_run

    area = load_area(args.area)
    runname = args.runname or DEFAULT_RUNNAME
    testpatt, note = _testpatt(area, args)
    made = _new_dirs(area, args.target, runname)
    try:
        plan = reading_area(lambda: plan_run(area, args.target, runname, testpatt))
    finally:
        for directory in made:  # planning made them for [system] items: empty, they go
            _remove_empty(directory)
    rows, stale = _records(area, plan) if args.runname else ({}, False)
    named = [name for name in plan.tests if _names(testpatt, name)]
    found = listing(plan, named, rows, stale)

    def draw(out: "Console") -> None:
        out.print(_summary(plan, found, testpatt, new=not args.runname))
        out.print(_table(found))
        if note:
            out.print(note, style="dim")
        if args.runname:
            out.print(_kept(plan, found, rows, stale))

    return listed(args.json, [row.record() for row in found], draw)


def _testpatt(area: "Area", args: argparse.Namespace) -> tuple[str, str]:
    """The testpatt, and a note on the runconfigs' (it gave the testpatt, or it is there and
    not read: ``send run`` does not read TESTPATT).

    Raises:
        CliError: --modepatt names a key the target does not set, or --testpatt is given too
            (``USAGE``), or runconfigs.config cannot be read.
    """
    key = args.modepatt or "TESTPATT"
    if args.modepatt is not None and args.testpatt != "%":
        raise CliError("give --testpatt or --modepatt, not both", ExitCode.USAGE)
    if args.modepatt is None and args.testpatt != "%":
        return args.testpatt, ""
    found = reading_area(lambda: area.runconfig(args.target).get(key))
    if args.modepatt is None:
        if not found:
            return "%", ""
        return "%", (
            f"runconfigs.config sets {key} {found} for {args.target}: `send run` does not read"
            f" it; --modepatt {key} plans with it (as `megatest -run` reads it)"
        )
    if not found:
        why = f"runconfigs.config sets no {key} for {args.target}"
        raise CliError(f"--modepatt {key}: {why}", ExitCode.USAGE)
    return found, f"testpatt {found} from runconfigs {key}"


def _names(testpatt: str, test: str) -> bool:
    from mtpkt.agents.area import TestPatt

    return TestPatt.parse(testpatt).may_match_test(test)


def _new_dirs(area: "Area", target: str, runname: str) -> list[Path]:
    """The directories of the run's path that do not exist yet, deepest first."""
    from mtpkt.agents.area import AreaError
    from mtpkt.agents.area.paths import run_root

    try:
        root = run_root(area.linktree, target, runname)
    except AreaError:
        return []  # planning says why
    return [path for path in (root, *root.parents) if not path.exists()]


def _remove_empty(directory: Path) -> None:
    try:
        os.rmdir(directory)
    except OSError:
        pass  # not empty (or gone): left as it is


def _records(area: "Area", plan: "Plan") -> "tuple[dict[tuple[str, str], TestRow], bool]":
    """The run's records by (test, item), and whether its configs changed since its last
    launch; none for a run that does not exist."""
    from mtpkt.agents.home.stale import check
    from mtpkt.store import StoreError
    from mtpkt.tools.local_area import query_of

    if not (area.home / area.dbdir / "main.db").exists():
        return {}, False
    with query_of(area) as query:
        try:
            runs = query.runs(target=plan.target, runname=plan.runname)
            tests = query.tests(runs[0].id) if len(runs) == 1 else []
        except StoreError as exc:
            raise CliError(str(exc)) from None
    if not tests:
        return {}, False
    return {(row.testname, row.item_path): row for row in tests}, bool(check(plan).changed)


def _summary(plan: "Plan", found: list[PlannedRow], testpatt: str, *, new: bool) -> str:
    instances = sum(len(row.items) for row in found)
    later = sum(row.deferred for row in found)
    levels = max((row.level for row in found), default=0)
    run = f"a new run of {plan.target}" if new else f"run {plan.target} {plan.runname}"
    line = (
        f"plan of {run}, testpatt {testpatt}: {counted(len(found), 'test')},"
        f" {counted(instances, 'instance')} in {counted(levels, 'level')}"
    )
    return line + (f" (and the items of {later} made when due)" if later else "")


def _items(row: PlannedRow) -> str:
    if row.deferred:
        return "from a command, when due"
    if not row.items:
        return "none"
    if row.items == ("",):
        return ""
    return f"{len(row.items)}: {first_of(row.items, ', ')}"


def _note(row: PlannedRow) -> str:
    notes = [] if row.named else ["waited on"]
    if row.comment:
        notes.append(row.comment)
    if row.done:
        done = next(iter(row.done.values())) if len(row.done) == 1 else f"{len(row.done)} done"
        notes.append(f"kept: {done}")
    return "; ".join(notes)


def _table(found: list[PlannedRow]) -> "Table":
    shown = grid("lvl>", "test!", "items", "pri>", "waits on", "note")
    for row in found:
        shown.add_row(
            str(row.level),
            row.test,
            cell(_items(row)),
            str(row.priority),
            first_of(row.waiton, " "),
            cell(_note(row)),
        )
    return shown


def _kept(
    plan: "Plan", found: list[PlannedRow], rows: "dict[tuple[str, str], TestRow]", stale: bool
) -> str:
    """The line on what an existing run already has."""
    if not rows:
        return f"no run {plan.target} {plan.runname} yet: every instance would run"
    kept = sum(len(row.done) for row in found)
    changed = "; its configs changed: COMPLETED tests run again (STALE)" if stale else ""
    return f"run {plan.target} {plan.runname} exists: `send run` keeps {kept} done{changed}"
