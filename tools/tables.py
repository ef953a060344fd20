"""What ``mtpkt runs``, ``tests`` and ``agents`` share: options, opening the area's
databases read-only, colours, times, and printing a table or JSON."""

import argparse
import contextlib
import datetime
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.options import area_option, command_parser
from mtpkt.tools.reach import area_dir

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mtpkt.agents.area import Area
    from mtpkt.store.query import StoreQuery
    from mtpkt.store.rows import RunRow

__all__ = [
    "NO_RUN_YET",
    "ago",
    "console",
    "find_run",
    "load_area",
    "names",
    "cell",
    "open_query",
    "outcomes",
    "print_json",
    "query_of",
    "query_parser",
    "styled",
    "table",
    "when",
    "writing",
]

NO_RUN_YET: Final = "no run yet: start `mtpkt home` and send a run"

_GREEN: Final = ("PASS", "SKIP", "WAIVED", "COMPLETED", "alive")
_YELLOW: Final = (
    "WARN", "CHECK", "running", "RUNNING", "LAUNCHED", "REMOTEHOSTSTART", "lost",
)  # fmt: skip
_RED: Final = (
    "FAIL", "ABORT", "DEAD", "PREQ_FAIL", "PREQ_DISCARDED", "INCOMPLETE", "STUCK", "dead",
)  # fmt: skip
_MAGENTA: Final = ("KILLED", "KILLREQ")
_DIM: Final = ("n/a", "not_started", "NOT_STARTED", "offline", "ARCHIVED", "DELETED")
STYLES: Final[Mapping[str, str]] = {
    **dict.fromkeys(_GREEN, "green"),
    **dict.fromkeys(_YELLOW, "yellow"),
    **dict.fromkeys(_RED, "bold red"),
    **dict.fromkeys(_MAGENTA, "magenta"),
    **dict.fromkeys(_DIM, "dim"),
}
"""The colour of a state, status, outcome or liveness word (others are plain)."""


def query_parser(
    commands: "argparse._SubParsersAction[Any]", name: str, summary: str, doc: str
) -> argparse.ArgumentParser:
    """Register a query's sub-parser with ``--area`` and ``--json``; ``doc`` (the module's
    docstring) is its description."""
    return command_parser(commands, name, summary, doc, parents=[_area_options()])


def _area_options() -> argparse.ArgumentParser:
    """``--area`` and ``--json``, shared by the three queries."""
    options = argparse.ArgumentParser(add_help=False)
    area_option(options)
    options.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (a list of objects) for scripts instead of a table",
    )
    return options


def open_query(given: Path | None) -> "StoreQuery":
    """The databases of the area ``--area`` names (or the one here), opened read-only.

    Raises:
        CliError: as :func:`load_area` and :func:`query_of`.
    """
    return query_of(load_area(given))


def load_area(given: Path | None) -> "Area":
    """The area ``--area`` names, or the one here.

    Raises:
        CliError: not an area, or a bad megatest.config (``BAD_AREA``).
    """
    from mtpkt.agents.area import Area, AreaError

    try:
        return Area.load(area_dir(given))
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.BAD_AREA) from None


def query_of(area: "Area") -> "StoreQuery":
    """The area's databases, opened read-only.

    Raises:
        CliError: no database yet, or one that cannot be read (``ERROR``).
    """
    from mtpkt.store import StoreError
    from mtpkt.store.query import StoreQuery

    dbdir = area.home / area.dbdir  # as the home reads it: a relative dbdir is the area's
    if not (dbdir / "main.db").exists():
        raise CliError(f"{NO_RUN_YET} (no {dbdir / 'main.db'})")
    try:
        return StoreQuery(dbdir)
    except StoreError as exc:
        raise CliError(str(exc)) from None


def find_run(query: "StoreQuery", target: str, runname: str) -> "RunRow":
    """The run of ``target`` and ``runname``.

    Raises:
        CliError: the target does not fit the area's fields (``USAGE``), or
            there is no such run (``ERROR``, naming the runs of the target, or the
            targets that have runs).
    """
    from mtpkt.store import StoreError

    try:
        runs = query.runs(target=target, runname=runname)
    except StoreError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    if runs:
        return runs[0]
    every = query.runs()
    of_target = [run.runname for run in every if run.target == target]
    if of_target:
        raise CliError(f"target {target} has no run {runname!r}; its runs: {names(of_target)}")
    there = f"targets with runs: {names(run.target for run in every)}" if every else "no runs yet"
    raise CliError(f"no run of target {target!r} in {query.dbdir / 'main.db'} ({there})")


def names(values: Iterable[str], most: int = 10) -> str:
    """Names for an error line: sorted, each once, at most ``most`` of them."""
    unique = sorted(set(values))
    shown = ", ".join(unique[:most])
    return shown + (f" … ({len(unique)} in all)" if len(unique) > most else "")


# -- showing ----------------------------------------------------------------------------


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


def styled(word: str) -> "Text":
    """A word in its colour (:data:`STYLES`)."""
    from rich.text import Text

    return Text(word, style=STYLES.get(word, ""))


def cell(text: str) -> "Text":
    """Text cut with an ellipsis where its column ends, never wrapped (its column may still
    be narrowed to make room)."""
    from rich.text import Text

    return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")


def outcomes(counts: Mapping[str, int], prefix: str = "") -> "Text":
    """``5 PASS, 1 FAIL`` after ``prefix``, each outcome in its colour."""
    from rich.text import Text

    text = Text(prefix)
    for index, (word, count) in enumerate(counts.items()):
        if index:
            text.append(", ")
        text.append(f"{count} ")
        text.append(word, style=STYLES.get(word, ""))
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

    return Console(highlight=False)


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
