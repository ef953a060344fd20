"""``mtpkt report``: write one run's results as JUnit XML for CI servers, or as JSON.

The run's database is read directly (read-only, in short transactions), so the
report can be made whether the area's home is running or not. Each test
instance becomes a <testcase>: a test without items, or each item of an
itemized test (its toplevel record only sums up the items). Its time is the
test's run duration; its system-out lists the steps of its last attempt (status,
exit code, duration, comment), the last lines of each step's log, read from the
test's run directory while that is still on disk, and its test data; the test's
data are also its <properties> ("category/variable" = value,
"category/variable:status" = pass, fail …), and its main log (megatest -setlog,
a logpro .html) an attachment, [[ATTACHMENT|/abs/path]] in system-out (the
convention of Jenkins' JUnit Attachments plugin).

--json writes the same as one JSON object: the run, and "tests", one object per
test instance with its record, "outcome" (as JUnit shows it), "logfile", "job",
"log_path", "steps" (name, state, status, exit_code, duration, logfile,
comment) and "data" (category, variable, value, expected, tol, units, comment,
status, type). --junit and --json can be given together.

how a test shows:
  PASS, WARN, WAIVED                            passed
  FAIL, CHECK                                   <failure>: it ran, its result is bad
  ABORT, DEAD, PREQ_FAIL, PREQ_DISCARDED, or
  ended KILLED, STUCK, INCOMPLETE               <error>: it could not run to its end
  SKIP, not run, not finished yet               <skipped>

examples:
  mtpkt report -t ubuntu/x86_64 -r nightly --junit nightly.xml
  mtpkt report -t ubuntu/x86_64 -r nightly --json - | jq '.tests[] | select(.data != [])'
  mtpkt report --area ~/suites/nightly -t ubuntu/x86_64 -r nightly --junit - | gzip > r.xml.gz

exit codes:
  0  the report was written, whatever the tests' results
  1  no run yet, no such run (the line names the runs there are), a database
     that cannot be read, or FILE cannot be written
  2  bad command line (e.g. a target that does not fit the area's fields, neither
     --junit nor --json, or both to standard output)
  7  no area here
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import find_run, load_area, query_of
from mtpkt.tools.options import area_option, command_parser, run_options

__all__ = ["add_parser", "run"]


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt report``."""
    parser = command_parser(
        commands,
        "report",
        "write one run's results as JUnit XML for CI servers (Jenkins, GitLab, GitHub) or JSON",
        __doc__,
    )
    area_option(parser)
    run_options(parser.add_argument_group("which run"), required=True)
    parser.add_argument(
        "--junit",
        metavar="FILE",
        help="write JUnit XML to FILE (replaced as a whole); - for standard output",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="write the results as JSON to FILE (replaced as a whole); - for standard output",
    )
    parser.set_defaults(run=run)


def _check_file(file: str, option: str) -> Path | None:
    """The file to write (``None``: standard output), refusing one that cannot be written
    before the databases are read."""
    if file == "-":
        return None
    if not file:
        raise CliError(f"{option} needs a file name (or - for standard output)", ExitCode.USAGE)
    path = Path(file)
    if path.is_dir():
        raise CliError(f"cannot write {file}: it is a directory")
    if not path.parent.is_dir():
        raise CliError(f"cannot write {file}: there is no directory {path.parent}")
    return path


def _write(data: bytes, path: Path) -> None:
    """Replace ``path`` with ``data`` as a whole: a reader never sees half a report, and a
    failed write leaves the old one."""
    from mtpkt.store.files import atomic_write

    try:
        atomic_write(path, data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Write the run's reports; returns the exit status."""
    from mtpkt.store import StoreError
    from mtpkt.tools.junit import junit_xml, summary
    from mtpkt.tools.run_json import suite_json
    from mtpkt.tools.run_results import read_suite

    if args.junit is None and args.json is None:
        raise CliError("give --junit FILE, --json FILE or both", ExitCode.USAGE)
    if args.junit == args.json == "-":
        raise CliError("--junit and --json cannot both write to standard output", ExitCode.USAGE)
    if not args.target.strip():
        raise CliError("the target is empty: give its key values joined by /", ExitCode.USAGE)
    asked = (("--junit", args.junit, junit_xml), ("--json", args.json, suite_json))
    outputs = [(_check_file(f, option), make) for option, f, make in asked if f is not None]
    area = load_area(args.area)
    try:
        with query_of(area) as query:
            suite = read_suite(area.home, query, find_run(query, args.target, args.runname))
    except StoreError as exc:
        raise CliError(str(exc)) from None
    written = [_emit(make(suite), path) for path, make in outputs]
    print(f"mtpkt report: {summary(suite, ' and '.join(written))}", file=sys.stderr)
    return ExitCode.OK


def _emit(data: bytes, path: Path | None) -> str:
    """Write a report to ``path`` (``None``: standard output); where it went."""
    if path is None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        except BrokenPipeError:  # `mtpkt report … --junit - | head`: the reader is gone
            sys.stdout = None  # no flush error at exit
        return "standard output"
    _write(data, path)
    return str(path)
