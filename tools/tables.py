"""Printing what ``mtpkt runs``, ``tests`` and ``agents`` show: a table for people (times,
counts and words in their colours, fitted to the terminal), or JSON for scripts."""

import contextlib
import datetime
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from mtpkt.pkts.text import one_line
from mtpkt.tools.colours import style_of

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = ["ago", "cell", "console", "outcomes", "print_json", "table", "when", "writing"]


def ago(seconds: float) -> str:
    """A time since, for people: ``3s ago``, ``12m ago``, ``5h ago``, ``2d ago``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def when(ts: float | None) -> str:
    """A local time, for people: ``05-31 14:02`` (empty when not known)."""
    if ts is None:
        return ""
    return datetime.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M")


def cell(text: str) -> "Text":
    """Text on one line (:func:`~mtpkt.pkts.text.one_line`: control characters escaped), cut
    with an ellipsis where its column ends, never wrapped (its column may still be narrowed to
    make room)."""
    from rich.text import Text

    return Text(one_line(text), no_wrap=True, overflow="ellipsis")


def outcomes(counts: Mapping[str, int], prefix: str = "") -> "Text":
    """``5 PASS, 1 FAIL`` after ``prefix``, each word in its colour (:mod:`tools.colours`)."""
    from rich.text import Text

    text = Text(prefix)
    for index, (word, count) in enumerate(counts.items()):
        if index:
            text.append(", ")
        text.append(f"{count} ")
        text.append(word, style=style_of(word))
    return text


def table() -> "Table":
    """An empty table with a header line and no outer frame, so that more fits in 80 columns."""
    from rich import box
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)


def console() -> "Console":
    """The console tables go to: colours on a terminal only; 80 columns when not a terminal
    (``$COLUMNS`` if set)."""
    from rich.console import Console

    return Console(highlight=False, markup=False)  # names and paths may hold [brackets]


def print_json(records: Sequence[Mapping[str, object]]) -> None:
    """One JSON document: a list of objects, one per line inside the brackets."""
    out = sys.stdout
    out.write("[\n" if records else "[")
    for index, record in enumerate(records):
        out.write(json.dumps(record) + (",\n" if index + 1 < len(records) else "\n"))
    out.write("]\n")
    out.flush()


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Around printing: a reader that went away (``| head``) ends the command quietly."""
    try:
        yield
    except BrokenPipeError:
        sys.stdout = None  # no flush error at exit
