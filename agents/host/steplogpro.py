"""logpro in a step, as launch.scm runs it: which rules, the judgement, its files and data.

After an ezstep ends (launch.scm:80-206):

* logpro applies when ``<step>.logpro`` is in the run directory (copied from
  the test's directory), or the testconfig's ``[logpro]`` has rules for the
  step, which are written to ``<step>.logpro`` first (launch.scm:100-114);
* it judges ``<step>.log`` and writes ``<step>.html`` and ``<step>.dat``
  (launch.scm:172); its code is the step's (:mod:`~mtpkt.agents.host.steprules`);
* each section of ``<step>.dat`` becomes a row of test data
  (``db:logpro-dat->csv``, db.scm:3290-3357), and the step's comment is
  ``PASS``, or ``STATUS: message`` (``launch:load-logpro-dat``, launch.scm:62-79).

The engine is mtpkt's own (:mod:`mtpkt.agents.area.logpro`), run in this
process. Rules that cannot be read give FAIL (what ``mtpkt logpro`` exits
with), the error line as the step's comment and in its log. Megatest loads a
step's ``.dat`` twice (launch.scm:263 and :351), so its rows are in its
``test_data`` twice; here they are reported once.
"""

from pathlib import Path

import attrs

from mtpkt.agents.area.job import StepSpec
from mtpkt.agents.area.logpro import Code, Rules, judge, load_rules, read_rules
from mtpkt.agents.area.logpro.report import write_reports
from mtpkt.agents.area.scheme import SchemeError
from mtpkt.pkts.testdata import DataRow
from mtpkt.pkts.text import one_line
from mtpkt.store.files import atomic_write

__all__ = ["Judged", "apply", "judge_step", "read_dat", "rules_for", "step_rows"]

_EXTRACTED = ";; logpro file extracted from testconfig\n;;\n"
"""The head of a ``<step>.logpro`` written from the testconfig (launch.scm:108-110)."""


@attrs.frozen
class Judged:
    """What logpro made of a step's log."""

    code: int
    """logpro's exit code (:class:`~mtpkt.agents.area.logpro.Code`)."""
    comment: str
    """The step's comment: ``PASS``, ``STATUS: message``, or why the rules did not run."""
    rows: tuple[DataRow, ...] = ()
    """The ``.dat``'s test data."""
    html: str = ""
    """``<step>.html`` when written; the test's log from now on (launch.scm:195)."""


def apply(rundir: Path, spec: StepSpec) -> Judged | None:
    """Judge ezstep ``spec``'s log in ``rundir`` when logpro applies to it; None when not."""
    try:
        rules = rules_for(rundir, spec)
    except OSError as exc:
        return Judged(int(Code.FAIL), f"FAIL: cannot write {spec.name}.logpro: {one_line(exc)}")
    return None if rules is None else judge_step(rundir, spec.name, rules)


def rules_for(rundir: Path, spec: StepSpec) -> Rules | SchemeError | None:
    """The logpro rules that apply to ``spec`` in ``rundir``: None when none do.

    ``<step>.logpro`` in the run directory wins; else the testconfig's ``[logpro]``
    entry, written there first and read with the testconfig's line, so an error names
    where the user wrote it.

    Raises:
        OSError: ``<step>.logpro`` cannot be written.
    """
    path = rundir / f"{spec.name}.logpro"
    try:
        if path.exists():
            return load_rules(path)
        if spec.logpro is None:
            return None
        # Replaced, never written through: a link of that name may point out of the rundir.
        atomic_write(path, (_EXTRACTED + spec.logpro.text + "\n").encode())
        return read_rules(spec.logpro.text, spec.logpro.path, spec.logpro.line)
    except SchemeError as exc:
        return exc


def judge_step(rundir: Path, step: str, rules: Rules | SchemeError) -> Judged:
    """Judge ``<step>.log`` by ``rules``, write ``<step>.html`` and ``<step>.dat`` and read
    the latter back, as Megatest does after logpro."""
    if isinstance(rules, SchemeError):
        return Judged(int(Code.FAIL), f"FAIL: {one_line(rules)}")
    log = rundir / f"{step}.log"
    try:
        with log.open(encoding="utf-8", errors="replace", newline="") as file:
            result = judge(rules, (line.rstrip("\r\n") for line in file))
        html = rundir / f"{step}.html"
        write_reports(result, html, f"{step}.logpro")
        dat = read_dat((rundir / f"{step}.dat").read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        return Judged(int(Code.FAIL), f"FAIL: logpro on {log.name}: {one_line(exc)}")
    return Judged(int(result.code), _comment(dat), step_rows(dat, step), html.name)


def read_dat(text: str) -> dict[str, dict[str, str]]:
    """A ``.dat`` file's sections of ``key value`` lines, in the order written."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
        elif current is not None:
            key, _, value = line.partition(" ")
            current[key] = value.strip()
    return sections


def _comment(dat: dict[str, dict[str, str]]) -> str:
    """``launch:load-logpro-dat``'s comment (launch.scm:75-78)."""
    final = dat.get("final", {})
    status = final.get("exit-status")
    if status is None:
        return ""
    if status == "PASS":
        return "PASS"
    message = final.get("message") or "no message"
    # mtpkt's engine starts its message with the status already: not twice.
    return message if message.startswith(f"{status}: ") else f"{status}: {message}"


def step_rows(dat: dict[str, dict[str, str]], step: str) -> tuple[DataRow, ...]:
    """The test data of a ``.dat``, as ``db:logpro-dat->csv`` maps it (db.scm:3319-3357).

    As there, a rule's ``type`` cell is its ``expected`` value (db.scm:3346).
    """
    rows = []
    for name, keys in dat.items():
        if name == "final":
            cells = (
                keys.get("exit-code", ""),
                "0",
                "0",
                "n/a",
                keys.get("message", ""),
                keys.get("exit-status", ""),
                "logpro",
            )
        else:
            cells = (
                keys.get("measured", "n/a"),
                keys.get("expected", "0.0"),
                keys.get("tolerance", "0.0"),
                "n/a",
                keys.get("comment") or keys.get("desc") or "n/a",
                keys.get("status", "n/a"),
                keys.get("expected", "n/a"),
            )
        rows.append(DataRow.judged(step, name, *cells))
    return tuple(rows)
