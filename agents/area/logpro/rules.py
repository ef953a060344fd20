"""Reading a logpro rule file: the rules it declares, in the order it declares them.

A rule file is Scheme, run by the shared evaluator (:mod:`mtpkt.agents.area.scheme`)
with the core builtins and these, which declare rules rather than compute values:

- ``(expect:KIND in SECTION OP COUNT MESSAGE REGEX)`` for the kinds ``required``,
  ``error``, ``warning``, ``ignore``, ``waive`` (Megatest's files) and ``check``,
  ``abort``, ``skip`` (mtpkt's names for logpro's codes 3, 5 and 6, which no shared
  file uses). ``in`` is a word, ``OP`` one of ``= < > <= >=``, ``REGEX`` a ``#/…/``
  literal, ``(regexp "…")`` or a list of them.
- ``(expect:value in SECTION EXPECTED TOL MESSAGE REGEX [match: N])`` where ``TOL``
  is a number (``|measured - expected| <= TOL``) or an ``OP`` (``measured OP
  expected``, as db.scm:3411-3420 compares test data).
- ``(trigger NAME REGEX)`` and ``(section NAME START-TRIGGER END-TRIGGER)``; the
  section ``"LogFileBody"`` is the whole log and always exists. A rule may name a
  section never declared (fullrun's ezlog_fail/waiver_1.logpro names ``"Body"``):
  that section never opens, so the rule sees no line.
- ``(regexp TEXT [IGNORE-CASE])`` makes a regex from text (Chicken's ``regexp``).
- ``hook:first-error``, ``hook:first-warning``, ``hook:value``: read and kept, never
  run (they run shell commands; mtpkt does not run them).

Arguments are evaluated, so rules may be declared from ``define``, ``lambda``,
``for-each``, ``apply`` and ``conc`` as Megatest's ``results.logpro`` does. Anything
else (an unknown name, a wrong argument, a trigger or section declared twice) is a
:class:`~mtpkt.agents.area.scheme.SchemeError`: one line naming file, line and form.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.scheme.builtins import CORE
from mtpkt.agents.area.scheme.evaluator import Limits, run
from mtpkt.agents.area.scheme.reader import Node, Regex, SchemeError, Source, Symbol, read
from mtpkt.agents.area.scheme.values import (
    UNSPECIFIED,
    Builtin,
    BuiltinError,
    Call,
    Value,
    check_string,
    is_number,
    number_arg,
    shown,
)

__all__ = [
    "COMPARISONS",
    "EXPECT_KINDS",
    "WHOLE_LOG",
    "Code",
    "Expect",
    "Rules",
    "Section",
    "Trigger",
    "ValueRule",
    "load_rules",
    "read_rules",
]

WHOLE_LOG: Final = "LogFileBody"
"""The section that is every line of the log."""


class Code(enum.IntEnum):
    """logpro's exit codes, as launch.scm:198-206 maps them to step statuses."""

    PASS = 0
    FAIL = 1
    WARN = 2
    CHECK = 3
    WAIVED = 4
    ABORT = 5
    SKIP = 6

    @property
    def severity(self) -> int:
        """How bad the code is: Megatest's status order, common.scm:538-551 (PASS < SKIP
        < WARN < WAIVED < CHECK < FAIL < ABORT); the worst code of a log wins."""
        return _SEVERITY.index(self)


_SEVERITY: Final = (Code.PASS, Code.SKIP, Code.WARN, Code.WAIVED, Code.CHECK, Code.FAIL, Code.ABORT)

EXPECT_KINDS: Final[Mapping[str, Code | None]] = {
    "ignore": None,
    "waive": Code.WAIVED,
    "abort": Code.ABORT,
    "skip": Code.SKIP,
    "check": Code.CHECK,
    "required": Code.FAIL,
    "warning": Code.WARN,
    "error": Code.FAIL,
}
"""The kinds of ``expect:``, in the order a line is offered to them (the first rule that
matches claims the line), and the code a rule gives when its count misses (None: none)."""

COMPARISONS: Final = ("=", "<", ">", "<=", ">=")
"""The comparisons a rule may use (as CORE's procedures of the same names)."""


@attrs.frozen
class Expect:
    """An ``expect:KIND`` rule: lines it claims are counted and the count compared."""

    number: int
    """Its place among the file's rules, from 1 (``rule-N`` in the values file)."""
    kind: str
    section: str
    op: str
    count: int | float
    message: str
    patterns: tuple[Regex, ...]
    line: int
    """The line of the form that declared it."""


@attrs.frozen
class ValueRule:
    """An ``expect:value`` rule: every line it matches is a measurement."""

    number: int
    section: str
    expected: int | float
    tolerance: int | float | None
    op: str | None
    """The comparison, when there is no tolerance."""
    message: str
    patterns: tuple[Regex, ...]
    group: int | None
    """``match: N``; None takes group 1 (or the whole match of a pattern without groups)."""
    line: int


@attrs.frozen
class Trigger:
    name: str
    pattern: Regex
    line: int


@attrs.frozen
class Section:
    name: str
    start: str
    """The trigger that opens it (an undeclared trigger never fires)."""
    end: str
    line: int


@attrs.frozen
class Rules:
    """Everything a rule file declares."""

    source: str
    expects: tuple[Expect, ...] = ()
    values: tuple[ValueRule, ...] = ()
    triggers: Mapping[str, Trigger] = attrs.field(factory=dict)
    sections: tuple[Section, ...] = ()
    hooks: tuple[tuple[str, str], ...] = ()
    """``(hook name, command)``, kept for the report, never run."""


_IN: Final = Symbol("in")
_MATCH: Final = Symbol("match:")


def _line(call: Call) -> int:
    """The line of the form being called (the evaluator is the call)."""
    node = getattr(call, "node", None)
    return node.source.position(node.start)[0] if isinstance(node, Node) else 0


def _op(value: Value, who: str) -> str:
    if isinstance(value, Builtin) and value.name in COMPARISONS:
        return value.name
    raise BuiltinError(f"{who} needs a comparison ({' '.join(COMPARISONS)}), not {shown(value)}")


def _patterns(value: Value, who: str) -> tuple[Regex, ...]:
    items = value if isinstance(value, tuple) else (value,)
    if not items or not all(isinstance(item, Regex) for item in items):
        raise BuiltinError(f"{who} needs a regex #/…/ or a list of them, not {shown(value)}")
    return tuple(item for item in items if isinstance(item, Regex))


def _in(value: Value, who: str) -> None:
    if value != _IN:
        raise BuiltinError(f"{who}'s first word must be in, not {shown(value)}")


class _Declared:
    """What one reading declares, and the builtins that declare it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.expects: list[Expect] = []
        self.values: list[ValueRule] = []
        self.triggers: dict[str, Trigger] = {}
        self.sections: dict[str, Section] = {}
        self.hooks: list[tuple[str, str]] = []

    @property
    def count(self) -> int:
        return len(self.expects) + len(self.values)

    def builtins(self) -> dict[str, Value]:
        names: dict[str, Value] = dict(CORE)
        names["in"] = _IN
        names["match:"] = _MATCH
        for kind in EXPECT_KINDS:
            names[f"expect:{kind}"] = self._expect(kind)
        names["expect:value"] = Builtin("expect:value", self._value, 6, 8, calls=True)
        names["trigger"] = Builtin("trigger", self._trigger, 2, 2, calls=True)
        names["section"] = Builtin("section", self._section, 3, 3, calls=True)
        names["regexp"] = Builtin("regexp", _regexp, 1, 4)
        for hook in ("hook:first-error", "hook:first-warning", "hook:value"):
            names[hook] = self._hook(hook)
        return names

    def _expect(self, kind: str) -> Builtin:
        who = f"expect:{kind}"

        def declare(call: Call, *args: Value) -> Value:
            word, section, op, count, message, patterns = args
            _in(word, who)
            self.expects.append(
                Expect(
                    self.count + 1,
                    kind,
                    check_string(section, who),
                    _op(op, who),
                    number_arg(count, who),
                    check_string(message, who),
                    _patterns(patterns, who),
                    _line(call),
                )
            )
            return UNSPECIFIED

        return Builtin(who, declare, 6, 6, calls=True)

    def _value(self, call: Call, *args: Value) -> Value:
        who = "expect:value"
        word, section, expected, tolerance, message, patterns, *extra = args
        _in(word, who)
        group: int | None = None
        if extra:
            if len(extra) != 2 or extra[0] != _MATCH:
                raise BuiltinError(f"{who} ends with match: N, not {shown(tuple(extra))}")
            number = extra[1]
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 100:
                raise BuiltinError(f"{who}'s match: needs a group number, not {shown(number)}")
            group = number
        tol = tolerance if is_number(tolerance) else None
        self.values.append(
            ValueRule(
                self.count + 1,
                check_string(section, who),
                number_arg(expected, who),
                None if tol is None else abs(number_arg(tol, who)),
                None if tol is not None else _op(tolerance, who),
                check_string(message, who),
                _patterns(patterns, who),
                group,
                _line(call),
            )
        )
        return UNSPECIFIED

    def _trigger(self, call: Call, name: Value, pattern: Value) -> Value:
        title = check_string(name, "trigger")
        if title in self.triggers:
            raise BuiltinError(f"trigger {title!r} is declared twice")
        regex = _patterns(pattern, "trigger")
        if len(regex) != 1:
            raise BuiltinError("trigger takes one regex")
        self.triggers[title] = Trigger(title, regex[0], _line(call))
        return UNSPECIFIED

    def _section(self, call: Call, name: Value, start: Value, end: Value) -> Value:
        title = check_string(name, "section")
        if title == WHOLE_LOG or title in self.sections:
            raise BuiltinError(f"section {title!r} is declared twice (or is the whole log)")
        self.sections[title] = Section(
            title, check_string(start, "section"), check_string(end, "section"), _line(call)
        )
        return UNSPECIFIED

    def _hook(self, name: str) -> Builtin:
        def keep(command: Value) -> Value:
            self.hooks.append((name, check_string(command, name)))
            return UNSPECIFIED

        return Builtin(name, keep, 1, 1)

    def rules(self) -> Rules:
        """The rules, once every form has run."""
        return Rules(
            self.name,
            tuple(self.expects),
            tuple(self.values),
            dict(self.triggers),
            tuple(self.sections.values()),
            tuple(self.hooks),
        )


def _regexp(text: Value, *flags: Value) -> Value:
    """Chicken's ``(regexp TEXT [IGNORE-CASE [IGNORE-SPACE [UTF8]]])``."""
    pattern = check_string(text, "regexp")
    chosen = "".join(letter for letter, flag in zip("ix", flags, strict=False) if flag is not False)
    try:
        return Regex(pattern, chosen)
    except ValueError as exc:
        raise BuiltinError(str(exc)) from None


def read_rules(
    text: str, name: str = "rules.logpro", line: int = 1, limits: Limits | None = None
) -> Rules:
    """The rules of a rule file's text (``line``: where the text starts in its file, for
    inline ``[logpro]`` rules of a testconfig).

    Raises:
        SchemeError: the text does not read, a form fails, or a rule is malformed.
    """
    source = Source(name, text, line)
    nodes = read(source)
    declared = _Declared(name)
    if nodes:  # a file of comments only declares nothing (fullrun's wasting_time.logpro)
        run(nodes, declared.builtins(), limits or Limits())
    return declared.rules()


def load_rules(path: Path, limits: Limits | None = None) -> Rules:
    """The rules of a rule file.

    Raises:
        SchemeError: as :func:`read_rules`; a file that cannot be read or decoded is
            one at line 1.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SchemeError(
            f"cannot read the rule file: {exc.strerror}", source=str(path), line=1, column=1,
            form="",
        ) from None  # fmt: skip
    return read_rules(text, str(path), 1, limits)
