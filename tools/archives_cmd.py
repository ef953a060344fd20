"""``mtpkt archives``: the archives of run directories (``mtpkt send archive``), read-only.

Read from the area's databases, so it works whether the home runs or not.
Each archive: its run (target and run name), test/item, archive file, size,
files packed, when it was made (local time) and whether the test's run
directory is still on disk ("removed" after send archive --remove, until
--restore). Only the newest archive of each test is kept. --json prints one
JSON list of objects with the fields "target", "runname", "test", "item",
"state", "status", "path", "size" (bytes), "files", "archived_at" (seconds
since the epoch), "rundir" and "rundir_exists".

send clean removes the tests' archives with --archives; without it the
archive files stay where they are. An archive whose test records a clean
removed is still listed, from the file itself: its run directory shows as
"cleaned", its state and status are empty, its date is the file's, and
deleting the file is all that is left to do with it.

examples:
  mtpkt archives
  mtpkt archives -t ubuntu/x86_64 -r 'nightly%' --testpatt 'unit/%'
  mtpkt archives --json | jq 'map(.size) | add'
"""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtpkt.pkts.text import display_name
from mtpkt.tools.archive_files import unrecorded
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import area_note, load_area, query_of
from mtpkt.tools.options import add_testpatt, query_parser, run_options
from mtpkt.tools.tables import console, print_json, table, when, writing

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from rich.table import Table

    from mtpkt.store import ArchiveListRow

__all__ = ["add_parser", "human_size", "record", "run"]

Listed = tuple[tuple[str, str], "ArchiveListRow"]
"""One archive as listed: its run (target, run name) and its row."""


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt archives``."""
    parser = query_parser(
        commands,
        "archives",
        "list the archives of run directories: size, date, whether the directory is there",
        __doc__,
    )
    which = parser.add_argument_group("which archives")
    run_options(which, required=False)
    add_testpatt(which)
    parser.set_defaults(run=run)


def human_size(size: int) -> str:
    """Bytes for people: ``512 B``, ``3.4 KiB``, ``12.0 MiB``, ``1.2 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _rundir_exists(row: "ArchiveListRow") -> bool | None:
    """Whether the test's recorded run directory is on disk; None when none is recorded."""
    return Path(row.rundir).is_dir() if row.rundir else None


def record(run: tuple[str, str], row: "ArchiveListRow") -> dict[str, object]:
    """An archive as a JSON object (the fields listed in ``mtpkt archives --help``)."""
    return {
        "target": run[0],
        "runname": run[1],
        "test": row.testname,
        "item": row.item_path,
        "state": row.state,
        "status": row.status,
        "path": row.path,
        "size": row.size,
        "files": row.files,
        "archived_at": row.archived_at,
        "rundir": row.rundir,
        "rundir_exists": _rundir_exists(row),
    }


def _table(listed: list[Listed]) -> "Table":
    grid = table()
    grid.add_column("run", overflow="fold")
    grid.add_column("test", overflow="fold")
    grid.add_column("archive", overflow="fold")
    grid.add_column("size", justify="right", no_wrap=True)
    grid.add_column("files", justify="right", no_wrap=True)
    grid.add_column("archived", no_wrap=True)
    grid.add_column("run dir", no_wrap=True)
    for (target, runname), row in listed:
        exists = _rundir_exists(row)
        rundir = "unknown" if exists is None else ("there" if exists else "removed")
        grid.add_row(
            f"{target}/{runname}",
            display_name(row.testname, row.item_path),
            row.path,
            human_size(row.size),
            str(row.files),
            when(row.archived_at),
            rundir if row.state or row.status else "cleaned",
        )
    return grid


def _none_line(args: argparse.Namespace) -> str:
    """The one line printed when no archive is selected."""
    given = (("-t", args.target), ("-r", args.runname), ("--testpatt", args.testpatt))
    narrowed = [f"{flag} {value}" for flag, value in given if value and value != "%"]
    return f"no archives ({' '.join(narrowed)})" if narrowed else "no archives yet"


def run(args: argparse.Namespace) -> int:
    """List the selected archives."""
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.store import StoreError

    try:
        patt = TestPatt.parse(args.testpatt)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    listed: list[Listed] = []
    area = load_area(args.area)
    with query_of(area) as query:
        try:
            selected = {run.id for run in query.runs(target=args.target, runname=args.runname)}
        except StoreError as exc:  # the target does not fit the area's fields
            raise CliError(str(exc), ExitCode.USAGE) from None
        try:  # every run's, read once: an archive none of them records is a cleaned one's
            archives = [(run, query.archives(run.id)) for run in query.runs()]
        except StoreError as exc:
            raise CliError(str(exc)) from None
    for run_row, rows in archives:
        if run_row.id in selected:
            listed += [((run_row.target, run_row.runname), row) for row in rows]
    recorded = {row.path for _, rows in archives for row in rows}
    listed += unrecorded(area, recorded, args.target, args.runname)
    listed = [pair for pair in listed if patt.matches(pair[1].testname, pair[1].item_path)]
    if note := area_note(args.area):  # on stderr: stdout stays the table or the JSON
        print(note, file=sys.stderr)
    with writing():
        if args.json:
            print_json([record(run, row) for run, row in listed])
        elif not listed:
            print(_none_line(args))
        else:
            total = sum(row.size for _, row in listed)
            out = console()
            out.print(f"{len(listed)} archive(s), {human_size(total)}")
            out.print(_table(listed))
        sys.stdout.flush()
    return ExitCode.OK
