"""Properties of the small Scheme: what is written reads back the same, and no text or
program makes it hang or raise anything but its one error."""

import math
import re
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from mtpkt.agents.area.scheme import CORE, Limits, SchemeError, Source, evaluate, read, to_text
from mtpkt.agents.area.scheme.context import SchemeContext, config_builtins
from mtpkt.agents.area.scheme.evaluator import SPECIAL_FORMS
from mtpkt.agents.area.scheme.reader import FIXNUM_LIMIT, Symbol, datum
from mtpkt.agents.area.scheme.values import BuiltinError, Value

SMALL = Limits(steps=3000, depth=40)
"""Enough for what random programs do; a loop among them stops fast."""

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

integers = st.integers(min_value=-FIXNUM_LIMIT, max_value=FIXNUM_LIMIT - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
strings = st.text(max_size=20)
names_of_symbols = st.from_regex(
    r"[a-zA-Z*<>=!?+\-/:_%][a-zA-Z0-9*<>=!?+\-/:_%.>]{0,10}", fullmatch=True
)
symbols = names_of_symbols.filter(lambda name: not _NUMBER.fullmatch(name)).map(Symbol)
atoms = integers | floats | strings | symbols | st.booleans()
data = st.recursive(atoms, lambda inner: st.lists(inner, max_size=5).map(tuple), max_leaves=25)
blank = st.sampled_from([" ", "\n", "\t", "  ", " ; a comment\n", "\n\n  "])


def write(value: object, space: str = " ") -> str:
    """Text that reads as ``value`` (Scheme's ``write``)."""
    if isinstance(value, bool):
        return "#t" if value else "#f"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Symbol):
        return value.name
    assert isinstance(value, tuple)
    return "(" + space.join(write(item, space) for item in value) + ")"


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=500)
@given(data, blank)
def test_what_is_written_reads_back_the_same(value: object, space: str) -> None:
    (node,) = read(Source("gen.scm", write(value, space)))
    assert same(datum(node), value)


@settings(max_examples=300)
@given(st.lists(data, max_size=4), blank)
def test_quoted_data_evaluates_to_itself(values: list[object], space: str) -> None:
    text = space.join(f"'{write(value, space)}" for value in values)
    if not values:
        return
    assert same(evaluate(Source("gen.scm", text), CORE), values[-1])


@settings(max_examples=300)
@given(st.lists(data, min_size=1, max_size=4))
def test_positions_point_at_each_node(values: list[object]) -> None:
    text = "\n ".join(write(value) for value in values)
    source = Source("gen.scm", text, line=5)
    for node, value in zip(read(source), values, strict=True):
        assert same(datum(read(Source("again.scm", node.text))[0]), value)
        line, column = source.position(node.start)
        assert line == 5 + text[: node.start].count("\n")
        assert column >= 1


def _fine(text: str, builtins: Mapping[str, Value] = CORE) -> None:
    """Reading and evaluating ``text`` gives a value or one SchemeError line; nothing else
    (a procedure's value has no text: evaluate_config makes that a SchemeError too)."""
    failure = ""
    try:
        to_text(evaluate(Source("fuzz.scm", text), builtins, SMALL))
    except SchemeError as exc:
        failure = str(exc)
    except BuiltinError as exc:
        assert "cannot become text" in str(exc)  # noqa: PT017
    if failure:
        assert "\n" not in failure
        assert failure.startswith("fuzz.scm:")


@settings(max_examples=1000)
@given(st.text(max_size=200) | st.text(alphabet="()[]'\"#;\\ \n\tab1.-+`,|", max_size=80))
def test_no_text_makes_the_reader_or_evaluator_crash(text: str) -> None:
    _fine(text)


CONFIG = config_builtins(SchemeContext(toppath="/area"), {"A": "1"}, effects_in=None)
names = st.sampled_from(sorted({*CONFIG, *SPECIAL_FORMS, "else", "=>", "x", "y", "f", "loop"}))
programs = st.recursive(
    integers | strings | st.booleans() | names.map(Symbol),
    lambda inner: st.lists(inner, max_size=5).map(tuple),
    max_leaves=40,
)


@settings(max_examples=1000)
@given(st.lists(programs, min_size=1, max_size=3))
def test_no_program_hangs_or_raises_another_error(forms: list[object]) -> None:
    text = " ".join(write(form) for form in forms)
    _fine(text)
    _fine(text, CONFIG)  # create-directory refused: no effects
