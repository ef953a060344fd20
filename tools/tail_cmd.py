"""``mtpkt tail``: follow the status packets the area's home commits, as they are committed.

It starts with what the home has already committed for the selected runs
(all runs by default), then follows the live stream; a gap in the stream is
filled from the home's history, so every committed packet is counted once, in
commit order.

On a terminal it shows a live view: each run with a progress bar and counts
by status, the running tests with their host, step and elapsed time, the
tests that ended badly, and the newest packets; Ctrl-C leaves it. --plain
prints one line per packet instead (the default when the output is not a
terminal) and --json one JSON object per packet (the fields of the packet,
with "seq", the home's stream number, and "origin_seq", the sender's own
number).

examples:
  mtpkt tail
  mtpkt tail -t ubuntu/x86_64 -r nightly --testpatt 'unit/%'
  mtpkt tail -r nightly --until-done --json > nightly.jsonl
  mtpkt tail -r nightly --until-done --wait-timeout 3600

With --until-done, a run name or test pattern that matches nothing there is
said on the first line (naming the runs or tests there are); tail still
waits for it, up to --wait-timeout seconds if given (then exit 8).
"""

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.interrupts import close_when_idle, interrupts_as_flag
from mtpkt.tools.local_area import area_dir
from mtpkt.tools.options import (
    add_publish,
    add_testpatt,
    add_timeout,
    command_parser,
    run_options,
    seconds,
    where_options,
)
from mtpkt.tools.reach import HomeLink, check_listening

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from pathlib import Path

    from mtpkt.bus.follow import Follower
    from mtpkt.tools.tail_output import Output

__all__ = ["POLL", "add_parser", "run"]

POLL: Final = 0.25
"""Seconds of one wait for the live stream (how soon Ctrl-C and --until-done are seen)."""


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt tail``."""
    parser = command_parser(
        commands,
        "tail",
        "follow the status packets of the area's runs as the home commits them",
        __doc__,
        parents=[where_options()],
    )
    add_publish(parser)
    which = parser.add_argument_group("which packets")
    run_options(which, required=False)
    add_testpatt(which, lead="only these tests and items: ")
    how = parser.add_argument_group("output")
    form = how.add_mutually_exclusive_group()
    form.add_argument(
        "--plain",
        action="store_true",
        help="one line per packet (the default when the output is not a terminal)",
    )
    form.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per packet (its fields, the stream's seq)",
    )
    how.add_argument(
        "--until-done",
        action="store_true",
        help="exit once every selected test of the selected runs has settled; exit 3 if any"
        " ended FAIL, ABORT, DEAD, KILLED …",
    )
    how.add_argument(
        "--wait-timeout",
        type=seconds,
        metavar="S",
        help="with --until-done: give up after S seconds (exit 8; the runs go on)",
    )
    add_timeout(parser)
    parser.set_defaults(run=run)


def _follow(
    follower: "Follower", output: "Output", link: HomeLink, args: argparse.Namespace
) -> bool:
    """Show what the home has committed, then what it commits, until --until-done's runs
    have settled (without it: until Ctrl-C); whether they settled before --wait-timeout."""
    from mtpkt.tools.tail_checks import nothing_matches
    from mtpkt.tools.tail_output import LiveScreen
    from mtpkt.tools.watch import caught_up, follow

    deadline = None if args.wait_timeout is None else time.monotonic() + args.wait_timeout
    check_listening(link.listen, args.timeout, link.tls)
    output.show(caught_up(follower, listen=link.listen, timeout=args.timeout, name="mtpkt tail"))
    done = output.done
    if done is not None and not done.watches and not isinstance(output, LiveScreen):
        missing = nothing_matches(
            area_dir(args.area), args.target or "", args.runname or "", args.testpatt
        )
        line = missing or "waiting for a selected run to start"
        print(f"mtpkt tail: {line}", file=sys.stderr, flush=True)
    return follow(
        follower,
        output.show,
        lambda: done is not None and done.settled,
        poll=POLL,
        name="mtpkt tail",
        deadline=deadline,
    )


def _check_target(area: "Path", target: str) -> None:
    """Refuse at once a target that does not fit the area's fields (when the area is here:
    a host that only has the key and the home's address leaves it to the home)."""
    from mtpkt.agents.area import Area, AreaError

    if not (area / "megatest.config").is_file():
        return
    try:
        Area.load(area).split_target(target)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def run(args: argparse.Namespace) -> int:
    """Follow the selected runs' packets; with --until-done, until they settle."""
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.tools.tail_output import output_for

    if args.wait_timeout is not None and not args.until_done:
        raise CliError("--wait-timeout needs --until-done (it bounds the wait)", ExitCode.USAGE)
    try:
        patt = TestPatt.parse(args.testpatt)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    area = area_dir(args.area)
    if args.target:
        _check_target(area, args.target)
    link = HomeLink.of(args, area)
    publish = link.stream(args, needed_by="mtpkt tail")
    follower = link.follower(
        publish, target=args.target, runname=args.runname, timeout=args.timeout
    )
    output = output_for(args, patt, sys.stdout)
    try:
        with interrupts_as_flag(), output:
            settled = _follow(follower, output, link, args)
        if not settled:
            raise CliError(
                f"not every selected test had settled after {args.wait_timeout:g}s"
                " (the runs go on)",
                ExitCode.WAIT_TIMEOUT,
            )
        return ExitCode.OK if output.done is None else output.done.report(sys.stderr)
    except BrokenPipeError:  # `mtpkt tail | head`: the reader is gone, which is fine
        sys.stdout = None  # no flush error at exit
        return ExitCode.OK
    finally:
        close_when_idle(follower.close)
