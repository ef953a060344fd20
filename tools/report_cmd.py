"""``mtpkt report``: write one run's results as JUnit XML, for CI servers.

The run's database is read directly (read-only, in short transactions), so the
report can be made whether the area's home is running or not. Each test
instance becomes a <testcase>: a test without items, or each item of an
itemized test (its toplevel record only sums up the items). Its time is the
test's run duration; its system-out lists the steps of its last attempt (status,
exit code, duration) and the last lines of each step's log, read from the
test's run directory while that is still on disk.

how a test shows:
  PASS, WARN, WAIVED                            passed
  FAIL, CHECK                                   <failure>: it ran, its result is bad
  ABORT, DEAD, PREQ_FAIL, PREQ_DISCARDED, or
  ended KILLED, STUCK, INCOMPLETE               <error>: it could not run to its end
  SKIP, not run, not finished yet               <skipped>

examples:
  mtpkt report -t ubuntu/x86_64 -r nightly --junit nightly.xml
  mtpkt report --area ~/suites/nightly -t ubuntu/x86_64 -r nightly --junit - | gzip > r.xml.gz

exit codes:
  0  the report was written, whatever the tests' results
  1  no run yet, no such run (the line names the runs there are), a database
     that cannot be read, or FILE cannot be written
  2  bad command line (e.g. a target that does not fit the area's fields)
  7  no area here
"""

import argparse
import datetime
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.outcome import FINAL, ended_badly, is_error, read_state, read_status
from mtpkt.pkts.status import StatusChange, StatusPacket, Step
from mtpkt.pkts.text import display_name, one_line
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.send_cmd import area_option, run_options
from mtpkt.tools.tables import find_run, load_area, query_of

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.store.rows import RunRow, TestRow

__all__ = [
    "LOG_LINES",
    "Instance",
    "RunReport",
    "StepRun",
    "add_parser",
    "junit_xml",
    "latest_steps",
    "log_tail",
    "read_report",
    "run",
    "summary",
    "verdict",
    "xml_text",
]

LOG_LINES: Final = 50
"""Lines of each step's log shown in a testcase's system-out."""
LOG_BYTES: Final = 64 * 1024
"""Bytes read from the end of a log at most (a log of very long lines shows fewer lines)."""

Key = tuple[str, str]
"""``(testname, item_path)``."""

# Characters XML 1.0 allows (its production `Char`); logs hold others (NUL, escape codes).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt report``."""
    parser = commands.add_parser(
        "report",
        help="write one run's results as JUnit XML for CI servers (Jenkins, GitLab, GitHub)",
        description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    area_option(parser)
    run_options(parser.add_argument_group("which run"), required=True)
    parser.add_argument(
        "--junit",
        required=True,
        metavar="FILE",
        help="write JUnit XML to FILE (replaced as a whole); - for standard output",
    )
    parser.set_defaults(run=run)


# -- what the database says -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StepRun:
    """One step of a test instance's last attempt, from its Step packets."""

    name: str
    status: Status | None
    """``None`` while the step has started and not ended."""
    exit_code: int | None = None
    """``None`` when killed by a signal, not started, or not ended."""
    duration: float | None = None
    logfile: str = ""
    """The step's log, relative to the test's run directory."""

    def line(self) -> str:
        """``step check: PASS, exit code 0, 0.21 s, log check.log``."""
        parts = [self.status.value if self.status is not None else "started, no end recorded"]
        if self.status is not None:
            code = self.exit_code
            parts.append("no exit code" if code is None else f"exit code {code}")
        if self.duration is not None:
            parts.append(f"{self.duration:.2f} s")
        if self.logfile:
            parts.append(f"log {self.logfile}")
        return f"step {self.name}: {', '.join(parts)}"


@attrs.frozen(kw_only=True)
class Instance:
    """One test instance (a testcase): its ``tests`` row and its last attempt's steps."""

    row: "TestRow"
    steps: tuple[StepRun, ...] = ()

    @property
    def name(self) -> str:
        """``test/itempath``, or the test's name for a test without items."""
        row = self.row
        return display_name(row.testname, row.item_path)


@attrs.frozen(kw_only=True)
class RunReport:
    """What a report is made of, read in one go from the run's databases."""

    run: "RunRow"
    instances: tuple[Instance, ...]
    area: Path
    """The area (run directories recorded as relative paths are under it)."""


def latest_steps(packets: Iterable[StatusPacket]) -> dict[Key, list[StepRun]]:
    """Each test instance's steps in its last attempt, in the order they started.

    Args:
        packets: a run's Step and StatusChange packets in commit order. A change
            to NOT_STARTED or LAUNCHED begins a new attempt (a rerun): the steps
            of the one before are dropped, as the store drops their start.
    """
    attempts: dict[Key, dict[str, StepRun]] = {}
    for packet in packets:
        match packet:
            case StatusChange(state=State.NOT_STARTED | State.LAUNCHED):
                attempts.pop((packet.test, packet.item), None)
            case Step():
                steps = attempts.setdefault((packet.test, packet.item), {})
                if packet.state is StepState.START:
                    steps[packet.step] = StepRun(
                        name=packet.step, status=None, logfile=packet.logfile
                    )
                    continue
                began = steps.get(packet.step)
                steps[packet.step] = StepRun(
                    name=packet.step,
                    status=packet.status,
                    exit_code=packet.exit_code,
                    duration=packet.duration,
                    logfile=packet.logfile or (began.logfile if began else ""),
                )
    return {key: list(steps.values()) for key, steps in attempts.items()}


def _read_tests(path: Path) -> tuple[list["TestRow"], list[object]]:
    """The run database's ``tests`` rows and its Step and StatusChange packets (packed), read
    in one short read transaction, so that both come from the same commit."""
    from mtpkt.store import schema
    from mtpkt.store.connection import Database, connect_readonly
    from mtpkt.store.rows import TestRow

    db = Database(path, connect_readonly(path))
    try:
        with db.guard("read"):
            schema.check_version(db.conn, schema.RUN, str(path))
            db.conn.execute("BEGIN")
            rows = db.conn.execute(
                f"SELECT {TestRow.COLUMNS} FROM tests ORDER BY testname, item_path"
            ).fetchall()
            packets = db.conn.execute(
                "SELECT packet FROM history WHERE kind IN ('step', 'status_change') ORDER BY seq"
            ).fetchall()
    finally:
        db.close()  # ends the read transaction (a rollback: nothing was written)
    return [TestRow.from_sql(row) for row in rows], [row[0] for row in packets]


def read_report(area: Path, dbdir: Path, run: "RunRow") -> RunReport:
    """Read what a report of the run needs.

    Raises:
        CliError: the run has no database (ERROR).
        StoreError: a database cannot be read, or holds a packet that cannot be read back.
    """
    from mtpkt import pkts
    from mtpkt.store import StoreError

    path = dbdir / f"{run.id}.db"
    if not path.is_file():
        raise CliError(
            f"run {run.target} {run.runname} has no database ({path}): nothing recorded yet"
        )
    rows, packed = _read_tests(path)
    packets: list[StatusPacket] = []
    for data in packed:
        try:
            if not isinstance(data, bytes):
                raise pkts.PacketError(f"a {type(data).__name__} where a packet belongs", b"")
            packet = pkts.unpack(data)
        except pkts.PacketError as exc:
            raise StoreError(f"{path} holds a packet that cannot be read: {exc}") from None
        if isinstance(packet, Step | StatusChange):
            packets.append(packet)
    steps = latest_steps(packets)
    # An itemized test's toplevel record sums up its items: the items are the testcases.
    itemized = {row.testname for row in rows if row.item_path}
    instances = tuple(
        Instance(row=row, steps=tuple(steps.get((row.testname, row.item_path), ())))
        for row in rows
        if row.item_path or row.testname not in itemized
    )
    return RunReport(run=run, instances=instances, area=area)


# -- how a test shows -----------------------------------------------------------------------


def verdict(state: str, status: str) -> tuple[str, str]:
    """How a test instance shows in JUnit, and why.

    Returns:
        ``(outcome, label)``: outcome is ``passed``, ``failure``, ``error`` or
        ``skipped``; label is ``FAIL`` for COMPLETED/FAIL, else e.g. ``KILLED/ABORT``,
        ``not run`` or ``not finished: RUNNING``.
    """
    known_state, known_status = read_state(state), read_status(status)
    label = status if state == State.COMPLETED else f"{state}/{status}"
    if ended_badly(known_state, known_status):
        return ("error" if is_error(known_state, known_status) else "failure"), label
    if known_state is State.NOT_STARTED:
        return "skipped", "not run"
    if known_state not in FINAL:
        return "skipped", f"not finished: {state}"
    if known_status in (Status.SKIP, Status.NA):
        return "skipped", label
    return "passed", label


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (control characters, lone surrogates)."""
    return _NOT_XML.sub("", text)


def log_tail(path: Path, lines: int = LOG_LINES) -> tuple[list[str], bool]:
    """The last ``lines`` lines of a log, read from its end, and whether it holds more.

    At most :data:`LOG_BYTES` are read; bytes that are not UTF-8 show as U+FFFD.

    Raises:
        OSError: it cannot be read.
    """
    with path.open("rb") as log:
        size = log.seek(0, os.SEEK_END)
        start = max(0, size - LOG_BYTES)
        log.seek(start)
        data = log.read(LOG_BYTES)
    found = data.decode("utf-8", errors="replace").split("\n")
    if found and not found[-1]:
        found.pop()  # the newline that ends the last line
    if start > 0 and found:
        found.pop(0)  # cut in the middle
    return [line.rstrip("\r") for line in found[-lines:]], start > 0 or len(found) > lines


def _rundir(report: RunReport, row: "TestRow") -> Path | None:
    if not row.rundir:
        return None
    return report.area / row.rundir  # an absolute rundir stays as it is


def _log_lines(rundir: Path, logfile: str) -> list[str]:
    """A step's log section of system-out: its last lines, or why they are not shown."""
    if not logfile:
        return []
    path = rundir / logfile
    try:
        inside = path.resolve().is_relative_to(rundir.resolve())
    except (OSError, RuntimeError):  # a link loop
        inside = False
    if not inside:
        return [f"  (log {logfile} is outside the run directory: not read)"]
    if not path.exists():
        return [f"  (log {logfile} is not on disk)"]
    if not path.is_file():
        return [f"  (log {logfile} is not a regular file: not read)"]
    try:
        tail, more = log_tail(path)
    except OSError as exc:
        return [f"  (log {logfile} cannot be read: {exc.strerror or exc})"]
    if not tail:
        return [f"  (log {logfile} is empty)"]
    what = f"last {len(tail)} lines of {logfile}" if more else logfile
    return [f"--- {what} ---", *tail, f"--- end of {logfile} ---"]


def _system_out(report: RunReport, instance: Instance) -> str:
    row = instance.row
    head = f"{instance.name}: {row.state} {row.status}"
    head += f" on {row.host}" if row.host else ""
    lines = [head + f", {row.run_duration:.2f} s"]
    if row.comment:
        lines.append(f"comment: {one_line(xml_text(row.comment))}")
    rundir = _rundir(report, row)
    on_disk = rundir is not None and rundir.is_dir()
    if rundir is None:
        lines.append("run directory: none recorded")
    elif on_disk:
        lines.append(f"run directory: {rundir}")
    elif not instance.steps:
        lines.append(f"run directory: {rundir} (not on disk)")
    else:
        why = " (archived)" if row.archived else ""
        lines.append(f"run directory: {rundir} is no longer on disk{why}: no logs to show")
    if not instance.steps:
        lines.append("no steps ran")
    for step in instance.steps:
        lines.append(step.line())
        if rundir is not None and on_disk:
            lines.extend(_log_lines(rundir, step.logfile))
    return "\n".join(lines) + "\n"


# -- the XML --------------------------------------------------------------------------------


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """A child element; its text and attribute values cleaned of what XML forbids."""
    element = ET.SubElement(parent, tag, {key: xml_text(value) for key, value in attrib.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _timestamp(when: float | None) -> str:
    """JUnit's timestamp: local time, ISO 8601, no time zone (as the JUnit schema has it)."""
    if when is None:
        return ""
    return datetime.datetime.fromtimestamp(when).isoformat(timespec="seconds")


def _testcase(suite: ET.Element, report: RunReport, instance: Instance) -> str:
    """Add the instance's testcase to ``suite``; returns its outcome (see :func:`verdict`)."""
    row = instance.row
    case = _element(
        suite,
        "testcase",
        classname=row.testname,
        name=instance.name,
        time=f"{row.run_duration:.3f}",
    )
    outcome, label = verdict(row.state, row.status)
    message = label + (f": {one_line(xml_text(row.comment))}" if row.comment else "")
    if outcome == "skipped":
        _element(case, "skipped", message=message)
    elif outcome != "passed":
        bad = [step.line() for step in instance.steps if step.status not in (Status.PASS, None)]
        _element(case, outcome, "\n".join(bad) or None, message=message, type=label)
    _element(case, "system-out", _system_out(report, instance))
    return outcome


def junit_xml(report: RunReport) -> ET.Element:
    """The report as a JUnit ``<testsuites>`` element holding one ``<testsuite>``: the run.

    One suite for the run, rather than one per test: a JUnit suite is one run
    of tests, so its counts, time and timestamp are the run's, and every
    consumer shows it as one block (GitLab and GitHub reporters list suites;
    Jenkins shows the same result by package and class either way). Each
    testcase's ``classname`` is its test's name, which is what Jenkins and
    GitLab group by, so an itemized test's items sit together under it; its
    ``name`` is ``test/itempath``, which still says which test in flat lists
    (GitHub annotations, failure summaries).
    """
    run = report.run
    root = ET.Element("testsuites", {"name": xml_text(f"mtpkt {run.target} {run.runname}")})
    suite = _element(
        root,
        "testsuite",
        name=f"{run.target}/{run.runname}",
        timestamp=_timestamp(run.event_time),
    )
    properties = _element(suite, "properties")
    for name, value in (
        ("target", run.target),
        ("runname", run.runname),
        ("run_id", str(run.id)),
        ("state", run.state),
        ("status", run.status),
    ):
        _element(properties, "property", name=name, value=value)
    outcomes = Counter(_testcase(suite, report, instance) for instance in report.instances)
    seconds = sum(instance.row.run_duration for instance in report.instances)
    counts = {
        "tests": str(len(report.instances)),
        "failures": str(outcomes["failure"]),
        "errors": str(outcomes["error"]),
        "skipped": str(outcomes["skipped"]),
        "time": f"{seconds:.3f}",
    }
    suite.attrib.update(counts)
    root.attrib.update(counts)
    return root


# -- the command ----------------------------------------------------------------------------


def _check_file(file: str) -> Path | None:
    """The file to write (``None``: standard output), refusing one that cannot be written
    before the databases are read."""
    if file == "-":
        return None
    if not file:
        raise CliError("--junit needs a file name (or - for standard output)", ExitCode.USAGE)
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


def _plural(count: int, word: str, words: str) -> str:
    return f"{count} {word if count == 1 else words}"


def summary(root: ET.Element, where: str) -> str:
    """One line: ``linux/x86/r1: 8 tests, 1 failure, 2 errors, 0 skipped; wrote r1.xml``."""
    suite = root[0]
    counts = [int(suite.get(name, "0")) for name in ("tests", "failures", "errors", "skipped")]
    return (
        f"{suite.get('name')}: {_plural(counts[0], 'test', 'tests')},"
        f" {_plural(counts[1], 'failure', 'failures')}, {_plural(counts[2], 'error', 'errors')},"
        f" {counts[3]} skipped; wrote {where}"
    )


def run(args: argparse.Namespace) -> int:
    """Write the run's JUnit report; returns the exit status."""
    from mtpkt.store import StoreError

    if not args.target.strip():
        raise CliError("the target is empty: give its key values joined by /", ExitCode.USAGE)
    path = _check_file(args.junit)
    area = load_area(args.area)
    try:
        with query_of(area) as query:
            run = find_run(query, args.target, args.runname)
            report = read_report(area.home, query.dbdir, run)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    root = junit_xml(report)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    if path is None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        except BrokenPipeError:  # `mtpkt report … --junit - | head`: the reader is gone
            sys.stdout = None  # no flush error at exit
        where = "standard output"
    else:
        _write(data, path)
        where = str(path)
    print(f"mtpkt report: {summary(root, where)}", file=sys.stderr)
    return ExitCode.OK
