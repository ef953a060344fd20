"""Running logpro rules over a log: which rules each line meets, and the exit code.

How a log is judged (docs/logpro.md says the same, with the reasons):

- The log is read line by line. ``"LogFileBody"`` holds every line; a declared
  section opens on a line its start trigger matches (that line is in it) and closes
  after a later line its end trigger matches (that line is in it too); it may open
  again. An undeclared trigger never fires (Megatest's example declares a section
  ending at ``"EndBody"`` and no such trigger).
- Each line is offered to the ``expect:`` rules of the sections open on it, kind by
  kind in the order of :data:`~.rules.EXPECT_KINDS` (ignore, waive, abort, skip,
  check, required, warning, error) and, within a kind, in file order; the first rule
  whose regex (any of its list) matches claims the line and counts it. So an
  ``ignore`` hides a line from the errors, and a ``required`` masks the warnings
  (fullrun's ezlog_warn/lookittmp.logpro says so).
- ``expect:value`` rules do not claim lines: every line of their section that one of
  their regexes matches is a measurement (group ``match: N``, else group 1, else the
  whole match), passing when it is a decimal number within tolerance (or meets the
  comparison, ``measured OP expected``), failing otherwise.
- After the last line, each ``expect:`` rule whose ``count OP COUNT`` is false
  *misses* and gives its kind's code (ignore: none); a failed measurement gives FAIL;
  a value rule that measured nothing gives nothing. The exit code is the worst code
  by Megatest's status order (:attr:`~.rules.Code.severity`), PASS if none.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import attrs

from mtpkt.agents.area.logpro.rules import (
    EXPECT_KINDS,
    WHOLE_LOG,
    Code,
    Expect,
    Rules,
    ValueRule,
)

__all__ = ["MAX_SAMPLES", "ExpectResult", "Measurement", "Result", "judge"]

MAX_SAMPLES: Final = 10
"""Lines kept per rule for the report (the count is exact)."""

_COMPARE: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
"""A measurement's text that is a number (Python's float() takes more: "1_0", " 1")."""
_ORDER: Final = {kind: index for index, kind in enumerate(EXPECT_KINDS)}


@attrs.define
class ExpectResult:
    """An ``expect:`` rule after the log: its count and the first lines it claimed."""

    rule: Expect
    count: int = 0
    samples: list[tuple[int, str]] = attrs.field(factory=list)

    @property
    def met(self) -> bool:
        """Whether ``count OP COUNT`` holds."""
        return _COMPARE[self.rule.op](self.count, self.rule.count)

    @property
    def code(self) -> Code:
        """What the rule gives: PASS when met, else its kind's code."""
        missed = EXPECT_KINDS[self.rule.kind]
        return Code.PASS if self.met or missed is None else missed


@attrs.frozen
class Measurement:
    """One line an ``expect:value`` rule matched."""

    line: int
    text: str
    measured: float | None
    """None: the matched text is no number (or the group does not exist)."""
    passed: bool


@attrs.frozen
class Result:
    """The judgement of a log."""

    code: Code
    expects: tuple[ExpectResult, ...]
    values: tuple[tuple[ValueRule, tuple[Measurement, ...]], ...]
    lines: int
    """Lines read."""

    @property
    def message(self) -> str:
        """One line: the code and the first rule that gave it."""
        for result in self.expects:
            if result.code is self.code and self.code is not Code.PASS:
                rule = result.rule
                return (
                    f"{self.code.name}: {rule.message} (expect:{rule.kind} {rule.op} "
                    f"{rule.count}, counted {result.count}, rule at line {rule.line})"
                )
        for value, measurements in self.values:
            failed = [m for m in measurements if not m.passed]
            if failed and self.code is Code.FAIL:
                return (
                    f"FAIL: {value.message} (measured {failed[0].measured} at log line "
                    f"{failed[0].line}, rule at line {value.line})"
                )
        return self.code.name


class _Sections:
    """Which sections are open, line by line."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.open: set[str] = set()

    def _fires(self, trigger: str, line: str) -> bool:
        found = self.rules.triggers.get(trigger)
        return found is not None and found.pattern.compiled.search(line) is not None

    def on(self, line: str) -> tuple[set[str], set[str]]:
        """The sections open on this line, and those that close after it."""
        closing = set()
        for section in self.rules.sections:
            if section.name in self.open:
                if self._fires(section.end, line):
                    closing.add(section.name)
            elif self._fires(section.start, line):
                self.open.add(section.name)
        return {WHOLE_LOG, *self.open}, closing


def _measure(rule: ValueRule, number: int, line: str) -> Measurement | None:
    for pattern in rule.patterns:
        match = pattern.compiled.search(line)
        if match is None:
            continue
        group = rule.group if rule.group is not None else min(1, pattern.compiled.groups)
        text = match.group(group) if group <= pattern.compiled.groups else None
        measured = float(text) if text is not None and _NUMBER.fullmatch(text) else None
        return Measurement(number, line, measured, measured is not None and _passes(rule, measured))
    return None


def _passes(rule: ValueRule, measured: float) -> bool:
    if rule.tolerance is not None:
        return abs(measured - rule.expected) <= rule.tolerance
    assert rule.op is not None  # a value rule has a tolerance or a comparison
    return _COMPARE[rule.op](measured, rule.expected)


def judge(rules: Rules, lines: Iterable[str]) -> Result:
    """Run ``rules`` over the lines of a log (without their line ends).

    Returns:
        The code, each rule's count and each measurement.
    """
    expects = [ExpectResult(rule) for rule in rules.expects]
    offered = sorted(expects, key=lambda result: (_ORDER[result.rule.kind], result.rule.number))
    measured: dict[int, list[Measurement]] = {rule.number: [] for rule in rules.values}
    sections = _Sections(rules)
    count = 0
    for count, line in enumerate(lines, start=1):
        active, closing = sections.on(line)
        for result in offered:
            if result.rule.section in active and any(
                pattern.compiled.search(line) for pattern in result.rule.patterns
            ):
                result.count += 1
                if len(result.samples) < MAX_SAMPLES:
                    result.samples.append((count, line))
                break
        for rule in rules.values:
            if rule.section in active and (found := _measure(rule, count, line)) is not None:
                measured[rule.number].append(found)
        sections.open -= closing
    codes = [result.code for result in expects]
    if any(not m.passed for found in measured.values() for m in found):
        codes.append(Code.FAIL)
    worst = max(codes, key=lambda code: code.severity, default=Code.PASS)
    values = tuple((rule, tuple(measured[rule.number])) for rule in rules.values)
    return Result(worst, tuple(expects), values, count)
