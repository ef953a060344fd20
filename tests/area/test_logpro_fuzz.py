"""Fuzzing logpro: no rule file and no log make the engine raise anything but its one
error, a single line naming the rule file and line."""

import re
from typing import Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtpkt.agents.area.logpro import Code, Rules, judge, read_rules
from mtpkt.agents.area.scheme import Limits, SchemeError

SMALL: Final = Limits(steps=3000, depth=40)
PLACE: Final = re.compile(r"^fuzz\.logpro:\d+:\d+: ")

_WORDS: Final = [
    "(",
    ")",
    "[",
    "]",
    "'",
    '"',
    "in",
    "=",
    "<",
    ">",
    ">=",
    "<=",
    "+",
    "0",
    "1",
    "-2",
    "1.5",
    '"LogFileBody"',
    '"Body"',
    '"x"',
    "#/x/",
    "#/(a|b)/i",
    "#/[/",
    "#/a",
    "#t",
    "(list #/ERROR/ #/warn/)",
    '(regexp "a+")',
    "(regexp 5)",
    "match:",
    "2",
    "expect:required",
    "expect:error",
    "expect:warning",
    "expect:ignore",
    "expect:waive",
    "expect:value",
    "expect:check",
    "expect:abort",
    "expect:skip",
    "trigger",
    "section",
    "define",
    "lambda",
    "for-each",
    "apply",
    "conc",
    "hook:value",
    ";",
    "\n",
]
_KINDS: Final = ["required", "error", "warning", "ignore", "waive", "check", "abort", "skip"]
_REGEXES: Final = ["#/a/", "#/b+/", "#/^c/", "#/(\\d+)/", "(list #/a/ #/d/)", "#/A/i"]

words = st.lists(st.sampled_from(_WORDS), max_size=30).map(" ".join)
expects = st.builds(
    '(expect:{} in "{}" {} {} "m" {})'.format,
    st.sampled_from(_KINDS),
    st.sampled_from(["LogFileBody", "S", "T"]),
    st.sampled_from(["=", "<", ">", "<=", ">="]),
    st.integers(-1, 3),
    st.sampled_from(_REGEXES),
)
values = st.builds(
    '(expect:value in "LogFileBody" {} {} "v" {}{})'.format,
    st.sampled_from(["1", "2.5", "-1"]),
    st.sampled_from(["0.5", "0", ">", "<=", '"x"']),
    st.sampled_from(_REGEXES),
    st.sampled_from(["", " match: 1", " match: 0", " match: 3", " match: x"]),
)
structure = st.sampled_from(
    ['(trigger "s" #/^c/)', '(trigger "e" #/b/)', '(section "S" "s" "e")', '(section "T" "e" "s")']
)
rule_files = st.lists(expects | values | structure | words, max_size=12).map("\n".join)
logs = st.lists(st.text(alphabet="abcdABCD1234 .^\\", max_size=20), max_size=15)


def _read_or_refuse(text: str) -> Rules | None:
    """The rules of ``text``, or None when they are refused with one line naming the
    file and the line."""
    try:
        return read_rules(text, "fuzz.logpro", limits=SMALL)
    except SchemeError as error:
        failure = str(error)
    assert PLACE.match(failure), failure
    assert "\n" not in failure
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_files, logs)
def test_rules_and_logs_never_crash(text: str, log: list[str]) -> None:
    """A rule file either reads and judges any log, or is one error naming file and line."""
    rules = _read_or_refuse(text)
    if rules is None:
        return
    result = judge(rules, log)
    assert isinstance(result.code, Code)
    assert result.message.startswith(result.code.name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_as_rules(text: str) -> None:
    """Arbitrary text: read and judged, or one error naming file and line."""
    rules = _read_or_refuse(text)
    if rules is not None:
        judge(rules, ["a", "", "ERROR"])
