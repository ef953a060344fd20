"""Scheme values: their kinds, their text, and equality.

Numbers are Python ``int`` and ``float`` (never ``bool``), strings ``str``,
symbols :class:`~.reader.Symbol`, lists tuples (there are no improper lists),
and procedures :class:`Procedure` objects: a :class:`Builtin` written in
Python or a ``lambda`` of the evaluator. A value becomes text as Chicken's
``conc`` makes it (:func:`to_text`), which is how Megatest writes a
``#{scheme}`` result into a config line. Results are bounded
(:data:`MAX_TEXT`, :data:`MAX_LIST`) so that doubling a string in a loop fails
instead of filling memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final, Protocol, TypeAlias

import attrs

from mtpkt.agents.area.scheme.reader import Regex, Symbol

__all__ = [
    "MAX_LIST",
    "MAX_TEXT",
    "UNSPECIFIED",
    # Kinds
    "Builtin",
    "BuiltinError",
    "Call",
    "HashTable",
    "Procedure",
    "Value",
    "builtin",
    "calling",
    # Checks of arguments
    "bounded_list",
    "bounded_text",
    "check_string",
    "integer_arg",
    "is_number",
    "is_true",
    "list_arg",
    "number_arg",
    "procedure_arg",
    # Text and equality
    "display",
    "equal",
    "eqv",
    "number_text",
    "shown",
    "to_text",
]

MAX_TEXT: Final = 1_000_000
"""Characters of a string a builtin makes at the most."""
MAX_LIST: Final = 100_000
"""Elements of a list a builtin makes at the most."""


class BuiltinError(Exception):
    """A builtin refuses its arguments; the evaluator names the call that did it."""


class Procedure:
    """Something that can be called: a :class:`Builtin`, or a ``lambda`` of the evaluator."""

    name: str


class _Unspecified:
    """What Chicken returns where Scheme says the value is unspecified (``(if #f #f)``)."""

    def __repr__(self) -> str:
        return "#<unspecified>"


UNSPECIFIED: Final = _Unspecified()


@attrs.frozen
class HashTable:
    """A read-only hash table (what ``tests:get-all`` gives)."""

    entries: Mapping[str, Value]


Value: TypeAlias = (
    "int | float | bool | str | Symbol | Regex | tuple[Value, ...] | Procedure | HashTable"
    " | _Unspecified"
)
"""Every value Scheme code handles here."""


class Call(Protocol):
    """What a builtin that calls procedures (``map``, ``apply`` …) is given."""

    def apply(self, procedure: Procedure, args: Sequence[Value]) -> Value:
        """Call a procedure with arguments (a step of the evaluation, under its limits)."""


@attrs.frozen(eq=False)
class Builtin(Procedure):
    """A procedure written in Python, called with its arguments (and the :class:`Call`
    first when ``calls`` is set)."""

    name: str
    function: Callable[..., Value]
    least: int = 0
    """Fewest arguments."""
    most: int | None = None
    """Most arguments (None: any number)."""
    calls: bool = False

    def invoke(self, call: Call, args: Sequence[Value]) -> Value:
        """Call it.

        Raises:
            BuiltinError: a wrong number or kind of arguments.
        """
        if len(args) < self.least or (self.most is not None and len(args) > self.most):
            wanted = (
                f"{self.least}"
                if self.most == self.least
                else f"{self.least} or more"
                if self.most is None
                else f"{self.least} to {self.most}"
            )
            raise BuiltinError(f"{self.name} takes {wanted} argument(s), not {len(args)}")
        return self.function(call, *args) if self.calls else self.function(*args)

    def __repr__(self) -> str:
        return f"#<procedure ({self.name} ...)>"


def builtin(
    registry: dict[str, Value], *names: str, least: int = 0, most: int | None = None
) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    """Register a Python function under ``names`` (the first one names it in errors)."""

    def register(function: Callable[..., Value]) -> Callable[..., Value]:
        for name in names:
            registry[name] = Builtin(names[0], function, least, most)
        return function

    return register


def calling(
    registry: dict[str, Value], name: str, *, least: int, most: int | None = None
) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    """Register a builtin that calls procedures: it gets the :class:`Call` first."""

    def register(function: Callable[..., Value]) -> Callable[..., Value]:
        registry[name] = Builtin(name, function, least, most, calls=True)
        return function

    return register


# -- kinds of values -----------------------------------------------------------------------


def is_true(value: Value) -> bool:
    """Scheme's truth: everything but ``#f`` is true (0 and "" too)."""
    return value is not False


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_arg(value: Value, who: str) -> int | float:
    if not is_number(value):
        raise BuiltinError(f"{who} needs numbers, not {shown(value)}")
    assert isinstance(value, int | float)
    return value


def integer_arg(value: Value, who: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BuiltinError(f"{who} needs whole numbers, not {shown(value)}")
    return value


def check_string(value: Value, who: str) -> str:
    """``value`` if it is a string.

    Raises:
        BuiltinError: it is not, naming ``who`` wanted one.
    """
    if not isinstance(value, str):
        raise BuiltinError(f"{who} needs a string, not {shown(value)}")
    return value


def list_arg(value: Value, who: str) -> tuple[Value, ...]:
    if not isinstance(value, tuple):
        raise BuiltinError(f"{who} needs a list, not {shown(value)}")
    return value


def procedure_arg(value: Value, who: str) -> Procedure:
    if not isinstance(value, Procedure):
        raise BuiltinError(f"{who} needs a procedure, not {shown(value)}")
    return value


def bounded_text(text: str, who: str) -> str:
    if len(text) > MAX_TEXT:
        raise BuiltinError(f"{who} would make a string of over {MAX_TEXT} characters")
    return text


def bounded_list(items: tuple[Value, ...], who: str) -> tuple[Value, ...]:
    if len(items) > MAX_LIST:
        raise BuiltinError(f"{who} would make a list of over {MAX_LIST} elements")
    return items


# -- text -------------------------------------------------------------------------------------

_CLOSE: Final = object()
_SPACE: Final = object()


def number_text(number: int | float) -> str:
    if isinstance(number, int):
        return str(number)
    if math.isnan(number):
        return "+nan.0"
    if math.isinf(number):
        return "+inf.0" if number > 0 else "-inf.0"
    return repr(number)


def _atom_text(value: object, *, strict: bool) -> str:
    if isinstance(value, bool):
        return "#t" if value else "#f"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, str | Symbol):
        return str(value)
    if strict and isinstance(value, Procedure | HashTable | Regex):
        raise BuiltinError(f"{shown(value)} cannot become text")
    if isinstance(value, Regex):
        return str(value)
    return "#<hash-table>" if isinstance(value, HashTable) else repr(value)


def _pieces(value: Value, *, strict: bool) -> Iterator[str]:
    """``display``'s text of a value, piece by piece; without recursion, so that a list
    nested ten thousand deep is written like any other."""
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if item is _CLOSE or item is _SPACE:
            yield ")" if item is _CLOSE else " "
        elif isinstance(item, tuple):
            yield "("
            stack.append(_CLOSE)
            for index, element in enumerate(reversed(item)):
                if index:
                    stack.append(_SPACE)
                stack.append(element)
        else:
            yield _atom_text(item, strict=strict)


def shown(value: Value, width: int = 40) -> str:
    """A value as an error message shows it: its ``display`` text, cut short."""
    text = ""
    for piece in _pieces(value, strict=False):
        text += piece
        if len(text) > width:
            return repr(text[: width - 1] + "…")
    return repr(text)


def display(value: Value) -> str:
    """``value`` as Scheme's ``display`` writes it: strings without quotes, ``#t``/``#f``,
    lists in parentheses.

    Raises:
        BuiltinError: the text would be longer than :data:`MAX_TEXT`.
    """
    return _joined(_pieces(value, strict=False))


def _joined(pieces: Iterator[str]) -> str:
    parts, size = [], 0
    for piece in pieces:
        size += len(piece)
        if size > MAX_TEXT:
            raise BuiltinError(f"a value whose text is over {MAX_TEXT} characters")
        parts.append(piece)
    return "".join(parts)


def to_text(value: Value) -> str:
    """``value`` as Chicken's ``conc`` (``->string``) makes it text: a string as it is, a
    number in decimal, ``#t``/``#f``, a list as ``display`` writes it (``(a b 1)``), an
    unspecified value as ``#<unspecified>``.

    Raises:
        BuiltinError: a procedure or hash table (whose text in Chicken is an address), or
            text longer than :data:`MAX_TEXT`.
    """
    return _joined(_pieces(value, strict=True))


# -- equality ---------------------------------------------------------------------------------


def eqv(a: Value, b: Value) -> bool:
    """Scheme's ``eqv?``: the same number (and exactness), symbol or boolean, both empty
    lists, or the very same procedure or list.

    Two strings are never ``eqv?`` here: Chicken compares string objects, so that
    ``(case "a" (("a") 1))`` never matches, and Python shares equal short strings, which
    would make it match only sometimes.
    """
    if isinstance(a, str) or isinstance(b, str):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if is_number(a) and is_number(b):
        return type(a) is type(b) and a == b
    if isinstance(a, Symbol) and isinstance(b, Symbol):
        return a == b
    if isinstance(a, tuple) and isinstance(b, tuple) and not a and not b:
        return True
    return a is b


def equal(a: Value, b: Value) -> bool:
    """Scheme's ``equal?``: ``eqv?``, or strings and lists alike element by element.

    Raises:
        BuiltinError: the values are too large to compare (over ten times :data:`MAX_LIST`
            elements, which lists sharing their parts can reach in a few steps).
    """
    pending: list[tuple[Value, Value]] = [(a, b)]
    for _ in range(MAX_LIST * 10):  # bounded: shared sublists can make a huge tree
        if not pending:
            return True
        x, y = pending.pop()
        if x is y:
            continue
        if isinstance(x, str) and isinstance(y, str):
            if x != y:
                return False
        elif isinstance(x, tuple) and isinstance(y, tuple):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif not eqv(x, y):
            return False
    raise BuiltinError("equal?: the values are too large to compare")
