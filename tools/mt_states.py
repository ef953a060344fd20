"""``megatest`` on existing runs: which runs the selectors name, and ``-set-state-status``.

Megatest's actions on existing runs (``-remove-runs``, ``-set-state-status``, ``-archive``,
``-kill-runs``) read the runs whose target and name match the selectors, ``%`` patterns both
(``runs:operate-on``, runs.scm:1959-1990), and act on the tests of each that match
``-testpatt`` and the ``:state``/``:status`` filters (comma lists). Here the runs are read from
the area's databases, read-only, as ``mtpkt runs`` does; a run with no matching test is left
alone, as Megatest leaves it.
"""

import sys
from typing import TYPE_CHECKING

from mtpkt.tools.errors import CliError
from mtpkt.tools.intest_args import Args

if TYPE_CHECKING:
    from mtpkt.tools.mt_manage import Which
    from mtpkt.tools.reach import HomeLink

__all__ = ["filters", "selected_runs", "set_state_status"]


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
    from mtpkt.agents.area.testpatt import glob
    from mtpkt.store import StoreError
    from mtpkt.tools.local_area import load_area, query_of

    try:
        patt = TestPatt.parse(which.testpatt)
    except AreaError as exc:
        raise CliError(str(exc)) from None
    area = load_area(None)
    if not (area.home / area.dbdir / "main.db").exists():
        return []
    states, statuses = ([glob(word) for word in words] for words in filters(args))
    query = query_of(area)
    try:
        found = []
        for run in query.runs(target=which.target, runname=which.runname):
            chosen = [
                f"{test.testname}/{test.item_path}"
                for test in query.tests(run.id)
                if patt.matches(test.testname, test.item_path)
                and (not states or any(state.fullmatch(test.state) for state in states))
                and (not statuses or any(status.fullmatch(test.status) for status in statuses))
            ]
            if chosen:
                narrowed = exact and (states or statuses)
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


def set_state_status(args: Args, which: "Which", link: "HomeLink") -> None:
    """``-set-state-status STATE,STATUS``: a ``setstate`` packet for each run selected.

    Raises:
        CliError: not ``STATE,STATUS`` (megatest.scm:106, runs.scm:1983-1986), or a state or
            status mtpkt does not know; the home's refusal.
    """
    from mtpkt.pkts import State, Status
    from mtpkt.pkts.control import SetState
    from mtpkt.tools.mt_manage import send_and_follow

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
        status = Status(words[1])
    except ValueError:
        raise CliError(f"-set-state-status: {words[1]!r} is not a status mtpkt knows") from None
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
