"""``mtpkt tail --until-done`` told when its selection matches nothing yet.

A misspelt run name (``-r nightlly``) or test pattern (``--testpatt unti``)
made ``tail --until-done`` print "waiting for a selected run to start" and wait
for ever. :func:`nothing_matches` reads the area's databases (when this host
has them) and says on the first line what the selection misses, naming what
there is; ``tail`` still waits, as asked, and ``--wait-timeout`` bounds the wait.
"""

from pathlib import Path
from typing import Final

__all__ = ["SHOWN", "nothing_matches"]

SHOWN: Final = 8
"""Names listed at most in the line."""


def nothing_matches(area: Path, target: str, runname: str, testpatt: str) -> str:
    """The line saying that no run, or no test of the selected runs, matches the selection;
    "" when something matches, or when this host cannot read the area's databases."""
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.store import StoreError
    from mtpkt.store.query import StoreQuery
    from mtpkt.tools.errors import CliError
    from mtpkt.tools.local_area import load_area

    try:
        loaded = load_area(area)
        dbdir = loaded.home / loaded.dbdir
        if not (dbdir / "main.db").exists():
            return ""
        patt = TestPatt.parse(testpatt)
        with StoreQuery(dbdir) as query:
            runs = query.runs(target=target, runname=runname)
            if not runs:
                there = sorted({run.runname for run in query.runs(target=target)})
                what = f"run {runname!r}" if runname else "run"
                where = f" of {target}" if target else ""
                return f"no {what}{where} yet (runs there: {_names(there)}); waiting for it"
            rows = [row for run in runs for row in query.tests(run.id)]
    except (CliError, AreaError, StoreError, OSError):  # a hint only: the wait goes on
        return ""
    if not rows or any(patt.matches(row.testname, row.item_path) for row in rows):
        return ""
    names = sorted({row.testname for row in rows})
    return f"no test of the selected runs matches --testpatt {testpatt!r} (tests: {_names(names)})"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN]) or "none"
    return shown + (f" … and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
