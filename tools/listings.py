"""What the commands that read an area's files alone share (``mtpkt plan``, ``targets``,
``tests --defined``): its errors said with the right exit code, and a listing printed
as a table or as JSON."""

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.tables import console, print_json, table, writing

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["SHOWN", "first_of", "grid", "listed", "reading_area"]

T = TypeVar("T")

SHOWN: Final = 6
"""Names (items, prerequisites) a table shows in one cell before it says how many more."""


def reading_area(call: Callable[[], T]) -> T:
    """``call()``, which reads the area.

    Raises:
        CliError: a testpatt or target that is wrong (``USAGE``: the command line is), or
            any other error of the area (``BAD_AREA``: a config error, a waiton cycle …).
    """
    from mtpkt.agents.area import AreaError, SelectionError, TargetError

    try:
        return call()
    except (SelectionError, TargetError) as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.BAD_AREA) from None


def grid(*columns: str) -> "Table":
    """A table with these columns: a name ending ``>`` is a number (right, one line), one
    ending ``!`` stays on one line."""
    found = table()
    for name in columns:
        if name.endswith(">"):
            found.add_column(name[:-1], justify="right", no_wrap=True)
        elif name.endswith("!"):
            found.add_column(name[:-1], no_wrap=True)
        else:
            found.add_column(name, overflow="fold")
    return found


def first_of(names: Sequence[str], between: str) -> str:
    """The first :data:`SHOWN` of ``names`` joined by ``between``, and how many more."""
    more = f" … ({len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return between.join(names[:SHOWN]) + more


def listed(
    json: bool, records: Sequence[Mapping[str, object]], draw: "Callable[[Console], None]"
) -> int:
    """Print ``records`` as one JSON list (``json``), else ``draw`` on the console."""
    with writing():
        if json:
            print_json(records)
        else:
            draw(console())
    return ExitCode.OK
