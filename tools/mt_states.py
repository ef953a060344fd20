"""``megatest`` on existing runs: which runs the selectors name, ``-set-state-status``,
``-lock``/``-unlock`` and ``-set-run-status``/``-get-run-status``.

Megatest's actions on existing runs (``-remove-runs``, ``-set-state-status``, ``-archive``,
``-kill-runs``) read the runs whose target and name match the selectors, ``%`` patterns both
(``runs:operate-on``, runs.scm:1959-1990), and act on the tests of each that match
``-testpatt`` and the ``:state``/``:status`` filters (comma lists). Here the runs are read from
the area's databases, read-only, as ``mtpkt runs`` does; a run with no matching test is left
alone, as Megatest leaves it, and so is a locked run (runs.scm:2002).
"""

import sys
from typing import TYPE_CHECKING

from mtpkt.tools.errors import CliError
from mtpkt.tools.intest_args import Args
from mtpkt.tools.options import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from mtpkt.pkts import State, Status
    from mtpkt.store.query import StoreQuery
    from mtpkt.store.rows import RunRow
    from mtpkt.tools.mt_manage import Which
    from mtpkt.tools.reach import HomeLink

__all__ = ["filters", "lock", "run_status", "runs_of", "selected_runs", "set_state_status"]


def filters(args: Args) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``:state``/``-state`` and ``:status``/``-status`` filters (common.scm's
    ``args-get-state``/``-status``): comma lists of ``%`` patterns, empty for none."""
    state = args.get(":state", "-state") or ""
    status = args.get(":status", "-status") or ""
    return (
        tuple(word for word in state.split(",") if word),
        tuple(word for word in status.split(",") if word),
    )


def selected_runs(args: Args, which: "Which", *, exact: bool = True) -> list[tuple[str, str, str]]:
    """``(target, runname, testpatt)`` of each existing run the selectors name that has a test
    they select; none when the area has no database yet. With ``:state``/``:status`` filters
    and ``exact``, the test pattern names exactly the tests selected (for packets that carry
    no filters of their own).

    Raises:
        CliError: a bad test pattern, or a database that cannot be read.
    """
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.agents.area.testpatt import any_of
    from mtpkt.store import StoreError

    try:
        patt = TestPatt.parse(which.testpatt)
    except AreaError as exc:
        raise CliError(str(exc)) from None
    only_states, only_statuses = filters(args)
    state_fits, status_fits = any_of(only_states), any_of(only_statuses)
    query = _query()
    if query is None:
        return []
    try:
        found = []
        for run in query.runs(target=which.target, runname=which.runname):
            if run.locked:
                print(
                    f"megatest: run {run.target}/{run.runname} is locked: passed by",
                    file=sys.stderr,
                )
                continue
            chosen = [
                f"{test.testname}/{test.item_path}"
                for test in query.tests(run.id)
                if patt.matches(test.testname, test.item_path)
                and state_fits(test.state)
                and status_fits(test.status)
            ]
            if chosen:
                narrowed = exact and (only_states or only_statuses)
                testpatt = ",".join(chosen) if narrowed else which.testpatt
                found.append((run.target, run.runname, testpatt))
            else:
                print(
                    f"megatest: run {run.target}/{run.runname}: no test selected", file=sys.stderr
                )
        return found
    except StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        query.close()


def new_state_status(args: Args) -> "tuple[State, Status]":
    """The state and status ``-set-state-status STATE,STATUS`` names.

    Raises:
        CliError: not ``STATE,STATUS`` (megatest.scm:106, runs.scm:1983-1986), or a state or
            status mtpkt does not know.
    """
    from mtpkt.pkts import State, Status

    words = (args.get("-set-state-status") or "").split(",")
    if len(words) < 2:
        raise CliError(
            "the parameter to -set-state-status is a comma delimited string. E.g. COMPLETED,FAIL"
        )
    try:
        state = State(words[0])
    except ValueError:
        raise CliError(f"-set-state-status: {words[0]!r} is not a state mtpkt knows") from None
    try:
        return state, Status(words[1])
    except ValueError:
        raise CliError(f"-set-state-status: {words[1]!r} is not a status mtpkt knows") from None


def set_state_status(args: Args, which: "Which", link: "HomeLink") -> None:
    """``-set-state-status STATE,STATUS``: a ``setstate`` packet for each run selected.

    Raises:
        CliError: as :func:`new_state_status`; the home's refusal.
    """
    from mtpkt.pkts.control import SetState
    from mtpkt.tools.mt_manage import send_and_follow

    state, status = new_state_status(args)
    only_states, only_statuses = filters(args)
    for target, runname, testpatt in selected_runs(args, which, exact=False):
        packet = SetState(
            target=target,
            runname=runname,
            testpatt=testpatt,
            state=state,
            status=status,
            only_states=only_states,
            only_statuses=only_statuses,
            comment=args.get("-m") or "",
        )
        print(
            f"megatest: set {testpatt} of run {target}/{runname} to {state}/{status}",
            file=sys.stderr,
        )
        send_and_follow(packet, link, ack=True)


def _query() -> "StoreQuery | None":
    """The area's databases, read-only; None before its first run."""
    from mtpkt.tools.local_area import load_area, query_of

    area = load_area(None)
    if not (area.home / area.dbdir / "main.db").exists():
        return None
    return query_of(area)


def runs_of(which: "Which") -> "list[RunRow]":
    """The existing runs whose target and name match the selectors (``%`` patterns).

    Raises:
        CliError: a database that cannot be read.
    """
    from mtpkt.store import StoreError

    query = _query()
    if query is None:
        return []
    try:
        return query.runs(target=which.target, runname=which.runname)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        query.close()


def run_status(args: Args, which: "Which", link: "HomeLink | None") -> None:
    """``-set-run-status S [-m comment]`` or ``-get-run-status``, on the first run the
    selectors name (megatest.scm:1085-1105; ``n/a`` for a status never set, db.scm:2517).

    Raises:
        MegatestError: no run matches ("No matching run found.", exit 1).
    """
    from mtpkt.pkts.control import SetRun
    from mtpkt.tools.mt_manage import MegatestError

    runs = runs_of(which)
    if not runs:
        raise MegatestError("No matching run found.")
    run = runs[0]
    status = args.get("-set-run-status")
    if status is None:
        print(run.run_status or "n/a")
        return
    assert link is not None, "a home is reached for -set-run-status"
    comment = args.get("-m") or ""
    link.ask(
        SetRun(target=run.target, runname=run.runname, status=status, comment=comment),
        DEFAULT_TIMEOUT,
    )


def lock(args: Args, which: "Which", link: "HomeLink") -> None:
    """``-lock`` / ``-unlock`` every run the selectors name (runs.scm:2367-2381): unlocking
    asks first, on stdin, as Megatest does (``y`` unlocks; anything else, or no answer,
    passes the run by)."""
    from mtpkt.pkts.control import SetRun

    locking = args.has("-lock")
    for run in runs_of(which):
        if not locking:
            print(f"Do you really wish to unlock run {run.id}?\n   y/n: ", flush=True)
            if sys.stdin.readline().strip() != "y":
                print(f"megatest: skipping lock/unlock on {run.id}", file=sys.stderr)
                continue
        link.ask(SetRun(target=run.target, runname=run.runname, lock=locking), DEFAULT_TIMEOUT)
        word = "locked" if locking else "unlocked"
        print(f"megatest: {word} run {run.target}/{run.runname} ({run.id})", file=sys.stderr)
