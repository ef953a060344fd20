"""``mtpkt targets``: the targets the area's runconfigs.config defines (no run needed).

Each target: its name (the key values of megatest.config's [fields], joined by /), how
many variables its section sets, and its TESTPATT (or [default]'s) when one is set. A
section that does not fit the fields (a different number of parts) is listed too, marked:
no run can have it as its target. --json prints one JSON list of objects with the fields
"target", "variables", "testpatt" ("" when none) and "fits". Works whether the home runs
or not; what `megatest -list-targets` prints, with more to it.

examples:
  mtpkt targets
  mtpkt targets --json | jq -r '.[].target'
"""

import argparse
from typing import TYPE_CHECKING, Any

from mtpkt.tools.listings import grid, listed, reading_area
from mtpkt.tools.local_area import load_area
from mtpkt.tools.options import query_parser
from mtpkt.tools.tables import cell

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from rich.console import Console

    from mtpkt.agents.area.defined import DefinedTarget

__all__ = ["add_parser", "record", "run"]


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt targets``."""
    parser = query_parser(
        commands, "targets", "list the targets the area's runconfigs.config defines", __doc__
    )
    parser.set_defaults(run=run)


def record(target: "DefinedTarget") -> dict[str, object]:
    """A target as a JSON object (the fields listed in ``mtpkt targets --help``: its own)."""
    import attrs

    return attrs.asdict(target)


def run(args: argparse.Namespace) -> int:
    """List the area's targets."""
    from mtpkt.agents.area.defined import defined_targets

    area = load_area(args.area)
    found = reading_area(lambda: defined_targets(area))
    keys = "/".join(area.fields) or "(none)"

    def draw(out: "Console") -> None:
        if not found:
            where = area.home / "runconfigs.config"
            out.print(f"no targets: {where} has no target section")
            out.print(f"(any target of the keys {keys} runs with [default] alone)", style="dim")
            return
        out.print(f"{len(found)} target{'s' if len(found) != 1 else ''}, keys {keys}")
        shown = grid("target", "vars>", "TESTPATT")
        for target in found:
            name = target.target if target.fits else f"{target.target} (does not fit the keys)"
            shown.add_row(name, str(target.variables), cell(target.testpatt))
        out.print(shown)

    return listed(args.json, [record(target) for target in found], draw)
