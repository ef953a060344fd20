"""Waivers: a FAIL becomes WAIVED when the last run of the test was waived and still applies.

Megatest's ``tests:test-set-status!`` (tests.scm:399-440): when a test is to
be set FAIL, it looks up the previous run's record of the same test (same
target, another run name, the newest run that has it:
``db:get-previous-test-run-record``). If that record is ``COMPLETED``/``WAIVED``,
the comment becomes the one given, else the previous one, and the testconfig's
``[waivers]`` are checked (``tests:check-waiver-eligibility``,
tests.scm:335-397): in the test's run directory, for each ``NAME RULE GLOB``,
the command is ``[waiver_rules] RULE``, or, without such a rule, the logpro
rule when ``NAME.logpro`` exists, else the diff rule; ``%file1%`` is
``<rundir>/GLOB``, ``%file2%`` the previous run's ``<rundir>/GLOB``,
``%waivername%`` NAME. When every command exits 0 the status is WAIVED.

The logpro rule (``diff %file1% %file2% | logpro NAME.logpro NAME.html``)
runs ``diff`` and judges its output with mtpkt's own logpro engine, which
writes ``NAME.html`` and ``NAME.dat``; a ``[waiver_rules]`` command runs with
``bash`` as written. The home finds the previous record and sends it with the
task, only for tests that have ``[waivers]`` (:class:`Previous`).
Differences: a ``[waivers]`` value that is not ``RULE GLOB`` makes the test
not eligible (Megatest would run a command built from ``#f``); each command
may run :data:`WAIVER_TIMEOUT` seconds.
"""

import logging
import re
import subprocess
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.job import TestJob, Waiver
from mtpkt.agents.area.logpro import Code, judge, load_rules
from mtpkt.agents.area.logpro.report import write_reports
from mtpkt.agents.area.scheme import SchemeError
from mtpkt.pkts.enums import State, Status

__all__ = ["DIFF_RULE", "LOGPRO_RULE", "WAIVER_TIMEOUT", "Previous", "eligible", "waive"]

_log = logging.getLogger(__name__)

DIFF_RULE: Final = "diff %file1% %file2%"
LOGPRO_RULE: Final = "diff %file1% %file2% | logpro %waivername%.logpro %waivername%.html"
"""Megatest's two built-in rules (tests.scm:346-347)."""
WAIVER_TIMEOUT: Final = 300.0
"""Seconds a waiver's command may run; then it fails."""
_WAIVER: Final = re.compile(r"^(\S+)\s+(.*)$")


@attrs.frozen
class Previous:
    """The previous run's record of a test, as the home found it."""

    state: str
    status: str
    comment: str
    rundir: str

    @classmethod
    def of(cls, fields: tuple[str, ...]) -> "Previous | None":
        """From a task's :attr:`~mtpkt.pkts.link.Task.previous`; None when it holds none."""
        return cls(*fields) if len(fields) == 4 else None


def waive(
    job: TestJob, previous: Previous | None, status: Status, comment: str | None
) -> tuple[Status, str | None]:
    """The status and comment a test is set to instead of ``status``/``comment``
    (tests.scm:405-440); ``comment`` None keeps the test's comment."""
    if status is not Status.FAIL or previous is None:
        return status, comment
    if (previous.state, previous.status) != (State.COMPLETED, Status.WAIVED):
        return status, comment
    comment = comment or previous.comment
    if eligible(job, previous):
        return Status.WAIVED, comment
    return status, comment


def eligible(job: TestJob, previous: Previous) -> bool:
    """Whether every ``[waivers]`` entry's command succeeds (tests.scm:335-397); False
    without any."""
    if not job.waivers or not job.rundir.is_dir():
        return False
    return all(_passes(job, previous, waiver) for waiver in job.waivers)


def _passes(job: TestJob, previous: Previous, waiver: Waiver) -> bool:
    parts = _WAIVER.match(waiver.value)
    if parts is None:
        _log.warning("%s: [waivers] %s %r is not RULE GLOB", job.ref, waiver.name, waiver.value)
        return False
    rule, glob = parts.group(1), parts.group(2)
    command = job.waiver_rules.get(rule)
    has_logpro = (job.rundir / f"{waiver.name}.logpro").exists()
    if command is None and has_logpro:
        return _logpro_rule(job, previous, waiver.name, glob)
    command = _fill(command or DIFF_RULE, job.rundir, previous.rundir, glob, waiver.name)
    return _run(job, command).returncode == 0


def _fill(rule: str, rundir: Path, previous: str, glob: str, name: str) -> str:
    return (
        rule.replace("%waivername%", name)
        .replace("%file2%", f"{previous}/{glob}")
        .replace("%file1%", f"{rundir}/{glob}")
    )


def _logpro_rule(job: TestJob, previous: Previous, name: str, glob: str) -> bool:
    diff = _run(job, _fill(DIFF_RULE, job.rundir, previous.rundir, glob, name), capture=True)
    try:
        rules = load_rules(job.rundir / f"{name}.logpro")
    except SchemeError as exc:
        _log.warning("%s: waiver %s: %s", job.ref, name, exc)
        return False
    result = judge(rules, diff.stdout.decode(errors="replace").splitlines())
    try:
        write_reports(result, job.rundir / f"{name}.html", f"{name}.logpro")
    except OSError as exc:
        _log.warning("%s: waiver %s: cannot write its report: %s", job.ref, name, exc)
    return result.code is Code.PASS


def _run(
    job: TestJob, command: str, *, capture: bool = False
) -> subprocess.CompletedProcess[bytes]:
    _log.info("%s: waiver command %r", job.ref, command)
    try:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=job.rundir,
            env=dict(job.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=WAIVER_TIMEOUT,
            check=False,
            start_new_session=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _log.warning("%s: waiver command %r: %s", job.ref, command, exc)
        return subprocess.CompletedProcess(command, 1, b"", b"")
