"""``mtpkt logpro``: judge a log by a Megatest .logpro rule file, as logpro does.

It reads the log on stdin, runs the rules of RULES.logpro over it and prints one
line: the verdict and the rule that gave it. With REPORT.html it also writes that
report and the values file beside it (REPORT.dat, which Megatest loads as test
data). It exits with logpro's code: 0 PASS, 1 FAIL, 2 WARN, 3 CHECK, 4 WAIVED,
5 ABORT, 6 SKIP. A rule file that cannot be read is one line on stderr naming its
file and line, and exit 1 (FAIL: rules that cannot run must not pass).
docs/logpro.md describes the rules.

examples:
  mtpkt logpro lookittmp.logpro lookittmp.html < lookittmp.log
  ls /tmp | mtpkt logpro check.logpro
"""

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from mtpkt.tools.errors import CliError
from mtpkt.tools.options import command_parser

__all__ = ["add_parser", "run"]


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt logpro``."""
    parser = command_parser(
        commands, "logpro", "judge a log on stdin by a .logpro rule file (exit: its code)", __doc__
    )
    parser.add_argument("rules", metavar="RULES.logpro", type=Path, help="the rule file")
    parser.add_argument(
        "report", metavar="REPORT.html", type=Path, nargs="?", help="write this report and .dat"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Judge stdin; the exit status is logpro's code."""
    from mtpkt.agents.area.logpro import judge, load_rules
    from mtpkt.agents.area.logpro.report import write_reports
    from mtpkt.agents.area.scheme import SchemeError

    try:
        rules = load_rules(args.rules)
    except SchemeError as exc:
        raise CliError(str(exc)) from None
    log = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
    result = judge(rules, (line.rstrip("\r\n") for line in log))
    if args.report is not None:
        try:
            write_reports(result, args.report, str(args.rules))
        except OSError as exc:
            raise CliError(f"cannot write {args.report}: {exc.strerror}") from None
    print(result.message)
    return int(result.code)
