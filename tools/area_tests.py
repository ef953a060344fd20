"""``mtpkt tests --defined``: the tests the area defines, read from its files (no run needed).

Each test: its name, its items (how many its [items]/[itemstable] make, or "from a
command" when a [system …] command makes them as the test comes up to run), what it
waits on, its priority, and its [test_meta] tags and description. --json prints one JSON
list of objects with the fields "test", "items" (a number; null when a command makes them),
"itemized", "waiton", "priority", "tags" and "description".
"""

import argparse
from typing import TYPE_CHECKING

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.listings import first_of, grid, listed, reading_area
from mtpkt.tools.local_area import load_area
from mtpkt.tools.tables import cell

if TYPE_CHECKING:
    from rich.console import Console

    from mtpkt.agents.area.defined import DefinedTest

__all__ = ["DEFINED_HELP", "list_defined", "record"]

DEFINED_HELP = (
    "list the tests the area defines (items, waiton, tags), read from its files: no run"
    " needed, no -r; -t reads them with that target's runconfig variables"
)
"""The help of ``mtpkt tests --defined``."""


def record(test: "DefinedTest") -> dict[str, object]:
    """A test as a JSON object (the fields the module lists)."""
    return {
        "test": test.name,
        "items": test.items,
        "itemized": test.itemized,
        "waiton": list(test.waiton),
        "priority": test.priority,
        "tags": list(test.tags),
        "description": test.description,
    }


def _items(test: "DefinedTest") -> str:
    if test.items is None:
        return "from a command"
    return str(test.items) if test.itemized else ""


def list_defined(args: argparse.Namespace) -> int:
    """Print the tests ``--testpatt`` names (``-t``: read for that target).

    Raises:
        CliError: no --defined and no -t and -r, or -r with it, or a wrong testpatt or
            target (USAGE); a config that cannot be read (BAD_AREA).
    """
    from mtpkt.agents.area.defined import defined_tests

    if not args.defined:
        raise CliError("give -t and -r (a run's records), or --defined", ExitCode.USAGE)
    if args.runname:
        raise CliError("--defined lists what the area defines: it takes no -r", ExitCode.USAGE)
    area = load_area(args.area)
    found = reading_area(lambda: defined_tests(area, args.testpatt, args.target or None))

    def draw(out: "Console") -> None:
        out.print(f"{len(found)} test{'s' if len(found) != 1 else ''} defined in {area.home}")
        shown = grid("test", "items!", "waits on", "pri>", "tags", "description")
        for test in found:
            shown.add_row(
                test.name,
                _items(test),
                first_of(test.waiton, " "),
                str(test.priority),
                ",".join(test.tags),
                cell(test.description),
            )
        out.print(shown)

    return listed(args.json, [record(test) for test in found], draw)
