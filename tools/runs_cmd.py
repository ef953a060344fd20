"""``mtpkt runs``: the area's runs and how their tests stand.

Read from the area's databases (read-only), so it works whether the home
runs or not. Each run: its id, target, run name, state (its worst status
once COMPLETED), when it was created and last changed, its test instances
and how many stand where (PASS, FAIL …, running, not_started). --json prints
one JSON list of objects with the fields "id", "target", "runname", "state",
"status", "owner", "comment", "created", "last_update" (seconds since the
epoch), "tests", "counts" (outcome → number) and "settled".

examples:
  mtpkt runs
  mtpkt runs -t ubuntu/x86_64 -r nightly
  mtpkt runs --json | jq '.[] | select(.settled | not) | .runname'
"""

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from mtpkt.pkts.text import end_label
from mtpkt.tools.colours import styled
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import area_note, open_query
from mtpkt.tools.options import query_parser, run_options
from mtpkt.tools.tables import ago, console, outcomes, print_json, table, when, writing

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from rich.table import Table

    from mtpkt.store.query import RunInfo

__all__ = ["add_parser", "record", "run"]


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt runs``."""
    parser = query_parser(
        commands,
        "runs",
        "list the area's runs and where their tests stand",
        __doc__,
    )
    run_options(parser.add_argument_group("which runs"), required=False)
    parser.set_defaults(run=run)


def record(info: "RunInfo") -> dict[str, object]:
    """A run as a JSON object (the fields listed in ``mtpkt runs --help``)."""
    run = info.run
    return {
        "id": run.id,
        "target": run.target,
        "runname": run.runname,
        "state": run.state,
        "status": run.status,
        "owner": run.owner,
        "comment": run.comment,
        "created": run.event_time,
        "last_update": run.last_update,
        "tests": info.total,
        "counts": dict(info.counts),
        "settled": info.settled,
    }


def _table(infos: "list[RunInfo]", now: float) -> "Table":
    grid = table()
    grid.add_column("id", justify="right", no_wrap=True)
    grid.add_column("target", overflow="fold")
    grid.add_column("run", overflow="fold")
    grid.add_column("state", no_wrap=True)
    grid.add_column("created", no_wrap=True)
    grid.add_column("changed", no_wrap=True)
    grid.add_column("tests")
    for info in infos:
        run = info.run
        shown = end_label(run.state, run.status, with_status=False)  # a roll-up's state
        changed = run.last_update or run.event_time
        grid.add_row(
            str(run.id),
            run.target,
            run.runname,
            styled(shown),
            when(run.event_time),
            "" if changed is None else ago(now - changed),
            outcomes(info.counts, f"{info.total}: " if info.counts else "0"),
        )
    return grid


def run(args: argparse.Namespace) -> int:
    """List the selected runs."""
    from mtpkt.store import StoreError

    with open_query(args.area) as query:
        try:
            runs = query.runs(target=args.target, runname=args.runname)
        except StoreError as exc:  # the target does not fit the area's fields
            raise CliError(str(exc), ExitCode.USAGE) from None
        try:
            infos = [query.run_info(run) for run in runs]
        except StoreError as exc:
            raise CliError(str(exc)) from None
    if note := area_note(args.area):  # on stderr: stdout stays the table or the JSON
        print(note, file=sys.stderr)
    with writing():
        if args.json:
            print_json([record(info) for info in infos])
        elif not infos:
            print("no run matches" if args.target or args.runname else "no runs yet")
        else:
            console().print(_table(infos, time.time()))
        sys.stdout.flush()
    return ExitCode.OK
