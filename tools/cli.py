"""The ``mtpkt`` command line: parses arguments and hands off to one module per command."""

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from tools import demo
from tools.errors import CliError
from tools.exitcodes import ExitCode

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
mtpkt runs and watches regression tests across a farm of hosts with packets:
control packets go from this command to long-lived agents, status packets come
back to a collector that writes per-run SQLite databases."""

EPILOG = """\
exit codes:
  0    did what was asked
  1    could not do it; one line on stderr says why
  2    bad command line
  130  interrupted (Ctrl-C)

Run 'mtpkt COMMAND --help' for a command's options."""


def _version() -> str:
    try:
        return version("mtpkt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="mtpkt",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mtpkt {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    commands.required = True
    demo.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtpkt`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except CliError as exc:
        print(f"mtpkt {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"mtpkt {args.command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code
