"""What a ``megatest`` call from inside a test reports: checked first, then packets.

The ``megatest`` command (:mod:`mtpkt.tools.intest`) sends one call per
invocation, holding the parts Megatest handles in one run of its program, in
megatest.scm's order (:1819-2017): test data from ``-load-test-data``, the
log of ``-setlog``, ``-set-toplog``, ``-summarize-items``, a step of ``-step``
or ``-runstep``, and the state, status and value of ``-test-status`` /
``-set-values``. :func:`check` reads and checks every part (a bad word, bad
CSV, a call naming another test) before anything is reported, so a bad call
records nothing; :func:`report` then turns the parts into ``StatusChange``,
``Step`` and ``TestData`` packets through the test's reporter.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from mtpkt import pkts
from mtpkt.agents.area.errors import AreaError
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.area.testpatt import TestPatt
from mtpkt.agents.host.report import Reporter
from mtpkt.pkts.testdata import DataError, DataRow, read_csv

__all__ = [
    "AUTO",
    "CallError",
    "Checked",
    "InTest",
    "auto_status",
    "check",
    "report",
    "status_word",
]

AUTO: Final = "AUTO"
"""The status that asks for the test's status from its own test data (db.scm:3270-3287)."""

_STATUS_WORDS: Final = frozenset(status.value for status in pkts.Status)
_NAMES: Final = ("target", "runname", "testpatt", "item")
"""Options that say which test a status-setting call is for: it must be the caller's own."""


class CallError(ValueError):
    """A call that cannot be done; the message is the one line the caller prints."""


class InTest:
    """One running test instance as its calls see it: its identity, its process and the test
    data it reported (for ``AUTO``)."""

    def __init__(self, ref: TestRef, process: Any) -> None:
        self.ref = ref
        self.process = process
        """The test's :class:`~mtpkt.agents.host.runner.TestProcess` (``set_status``)."""
        self.rows: dict[tuple[str, str], DataRow] = {}
        """The test's data rows by (category, variable): a later row replaces an earlier one."""
        self.state = pkts.State.RUNNING
        self.status = pkts.Status.NA
        """The last state and status the test set itself (what ``-setlog`` alone keeps)."""


@attrs.frozen
class Checked:
    """A call's parts, read and checked."""

    rows: tuple[DataRow, ...] = ()
    logfile: str = ""
    step: tuple[str, pkts.StepState, pkts.Status, int | None, str, str] | None = None
    """Name, state, status, exit code, log and comment of a step."""
    change: tuple[pkts.State, pkts.Status | str, str] | None = None
    """State, status (or :data:`AUTO`) and comment of ``-test-status``."""


def status_word(word: str) -> pkts.Status | str:
    """A status as Megatest reads it: a number is PASS when 0 and FAIL otherwise
    (megatest.scm:1999-2002); ``AUTO``; else one of Megatest's status words.

    Raises:
        CallError: no status Megatest knows.
    """
    text = word.strip()
    try:
        return pkts.Status.PASS if float(text) == 0 else pkts.Status.FAIL
    except ValueError:
        pass
    if text == AUTO:
        return AUTO
    try:
        return pkts.Status(text)
    except ValueError:
        raise CallError(f"bad :status {word!r}: not a Megatest status or a number") from None


def _state(word: str) -> pkts.State:
    try:
        return pkts.State(word.strip())
    except ValueError:
        raise CallError(f"bad :state {word!r}: not a Megatest state") from None


def _text(parts: Mapping[str, Any], key: str) -> str:
    value = parts.get(key, "")
    if not isinstance(value, str):
        raise CallError(f"bad call: {key} is not text")
    return value


def _names_me(key: str, given: str, ref: TestRef) -> bool:
    """Whether ``-key given`` names the test ``ref`` (a testpatt: matches it)."""
    if key != "testpatt":
        return given == {"target": ref.target, "runname": ref.runname, "item": ref.item}[key]
    try:
        return TestPatt.parse(given).matches(ref.test, ref.item)
    except AreaError:
        return False


def _names(test: InTest, names: Mapping[str, Any]) -> None:
    """Refuse a call whose ``-target``/``-runname``/``-testpatt``/``-item`` name another test."""
    for key in _NAMES:
        given = names.get(key)
        if given is None:
            continue
        if not isinstance(given, str) or not _names_me(key, given, test.ref):
            raise CallError(f"-{key} {given} names another test: a test reports only for itself")


def _step(
    parts: Mapping[str, Any],
) -> tuple[str, pkts.StepState, pkts.Status, int | None, str, str]:
    name = _text(parts, "name")
    if not name:
        raise CallError("-step needs a step name")
    state = _text(parts, "state")
    if state not in ("start", "end"):
        raise CallError(f"bad :state {state!r} for -step: start or end")
    word = _text(parts, "status") or "n/a"
    if state == "start" and word not in _STATUS_WORDS:
        # Megatest keeps any word; its own area starts every step with ":status running".
        # A step that starts has no verdict yet: n/a.
        word = "n/a"
    status = status_word(word)
    if status == AUTO:
        raise CallError("bad :status AUTO for -step: AUTO is for -test-status")
    code = parts.get("exit_code")
    if code is not None and not isinstance(code, int):
        raise CallError("bad call: exit_code is not a number")
    assert isinstance(status, pkts.Status)
    step_state = pkts.StepState(state)
    return name, step_state, status, code, _text(parts, "logfile"), _text(parts, "comment")


def _value_row(values: Mapping[str, Any]) -> DataRow | None:
    """The row ``-test-status``/``-set-values`` record when ``:value`` is given, as
    tests.scm:458-480 builds it: expected and tol ``n/a`` unless given, no comment."""
    if "value" not in values:
        return None
    cells = {key: str(values.get(key, default)) for key, default in _VALUE_CELLS.items()}
    return DataRow.judged(*cells.values())


_VALUE_CELLS: Final = {
    "category": "",
    "variable": "",
    "value": "",
    "expected": "n/a",
    "tol": "n/a",
    "units": "",
    "comment": "",
    "status": "",
    "type": "",
}


def check(test: InTest, parts: Mapping[str, Any]) -> Checked:
    """Read and check a call's parts against its test.

    Raises:
        CallError: a bad word, bad CSV, a call for another test, a malformed call.
    """
    _names(test, parts.get("names") or {})
    rows: list[DataRow] = []
    if "data" in parts:
        try:
            rows.extend(read_csv(_text(parts, "data")))
        except DataError as error:
            raise CallError(f"-load-test-data: {error}") from None
    step = _step(parts["step"]) if "step" in parts else None
    change = None
    if "status" in parts:
        status_part = parts["status"]
        if (row := _value_row(status_part.get("values") or {})) is not None:
            rows.append(row)
        if status_part.get("set"):
            state, status = _text(status_part, "state"), _text(status_part, "status")
            if not state or not status:
                raise CallError("-test-status needs :state and :status")
            change = (_state(state), status_word(status), _text(status_part, "comment"))
    return Checked(tuple(rows), _text(parts, "setlog"), step, change)


def auto_status(rows: Sequence[DataRow], status: pkts.Status) -> pkts.Status:
    """``AUTO``: FAIL with a row that fails, else PASS with one that passes unless the status
    is WARN or FAIL, else the status (db.scm:3270-3287, 3783-3790)."""
    verdicts = {row.status.lower() for row in rows}
    if "fail" in verdicts:
        return pkts.Status.FAIL
    if "pass" in verdicts and status not in (pkts.Status.WARN, pkts.Status.FAIL):
        return pkts.Status.PASS
    return status


def report(test: InTest, call: Checked, reporter: Reporter) -> Callable[[], None]:
    """Report a checked call; returns what to remember of it once its packets are stored.

    The state change goes first: it takes the test's lock (see :meth:`Reporter.together`).

    Raises:
        CallError: the test has ended (nothing is reported for it).
    """
    state, final = test.state, test.status
    if call.change is not None or call.logfile:
        state, status, comment = call.change or (test.state, test.status, "")
        rows = [*test.rows.values(), *call.rows]
        final = auto_status(rows, test.status) if status == AUTO else pkts.Status(status)
        if not test.process.set_status(state, final, comment, call.logfile):
            raise CallError(f"{test.ref} has ended: nothing more is recorded for it")
    if call.rows:
        reporter.test_data(test.ref, call.rows)
    if call.step is not None:
        name, step_state, step_status, code, logfile, comment = call.step
        reporter.step(
            test.ref,
            name,
            step_state,
            status=step_status,
            exit_code=code,
            logfile=logfile,
            comment=comment,
        )

    def remember() -> None:
        test.state, test.status = state, final
        test.rows.update(((row.category, row.variable), row) for row in call.rows)

    return remember
