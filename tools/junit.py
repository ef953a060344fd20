"""A run's results as JUnit XML, made from plain records (no database or file access).

:class:`Suite` holds the run's row and a :class:`Case` per test instance:
its ``tests`` row, whether its run directory is on disk, a :class:`StepRun`
per step of its last attempt (its newest Step packet, with the log lines
already read), its test data and its main log; :func:`junit_xml` turns that
into the XML bytes CI servers read (Jenkins, GitLab, GitHub). How a test
shows (:func:`verdict`) follows the outcome rules of :mod:`mtpkt.pkts.outcome`.

A test's data become the testcase's ``<properties>``: ``category/variable``
with the value, and ``category/variable:status`` with its verdict where it
has one. Its main log (Megatest's ``final_logf``, e.g. a logpro ``.html``)
is named in system-out as ``[[ATTACHMENT|/abs/path]]``, the convention of
Jenkins' JUnit Attachments plugin, while it is on disk.
"""

import datetime
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Final

import attrs

from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.outcome import ended_badly, is_error, read_state, read_status, settled
from mtpkt.pkts.status import Step
from mtpkt.pkts.text import display_name, end_label, one_line
from mtpkt.store.rows import RunRow, TestDataRow, TestRow
from mtpkt.tools.details import data_line, value_text

__all__ = ["Case", "StepRun", "Suite", "junit_xml", "outcomes", "summary", "verdict", "xml_text"]

# Characters XML 1.0 allows (its production `Char`); logs hold others (NUL, escape codes).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@attrs.frozen(kw_only=True)
class StepRun:
    """One step of a test instance's last attempt."""

    packet: Step
    """Its newest packet: its END, or its START while it runs."""
    log: tuple[str, ...] = ()
    """The step's log section of system-out: its last lines between two marker lines, or one
    line saying why they are not shown; empty when its run directory is not on disk."""

    @property
    def status(self) -> Status | None:
        """``None`` while the step has started and not ended."""
        return self.packet.status if self.packet.state is StepState.END else None

    def line(self) -> str:
        """``step check: PASS, exit code 0, 0.21 s, log check.log: 2 warnings``."""
        step, status = self.packet, self.status
        parts = [status.value if status is not None else "started, no end recorded"]
        if status is not None:
            code = step.exit_code
            parts.append("no exit code" if code is None else f"exit code {code}")
            if step.duration is not None:
                parts.append(f"{step.duration:.2f} s")
        if step.logfile:
            parts.append(f"log {step.logfile}")
        comment = f": {one_line(xml_text(step.comment))}" if step.comment else ""
        return f"step {step.step}: {', '.join(parts)}{comment}"


@attrs.frozen(kw_only=True)
class Case:
    """One test instance (a testcase): its record and its last attempt's steps."""

    row: TestRow
    rundir: Path | None = None
    """Its run directory (``None``: none recorded)."""
    on_disk: bool = False
    """Whether :attr:`rundir` is still there."""
    steps: tuple[StepRun, ...] = ()
    data: tuple[TestDataRow, ...] = ()
    """Its test data, by category and variable."""
    log: Path | None = None
    """Its main log (the row's ``final_logf``) while on disk in its run directory."""

    @property
    def name(self) -> str:
        """``test/itempath``, or the test's name for a test without items."""
        return display_name(self.row.testname, self.row.item_path)


@attrs.frozen(kw_only=True)
class Suite:
    """A run: what the report is made of."""

    run: RunRow
    cases: tuple[Case, ...]


def verdict(state: str, status: str) -> tuple[str, str]:
    """How a test instance shows in JUnit, and why.

    Returns:
        ``(outcome, label)``: outcome is ``passed``, ``failure``, ``error`` or
        ``skipped``; label is the record's :func:`~mtpkt.pkts.text.end_label` (``FAIL``
        for COMPLETED/FAIL, ``KILLED/ABORT``), ``not run`` or ``not finished: RUNNING``.
        A STALE test that did not end badly is ``skipped`` (``STALE/PASS``): it passed
        with configs the run no longer has, so it is no pass of this run's.
    """
    known_state, known_status = read_state(state), read_status(status)
    label = end_label(state, status)
    if ended_badly(known_state, known_status):
        return ("error" if is_error(known_state, known_status) else "failure"), label
    if known_state is State.NOT_STARTED:
        return "skipped", "not run"
    if not settled(known_state, known_status):
        return "skipped", f"not finished: {state}"
    if known_status in (Status.SKIP, Status.NA) or known_state is State.STALE:
        return "skipped", label
    return "passed", label


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (control characters, lone surrogates)."""
    return _NOT_XML.sub("", text)


def outcomes(suite: Suite) -> Counter[str]:
    """The suite's testcases by :func:`verdict` outcome."""
    return Counter(verdict(case.row.state, case.row.status)[0] for case in suite.cases)


def _plural(count: int, word: str, words: str) -> str:
    return f"{count} {word if count == 1 else words}"


def summary(suite: Suite, where: str) -> str:
    """One line: ``linux/x86/r1: 8 tests, 1 failure, 2 errors, 0 skipped; wrote r1.xml``."""
    counts = outcomes(suite)
    return (
        f"{suite.run.target}/{suite.run.runname}: {_plural(len(suite.cases), 'test', 'tests')},"
        f" {_plural(counts['failure'], 'failure', 'failures')},"
        f" {_plural(counts['error'], 'error', 'errors')}, {counts['skipped']} skipped;"
        f" wrote {where}"
    )


# -- the XML --------------------------------------------------------------------------------


def _system_out(case: Case) -> str:
    row = case.row
    head = f"{case.name}: {row.state} {row.status}"
    head += f" on {row.host}" if row.host else ""
    lines = [head + f", {row.run_duration:.2f} s"]
    if row.comment:
        lines.append(f"comment: {one_line(xml_text(row.comment))}")
    rundir = case.rundir
    if rundir is None:
        lines.append("run directory: none recorded")
    elif case.on_disk:
        lines.append(f"run directory: {rundir}")
    elif not case.steps:
        lines.append(f"run directory: {rundir} (not on disk)")
    else:
        why = " (archived)" if row.archived else ""
        lines.append(f"run directory: {rundir} is no longer on disk{why}: no logs to show")
    if row.final_logf:
        lines.append(f"log: {row.final_logf}" + ("" if case.log else " (not on disk)"))
    if not case.steps:
        lines.append("no steps ran")
    for step in case.steps:
        lines.append(step.line())
        lines.extend(step.log)
    lines.extend(data_line(row) for row in case.data)
    if case.log is not None:
        lines.append(f"[[ATTACHMENT|{case.log.absolute()}]]")
    return "\n".join(lines) + "\n"


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


def _testcase(suite: ET.Element, case: Case) -> None:
    """Add the case's testcase to ``suite``."""
    row = case.row
    element = _element(
        suite, "testcase", classname=row.testname, name=case.name, time=f"{row.run_duration:.3f}"
    )
    if case.data:
        properties = _element(element, "properties")
        for data in case.data:
            name = f"{data.category}/{data.variable}"
            _element(properties, "property", name=name, value=value_text(data.value))
            if data.status and data.status != "n/a":
                _element(properties, "property", name=f"{name}:status", value=data.status)
    outcome, label = verdict(row.state, row.status)
    message = label + (f": {one_line(xml_text(row.comment))}" if row.comment else "")
    if outcome == "skipped":
        _element(element, "skipped", message=message)
    elif outcome != "passed":
        bad = [step.line() for step in case.steps if step.status not in (Status.PASS, None)]
        _element(element, outcome, "\n".join(bad) or None, message=message, type=label)
    _element(element, "system-out", _system_out(case))


def junit_xml(suite: Suite) -> bytes:
    """The report: a JUnit ``<testsuites>`` document holding one ``<testsuite>``, the run.

    One suite for the run, rather than one per test: a JUnit suite is one run
    of tests, so its counts, time and timestamp are the run's, and every
    consumer shows it as one block (GitLab and GitHub reporters list suites;
    Jenkins shows the same result by package and class either way). Each
    testcase's ``classname`` is its test's name, which is what Jenkins and
    GitLab group by, so an itemized test's items sit together under it; its
    ``name`` is ``test/itempath``, which still says which test in flat lists
    (GitHub annotations, failure summaries).
    """
    run = suite.run
    root = ET.Element("testsuites", {"name": xml_text(f"mtpkt {run.target} {run.runname}")})
    element = _element(
        root, "testsuite", name=f"{run.target}/{run.runname}", timestamp=_timestamp(run.event_time)
    )
    properties = _element(element, "properties")
    for name, value in (
        ("target", run.target),
        ("runname", run.runname),
        ("run_id", str(run.id)),
        ("state", run.state),
        ("status", run.status),
    ):
        _element(properties, "property", name=name, value=value)
    for case in suite.cases:
        _testcase(element, case)
    counts = outcomes(suite)
    totals = {
        "tests": str(len(suite.cases)),
        "failures": str(counts["failure"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]),
        "time": f"{sum(case.row.run_duration for case in suite.cases):.3f}",
    }
    element.attrib.update(totals)
    root.attrib.update(totals)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
