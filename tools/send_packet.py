"""The control packet ``mtpkt send KIND …`` asks for, checked before it is sent.

A bad target, run name, test pattern or host is refused here with one line
(``USAGE``), before the home is asked anything.
"""

import argparse
from typing import Any

from mtpkt import pkts
from mtpkt.pkts.control import Archive, Clean, Kill, RerunClean, Run
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode

__all__ = ["control_packet"]


def control_packet(args: argparse.Namespace) -> pkts.Control:
    """The control packet the command line asks for (``mtpkt send KIND …``).

    Raises:
        CliError: a bad target, run name, test pattern or host (USAGE).
    """
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.agents.area.paths import check_name, check_relative

    if not args.target.strip():
        raise CliError("the target is empty: give its key values joined by /", ExitCode.USAGE)
    try:
        check_relative("target", args.target)
        check_name("run name", args.runname)
        TestPatt.parse(args.testpatt)
        if args.host is not None:
            check_name("host", args.host)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    selection: dict[str, Any] = {
        "target": args.target,
        "runname": args.runname,
        "testpatt": args.testpatt,
        "host": args.host,
    }
    match args.kind:
        case "run":
            return Run(
                rerun=args.rerun,
                rerun_all=args.rerun_all,
                preclean=args.preclean,
                **selection,
            )
        case "kill":
            if args.grace is not None:
                selection["grace"] = args.grace
            return Kill(**selection)  # without --grace: the packet's own default
        case "rerunclean":
            return RerunClean(**selection)
        case "clean":
            return Clean(keep_records=args.keep_records, archives=args.archives, **selection)
        case "archive":
            return Archive(remove=args.remove, restore=args.restore, **selection)
    raise CliError(f"unknown kind {args.kind!r}", ExitCode.USAGE)
