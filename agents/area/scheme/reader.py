"""Scheme text to data: every node with the line and column where it was written.

The reader knows the small part of Chicken Scheme's syntax that configs and
rule files use: lists in ``( )`` or ``[ ]`` (Chicken reads both as lists),
strings with ``\\"``, ``\\\\``, ``\\n``, ``\\t`` and ``\\r`` escapes, integers
and decimals, booleans ``#t``/``#f`` (``#true``/``#false``), symbols, ``'x``
for ``(quote x)``, ``;`` comments to the end of the line, and the regex
literals ``#/…/`` of logpro rule files (flags ``i``, ``m``, ``s``, ``x`` after
the closing slash; ``\\/`` is a slash inside). Everything else Scheme has
(characters ``#\\a``, vectors, dotted pairs, quasiquote, block comments …) is
refused with a :class:`SchemeError` naming where it stands, rather than read
as something else.

:func:`read` returns :class:`Node` objects: a node's ``value`` is an atom
(``int``, ``float``, ``bool``, ``str``, :class:`Symbol` or :class:`Regex`) or,
for a list, a tuple of nodes. The evaluator runs nodes; ``quote`` turns them
into plain values (:func:`datum`).
"""

import re
import warnings
from typing import Final, TypeAlias

import attrs

from mtpkt.pkts.text import one_line

__all__ = [
    "FIXNUM_LIMIT",
    "MAX_FORM_TEXT",
    "MAX_NESTING",
    "Atom",
    "Node",
    "Regex",
    "SchemeError",
    "Source",
    "Symbol",
    "datum",
    "read",
]

MAX_FORM_TEXT: Final = 80
"""Characters of a form an error message quotes at the most."""
FIXNUM_LIMIT: Final = 2**62
"""Chicken 4's integers (fixnums) are 62-bit: from -2**62 to 2**62 - 1."""
MAX_NESTING: Final = 200
"""Lists nested this deep at the most (deeper text is refused, not read)."""


class SchemeError(Exception):
    """Scheme that cannot be read or evaluated; the only error this package raises.

    ``str(error)`` is one line: ``source:line:column: message: form``.
    """

    def __init__(self, message: str, *, source: str, line: int, column: int, form: str) -> None:
        self.message = one_line(message)
        self.source = source
        self.line = line
        self.column = column
        self.form = one_line(form)
        if len(self.form) > MAX_FORM_TEXT:
            self.form = self.form[: MAX_FORM_TEXT - 1] + "…"
        where = f"{source}:{line}:{column}"
        super().__init__(f"{where}: {self.detail}")

    @property
    def detail(self) -> str:
        """The message and the form, without the place (for errors that name it already)."""
        return f"{self.message}: {self.form}" if self.form else self.message


@attrs.frozen
class Symbol:
    """A Scheme symbol; two symbols with the same name are the same symbol."""

    name: str

    def __str__(self) -> str:
        return self.name


_REGEX_FLAGS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


@attrs.frozen
class Regex:
    """A regular expression: a ``#/…/`` literal, or what logpro's ``regexp`` makes.

    Chicken's irregex and Python's ``re`` agree on the syntax rule files use (classes,
    groups, alternation, ``\\d``, ``\\s``); a pattern Python cannot compile is refused.
    """

    pattern: str
    flags: str = ""
    compiled: "re.Pattern[str]" = attrs.field(eq=False, repr=False)

    @compiled.default
    def _compile(self) -> "re.Pattern[str]":
        return compile_regex(self.pattern, self.flags)

    def __str__(self) -> str:
        return f"#/{self.pattern}/{self.flags}"


def compile_regex(pattern: str, flags: str = "") -> "re.Pattern[str]":
    """A pattern compiled with ``#/…/`` flags.

    Raises:
        ValueError: an unknown flag, or a pattern that does not compile.
    """
    bits = 0
    for flag in flags:
        if flag not in _REGEX_FLAGS:
            raise ValueError(f"unknown regex flag {flag!r} (only i, m, s, x)")
        bits |= _REGEX_FLAGS[flag]
    try:
        with warnings.catch_warnings():  # "possible nested set" and such: the pattern is theirs
            warnings.simplefilter("ignore")
            return re.compile(pattern, bits)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"bad regex: {exc}") from None


Atom: TypeAlias = int | float | bool | str | Symbol | Regex
"""What a node that is no list holds."""


@attrs.frozen
class Source:
    """Text being read, with where its first character stands in its file."""

    name: str
    """The file (or another name for the text), for errors."""
    text: str
    line: int = 1
    """The file line of the text's first character."""
    column: int = 1
    """The column of the text's first character on that line."""

    def position(self, offset: int) -> tuple[int, int]:
        """The file line and column of a character of the text."""
        before = self.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return self.line, self.column + offset
        return self.line + newlines, offset - before.rfind("\n")

    def error(self, message: str, start: int, end: int) -> SchemeError:
        """A :class:`SchemeError` at the text from ``start`` to ``end``."""
        line, column = self.position(start)
        return SchemeError(
            message, source=self.name, line=line, column=column, form=self.text[start:end]
        )


@attrs.frozen(eq=False)
class Node:
    """One datum as written: an atom, or a list of nodes; and where it stands."""

    value: "Atom | tuple[Node, ...]"
    source: Source = attrs.field(repr=False)
    start: int
    """Offset of its first character in the source text."""
    end: int
    """Offset just after its last character."""

    @property
    def text(self) -> str:
        """The node as written."""
        return self.source.text[self.start : self.end]

    @property
    def items(self) -> "tuple[Node, ...] | None":
        """The list's nodes; None for an atom."""
        return self.value if isinstance(self.value, tuple) else None

    def error(self, message: str) -> SchemeError:
        """A :class:`SchemeError` about this node, naming where it stands."""
        return self.source.error(message, self.start, self.end)


_TOKEN: Final = re.compile(
    r"""(?P<space>\s+|;[^\n]*)
      | (?P<open>[(\[])
      | (?P<close>[)\]])
      | (?P<quote>')
      | (?P<string>")
      | (?P<regex>\#/)
      | (?P<atom>[^\s()\[\]";']+)""",
    re.VERBOSE,
)
_INTEGER: Final = re.compile(r"[+-]?\d+")
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_BOOLEANS: Final = {"#t": True, "#true": True, "#f": False, "#false": False}
_CLOSING: Final = {"(": ")", "[": "]"}
_REFUSED_PREFIX: Final = {
    "`": "quasiquote (`) is not supported",
    ",": "unquote (,) is not supported",
    "#": "this # syntax is not supported (only #t, #f and #/regex/)",
    "|": "|symbols| are not supported",
}


class _Reader:
    """The state of one read: the source and the offset reached."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.offset = 0

    def next_token(self) -> "re.Match[str] | None":
        """The next token that is not blank or a comment (None at the end)."""
        text = self.source.text
        while self.offset < len(text):
            match = _TOKEN.match(text, self.offset)
            assert match is not None  # every character starts one of the alternatives
            self.offset = match.end()
            if match.lastgroup != "space":
                return match
        return None

    def datum(self, token: "re.Match[str]", depth: int) -> Node:
        """The datum starting with ``token``."""
        kind, start = token.lastgroup, token.start()
        if depth > MAX_NESTING:
            raise self.source.error(f"nested deeper than {MAX_NESTING} lists", start, start + 1)
        if kind == "open":
            return self.list(token, depth)
        if kind == "close":
            raise self.source.error(f"unexpected '{token.group()}'", start, token.end())
        if kind == "quote":
            following = self.next_token()
            if following is None:
                raise self.source.error("nothing after '", start, token.end())
            quoted = self.datum(following, depth + 1)
            quote = Node(Symbol("quote"), self.source, start, start + 1)
            return Node((quote, quoted), self.source, start, quoted.end)
        if kind == "string":
            return self.string(start)
        if kind == "regex":
            return self.regex(start)
        return Node(self.atom(token), self.source, start, token.end())

    def list(self, opening: "re.Match[str]", depth: int) -> Node:
        start = opening.start()
        closing = _CLOSING[opening.group()]
        items: list[Node] = []
        while True:
            token = self.next_token()
            if token is None:
                raise self.source.error(f"'{opening.group()}' is never closed", start, start + 1)
            if token.lastgroup == "close":
                if token.group() != closing:
                    raise self.source.error(
                        f"'{opening.group()}' closed by '{token.group()}'", start, token.end()
                    )
                return Node(tuple(items), self.source, start, token.end())
            items.append(self.datum(token, depth + 1))

    def string(self, start: int) -> Node:
        text = self.source.text
        parts: list[str] = []
        position = start + 1
        while position < len(text):
            char = text[position]
            if char == '"':
                self.offset = position + 1
                return Node("".join(parts), self.source, start, position + 1)
            if char == "\\":
                escaped = text[position + 1 : position + 2]
                if escaped == "\n":  # a backslash at the end of a line joins the lines
                    position += 2
                    continue
                if escaped not in _ESCAPES:
                    raise self.source.error(
                        f"unknown escape '\\{escaped}' in a string", position, position + 2
                    )
                parts.append(_ESCAPES[escaped])
                position += 2
                continue
            parts.append(char)
            position += 1
        raise self.source.error("string never closed", start, min(len(text), start + 20))

    def regex(self, start: int) -> Node:
        """A ``#/…/flags`` literal: up to the first slash no backslash escapes."""
        text = self.source.text
        parts: list[str] = []
        position = start + 2
        while position < len(text) and text[position] != "/":
            if text[position] == "\\" and text[position + 1 : position + 2] == "/":
                parts.append("/")
                position += 2
                continue
            parts.append(
                text[position : position + 2] if text[position] == "\\" else text[position]
            )
            position += len(parts[-1])
        if position >= len(text):
            raise self.source.error("regex never closed", start, min(len(text), start + 20))
        flags = re.match(r"[A-Za-z]*", text[position + 1 :])
        assert flags is not None  # [A-Za-z]* matches the empty text at least
        self.offset = position + 1 + flags.end()
        try:
            regex = Regex("".join(parts), flags.group())
        except ValueError as exc:
            raise self.source.error(str(exc), start, self.offset) from None
        return Node(regex, self.source, start, self.offset)

    def atom(self, token: "re.Match[str]") -> Atom:
        text = token.group()
        if text in _BOOLEANS:
            return _BOOLEANS[text]
        if _INTEGER.fullmatch(text):
            return _integer(text)
        if _DECIMAL.fullmatch(text):
            return float(text)
        if text[0] in _REFUSED_PREFIX:
            raise self.source.error(_REFUSED_PREFIX[text[0]], token.start(), token.end())
        if text == ".":
            raise self.source.error("dotted pairs are not supported", token.start(), token.end())
        return Symbol(text)


def _integer(text: str) -> int | float:
    """An integer literal; one past Chicken's 62-bit fixnums reads as a decimal, as in
    Chicken 4 (which has no big integers)."""
    if len(text.lstrip("+-")) <= 19:
        number = int(text)
        if -FIXNUM_LIMIT <= number < FIXNUM_LIMIT:
            return number
    return float(text)


def read(source: Source) -> list[Node]:
    """Every datum of a text, in order.

    Raises:
        SchemeError: the text is not Scheme this reader knows, naming line and column.
    """
    reader = _Reader(source)
    nodes = []
    while (token := reader.next_token()) is not None:
        nodes.append(reader.datum(token, 0))
    return nodes


def datum(node: Node) -> "Atom | tuple[object, ...]":
    """A node as a plain value (what ``quote`` gives): lists become tuples of values."""
    items = node.items
    if items is None:
        return node.value  # an atom: it is no list
    return tuple(datum(item) for item in items)
