"""``mtpkt log``: print a step's log, or list a test's steps and logs, from the run directory.

A step's output is in ``<rundir>/<step>.log``. This command finds the run
directory in the area's databases and reads the file itself: it needs no home,
and works on every host that sees the run tree (the host that ran the test, or
any other with the same shared disk). A test with items is named as
``TEST/ITEM``.

Without STEP it lists the test's steps (of its last attempt) with how each
ended and its log, and names the test's main log (Megatest's final_logf) if
one was set; --main prints that one. With --follow it prints the log and then
what is added to it, until the test has ended (or --wait-timeout, exit 8;
Ctrl-C, exit 130).

examples:
  mtpkt log -t ubuntu/x86_64 -r nightly build               # build's steps and logs
  mtpkt log -t ubuntu/x86_64 -r nightly build compile       # compile.log
  mtpkt log -t ubuntu/x86_64 -r nightly unit/1 check --follow
"""

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mtpkt.pkts.outcome import read_state, read_status, settled
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import find_run, open_query
from mtpkt.tools.options import area_option, command_parser, run_options, seconds
from mtpkt.tools.step_logs import (
    Instance,
    follow,
    instance_of,
    log_path,
    print_log,
    step_lines,
    step_of,
)

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from mtpkt.store.query import StoreQuery

__all__ = ["POLL", "add_parser", "run"]

POLL = 0.5
"""Seconds between looks at a followed log and at its test's state."""


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt log``."""
    parser = command_parser(
        commands,
        "log",
        "print a step's log (or list a test's steps) from the run directory",
        __doc__,
    )
    area_option(parser)
    which = parser.add_argument_group("which log")
    run_options(which, required=True)
    which.add_argument("test", metavar="TEST[/ITEM]", help="the test, and its item if it has items")
    which.add_argument(
        "step", metavar="STEP", nargs="?", help="the step whose log to print (default: list them)"
    )
    parser.add_argument(
        "--main",
        action="store_true",
        help="print the test's main log (Megatest's final_logf) instead of a step's",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="then print what is added to the log until the test has ended",
    )
    parser.add_argument(
        "--wait-timeout",
        type=seconds,
        metavar="S",
        help="with --follow: give up after S seconds (exit 8; the test goes on)",
    )
    parser.set_defaults(run=run)


def _list(instance: Instance) -> None:
    """The instance's run directory, its steps with their logs, and its main log."""
    row = instance.row
    print(f"{instance.name}: {row.state}/{row.status} on {row.host or '-'}, in {row.rundir or '-'}")
    lines = step_lines(instance)
    if not lines:  # the comment says why, when the home or the agent gave up before
        print(f"no step has started ({row.comment})" if row.comment else "no step has started")
    width = max((len(name) for name, _, _ in lines), default=0)
    for name, how, logfile in lines:
        print(f"  {name:<{width}}  {how:<8}  {logfile}")
    if row.final_logf:
        print(f"main log: {row.final_logf} (--main prints it)")
    if lines:
        print(f"(mtpkt log … {instance.name} STEP prints a step's log)")


def _ended(query: "StoreQuery", run_id: int, key: tuple[str, str]) -> Callable[[], bool]:
    """Whether the test of ``key`` has ended, looked up afresh at each call."""

    def ended() -> bool:
        for row in query.tests(run_id):
            if (row.testname, row.item_path) == key:
                return settled(read_state(row.state), read_status(row.status))
        return True  # the record went (cleaned): nothing more will be written

    return ended


def _logfile(instance: Instance, step: str | None) -> str:
    """The log of ``step``, or the test's main log (None), relative to the run directory.

    Raises:
        CliError: no such step, or no main log.
    """
    if step:
        return step_of(instance, step).logfile or f"{step}.log"
    if not instance.row.final_logf:
        raise CliError(f"{instance.name} has no main log (a step names one: megatest -setlog)")
    return instance.row.final_logf


def _deadline(args: argparse.Namespace) -> float | None:
    """When --follow gives up (None: never), once the options are checked to fit together.

    Raises:
        CliError: --main with a step, --follow without a log, --wait-timeout without
            --follow (``USAGE``).
    """
    if args.main and args.step:
        raise CliError("give a STEP or --main, not both", ExitCode.USAGE)
    if args.follow and not (args.step or args.main):
        raise CliError("--follow needs a STEP (or --main): the log to follow", ExitCode.USAGE)
    if args.wait_timeout is not None and not args.follow:
        raise CliError("--wait-timeout is for --follow", ExitCode.USAGE)
    return None if args.wait_timeout is None else time.monotonic() + args.wait_timeout


def run(args: argparse.Namespace) -> int:
    """List the steps, print a log, or follow one."""
    from mtpkt.store import StoreError

    deadline = _deadline(args)
    with open_query(args.area) as query:
        run_row = find_run(query, args.target, args.runname)
        try:
            results = query.results(run_row)
        except StoreError as exc:
            raise CliError(str(exc)) from None
        instance = instance_of(results, f"{run_row.target}/{run_row.runname}", args.test)
        if not (args.step or args.main):
            _list(instance)
            return ExitCode.OK
        path = log_path(instance, _logfile(instance, args.step))
        out = sys.stdout.buffer
        if not args.follow:
            print_log(path, out)
            return ExitCode.OK
        key = (instance.row.testname, instance.row.item_path)
        if follow(path, out, _ended(query, run_row.id, key), poll=POLL, deadline=deadline):
            return ExitCode.OK
    print(f"mtpkt log: {instance.name} still runs after {args.wait_timeout:g} s", file=sys.stderr)
    return ExitCode.WAIT_TIMEOUT
