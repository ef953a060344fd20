"""The area a command works on, and its databases opened read-only: where ``--area``,
``$MT_RUN_AREA_HOME`` or the current directory lead, the area loaded from there, and a run
found in its store.

Every failure is a :class:`CliError` with the exit code that says what is wrong:
the area (``BAD_AREA``), the command line (``USAGE``) or the store (``ERROR``).
"""

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.agents.area import Area
    from mtpkt.store.query import StoreQuery
    from mtpkt.store.rows import RunRow

__all__ = [
    "NO_RUN_YET",
    "area_dir",
    "area_note",
    "env_chose",
    "find_run",
    "load_area",
    "names",
    "open_query",
    "query_of",
]

NO_RUN_YET: Final = "no run yet: start `mtpkt home` and send a run"


def area_dir(given: Path | None) -> Path:
    """The area: ``--area``, else ``$MT_RUN_AREA_HOME``, else the nearest directory from the
    current one up that holds a ``megatest.config`` (else the current directory)."""
    chosen = given or os.environ.get("MT_RUN_AREA_HOME")
    if chosen:
        return Path(os.path.abspath(chosen))
    here = Path(os.path.abspath("."))
    for directory in (here, *here.parents):
        if (directory / "megatest.config").is_file():
            return directory
    return here


def area_note(given: Path | None) -> str:
    """A line naming the area when ``$MT_RUN_AREA_HOME`` chose it (not ``--area``, not the
    directory here), for a command to show where it read; "" otherwise."""
    if given is None and os.environ.get("MT_RUN_AREA_HOME"):
        return f"area {area_dir(None)} (from $MT_RUN_AREA_HOME)"
    return ""


def load_area(given: Path | None) -> "Area":
    """The area ``--area`` names, or the one here (:func:`area_dir`).

    Raises:
        CliError: not an area, or a bad megatest.config (``BAD_AREA``).
    """
    from mtpkt.agents.area import Area, AreaError

    try:
        return Area.load(area_dir(given))
    except AreaError as exc:
        raise CliError(f"{exc}{env_chose(given)}", ExitCode.BAD_AREA) from None


def env_chose(given: Path | None) -> str:
    """`` (from $MT_RUN_AREA_HOME)`` when that variable chose the area, to follow an error
    about it (a stale value in the shell is a common cause); "" otherwise."""
    return " (from $MT_RUN_AREA_HOME)" if area_note(given) else ""


def open_query(given: Path | None) -> "StoreQuery":
    """The databases of the area ``--area`` names (or the one here), opened read-only.

    Raises:
        CliError: as :func:`load_area` and :func:`query_of`.
    """
    return query_of(load_area(given))


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
    if len(runs) > 1:
        raise CliError(
            f"{target}/{runname} matches {len(runs)} runs: "
            f"{names(f'{run.target}/{run.runname}' for run in runs)}; name one"
        )
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
