"""The ``mtpkt`` command line: parses arguments and hands off to one module per command.

Adding a command: write ``tools/<name>_cmd.py`` with ``add_parser(commands)``,
which registers its sub-parser and sets ``run`` as its default
(``parser.set_defaults(run=run)``), and ``run(args) -> int``, which returns an
:class:`~tools.exitcodes.ExitCode` or raises :class:`~tools.errors.CliError`;
then list the module in :data:`COMMANDS`. Keep heavy imports inside ``run``,
so that ``mtpkt --help`` stays quick.

A command stays thin: it parses its arguments and calls into the packages.
What commands share has a module of its own: options and their types
(:mod:`tools.options`, with ``command_parser`` for the sub-parser), the area
and its databases (:mod:`tools.local_area`), the way to the home
(:mod:`tools.reach`, ``ask_home``), Ctrl-C while NNG waits
(:mod:`tools.interrupts`), following runs until they settle
(:mod:`tools.watch`) and the colour of each word (:mod:`tools.colours`).
"""

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn, Protocol

from mtpkt.pkts.text import one_line
from mtpkt.tools import (
    agent_cmd,
    agents_cmd,
    archives_cmd,
    completion_cmd,
    demo_cmd,
    home_cmd,
    log_cmd,
    logpro_cmd,
    plan_cmd,
    report_cmd,
    runs_cmd,
    send_cmd,
    tail_cmd,
    targets_cmd,
    tests_cmd,
)
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.spellings import megatest_spelling

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

DESCRIPTION = """\
mtpkt runs and watches regression tests across a farm of hosts with packets:
control packets go from this command to long-lived agents, status packets come
back to a collector that writes per-run SQLite databases."""

EPILOG = """\
exit codes:
  0    did what was asked
  1    could not do it; one line on stderr says why
  2    bad command line
  3    send --wait, tail --until-done: some tests ended FAIL, ABORT, DEAD …
  4    the home refused the request; the line gives its reason
  5    no answer from the home in time (not running, not at that address, TLS failed)
  6    the home's answer could not be verified (most often: another area's key)
  7    the area or its .mtpkt/ is missing or wrong (no secret, no home address …)
  8    send --wait / tail --until-done / log --follow with --wait-timeout: not done in time
  130  interrupted (Ctrl-C); home and agent exit 0 when Ctrl-C or SIGTERM stops them

Run 'mtpkt COMMAND --help' for a command's options."""


class Command(Protocol):
    """What a command module provides (a module satisfies this protocol)."""

    def add_parser(self, commands: "argparse._SubParsersAction[Any]") -> None:
        """Register the command's sub-parser, with ``run`` as its default."""

    def run(self, args: argparse.Namespace) -> int:
        """Carry out the command; return the exit status or raise CliError."""


COMMANDS: tuple[Command, ...] = (
    home_cmd,
    agent_cmd,
    send_cmd,
    plan_cmd,
    tail_cmd,
    runs_cmd,
    targets_cmd,
    tests_cmd,
    log_cmd,
    agents_cmd,
    archives_cmd,
    report_cmd,
    logpro_cmd,
    demo_cmd,
    completion_cmd,
)
"""Every command, in the order ``mtpkt --help`` lists them."""


class _Parser(argparse.ArgumentParser):
    """A bad command line is one line on stderr (pointing at ``--help``), not a usage block."""

    def error(self, message: str) -> NoReturn:
        message = one_line(message)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    try:
        return version("mtpkt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-parser per command."""
    parser = _Parser(
        prog="mtpkt",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mtpkt {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub-)parser of the command line's deepest command, e.g. ``mtpkt send run``."""
    while True:
        for action in parser._actions:  # argparse keeps its sub-parsers only there
            if isinstance(action, argparse._SubParsersAction):
                name = getattr(args, action.dest or "", None)
                if name in action.choices:
                    parser = action.choices[name]
                    break
        else:
            return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtpkt`` console script; returns the exit status."""
    words = sys.argv[1:] if argv is None else list(argv)
    if refusal := megatest_spelling(words):
        print(f"mtpkt: error: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    parser = build_parser()
    args, unknown = parser.parse_known_args(words)
    if unknown:  # said by the parser of the command given, which names it
        _chosen(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.run(args)
    except CliError as exc:
        print(f"mtpkt {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"mtpkt {args.command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code
