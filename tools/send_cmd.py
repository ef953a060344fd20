"""``mtpkt send``: ask an area's home to run, kill, clean or archive tests of a run.

The control packet is signed with the area's key and sent to the home, which
journals it durably before it answers. The packet's id is printed (hex) once
the home has it; for a run or rerunclean, a line on stderr then says what the
home will do (tests, instances, how many kept, how many to run). With --wait
the command follows the run until every selected test has settled, and names
each test that ended badly with its comment; a clean or archive waits until
the home says what it did.

examples:
  mtpkt send run -t ubuntu/x86_64 -r nightly
  mtpkt send run -t ubuntu/x86_64 -r nightly --testpatt 'unit/%,~slow' --wait
  mtpkt send kill -t ubuntu/x86_64 -r nightly --testpatt sleeper --grace 5
  mtpkt send clean -t ubuntu/x86_64 -r nightly --testpatt 'unit/%' --wait

Run 'mtpkt send KIND --help' for the options of one kind.
"""

import argparse
import sys
from typing import Any, Final

import attrs

from mtpkt.pkts.control import Kill
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.interrupts import close_when_idle
from mtpkt.tools.options import (
    add_testpatt,
    add_timeout,
    clean_options,
    command_parser,
    grace_seconds,
    run_options,
    statuses,
    wait_options,
    where_options,
)
from mtpkt.tools.reach import HomeLink
from mtpkt.tools.send_packet import control_packet
from mtpkt.tools.watch import CHORES

__all__ = ["add_parser", "control_packet", "run"]

_EXAMPLES: Final = {
    "run": (
        "run the selected tests, creating the run if it is new; as Megatest's -run, tests"
        " already COMPLETED (whatever their status), KILLED, STUCK or ARCHIVED are left alone;"
        " STALE ones (their configs changed since) run again",
        "mtpkt send run -t ubuntu/x86_64 -r nightly --wait\n"
        "  mtpkt send run -t ubuntu/x86_64 -r nightly --testpatt 'ez_%' --rerun FAIL,ABORT",
    ),
    "kill": (
        "stop the selected tests: running ones are killed, waiting ones withdrawn",
        "mtpkt send kill -t ubuntu/x86_64 -r nightly --testpatt sleeper --grace 5 --wait",
    ),
    "rerunclean": (
        "clean and rerun the selected tests that ended badly",
        "mtpkt send rerunclean -t ubuntu/x86_64 -r nightly --wait",
    ),
    "clean": (
        "kill, then remove the selected tests' run directories (and records)",
        "mtpkt send clean -t ubuntu/x86_64 -r nightly --testpatt 'unit/%' --keep-records",
    ),
    "archive": (
        "pack the selected tests' run directories into the area's archive, or restore them",
        "mtpkt send archive -t ubuntu/x86_64 -r nightly --remove",
    ),
}
_KILL_GRACE: Final = attrs.fields(Kill).grace.default


# -- arguments ------------------------------------------------------------------------------


def _common_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False, parents=[where_options()])
    which = options.add_argument_group("which tests")
    run_options(which, required=True)
    add_testpatt(which)
    which.add_argument("--host", metavar="H", help="only the agent of this name may take the work")
    add_timeout(options)
    return options


def _kind_options(kind: str, parser: argparse.ArgumentParser) -> None:
    match kind:
        case "run":
            parser.add_argument(
                "--rerun",
                type=statuses,
                default=(),
                metavar="STATUS[,STATUS]",
                help="also rerun COMPLETED tests with one of these statuses, e.g. FAIL,ABORT",
            )
            parser.add_argument(
                "--rerun-all",
                action="store_true",
                help="rerun every selected test, whatever it is (KILLED ones too)",
            )
            parser.add_argument(
                "--preclean",
                action="store_true",
                help="remove a test's run directory before running it",
            )
            parser.add_argument(
                "--dry-run",
                action="store_true",
                help="send nothing: print the tests, items and order the run would have, and"
                " what of an existing run it would keep (as `mtpkt plan`)",
            )
        case "kill":
            parser.add_argument(
                "--grace",
                type=grace_seconds,
                metavar="S",
                help="seconds between SIGTERM and SIGKILL to a test's processes"
                f" (default: {_KILL_GRACE:g})",
            )
        case "clean":
            clean_options(parser)
        case "archive":
            how = parser.add_mutually_exclusive_group()
            how.add_argument(
                "--remove",
                action="store_true",
                help="delete each run directory once its archive is verified",
            )
            how.add_argument(
                "--restore", action="store_true", help="unpack the archives back instead"
            )


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt send`` and its kinds."""
    parser = command_parser(
        commands,
        "send",
        "ask the area's home to run, kill, clean or archive tests (prints the packet id,"
        " and for a run what the home will do)",
        __doc__,
    )
    kinds = parser.add_subparsers(title="kinds", metavar="KIND", dest="kind")
    kinds.required = True
    common = _common_options()
    wait, chore_wait = wait_options(), wait_options(chore=True)
    for kind, (summary, example) in _EXAMPLES.items():
        sub = kinds.add_parser(
            kind,
            help=summary,
            description=f"mtpkt send {kind}: {summary}.",
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common, chore_wait if kind in CHORES else wait],
        )
        _kind_options(kind, sub)
        sub.set_defaults(wait=False, wait_timeout=None, publish=None)
    parser.set_defaults(run=run)


# -- the command ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Send one control packet; with --wait, follow its run. Returns the exit status."""
    from mtpkt.tools.watch import ENDS_WITH_ACK, wait_for_run

    if args.wait_timeout is not None and not args.wait:
        raise CliError("--wait-timeout needs --wait (it bounds the wait)", ExitCode.USAGE)
    if getattr(args, "dry_run", False):
        return _dry_run(args)
    packet = control_packet(args)
    link = HomeLink.of(args)
    follower = None
    if args.wait:
        # Made before the packet is sent: a bad stream address stops it before anything happens.
        publish = link.stream(args, needed_by="--wait")
        follower = link.follower(
            publish,
            target=packet.target,
            runname=packet.runname,
            timeout=args.timeout,
            acks=packet.kind in ENDS_WITH_ACK,
        )
    try:
        plan = link.ask(packet, args.timeout)
        print(packet.id.hex(), flush=True)
        if plan:  # what the home will do (a run's), beside the id scripts read from stdout
            print(plan, file=sys.stderr, flush=True)
        if follower is None:
            return ExitCode.OK
        try:
            return wait_for_run(
                packet,
                follower,
                listen=link.listen,
                timeout=args.timeout,
                wait_timeout=args.wait_timeout,
                out=sys.stderr,
            )
        except KeyboardInterrupt:
            if packet.kind in ("run", "rerunclean"):  # a chore cannot be stopped
                stop = f"mtpkt send kill -t {packet.target} -r {packet.runname}"
                note = f"(the {packet.kind} goes on in the home; `{stop}` stops it)"
                print(note, file=sys.stderr)
            raise
    finally:
        if follower is not None:
            close_when_idle(follower.close)


def _dry_run(args: argparse.Namespace) -> int:
    """``send run --dry-run``: ``mtpkt plan`` of the same run, nothing sent."""
    from mtpkt.tools import plan_cmd

    if args.wait:
        raise CliError("--dry-run sends nothing, so there is nothing to --wait for", ExitCode.USAGE)
    return plan_cmd.run(argparse.Namespace(**{**vars(args), "modepatt": None, "json": False}))
