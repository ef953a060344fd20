"""What Megatest runs again by itself: ``allow-auto-rerun`` and the second pass.

Megatest's ``-run`` (``runs:run-tests``) runs again by itself:

* at its start, the records of the tests the testpatt names that are in one of
  the ``[setup] allow-auto-rerun`` STATE/STATUS pairs (runs.scm:453-462): they
  are set NOT_STARTED, and a NOT_STARTED test runs (runs.scm:1737-1740);
* once its first pass is over (every test launched; with ``run-wait yes``, every
  test ended), one pass more, with ``-preclean`` and, unless the command line
  gave ``-rerun``, ``-rerun STUCK/DEAD,n/a,ZERO_ITEMS`` (runs.scm:613-621). That
  pass runs what a ``-run`` with those flags runs: tests INCOMPLETE or DELETED,
  tests COMPLETED with one of those statuses, and the ``allow-auto-rerun``
  ones, each in a cleaned directory. ``[setup] reruns 0`` turns it off; any
  other value leaves it at one (runs.scm:338-354: it can only lower Megatest's
  run count of 1). A STALE record (mtpkt's state) is not taken: a plain ``run``
  has run it again in its first pass, a ``rerunclean`` leaves it STALE.

Without ``run-wait``, Megatest's first pass ends at its last launch and the
second follows at once, so a test just launched is never taken (it is
LAUNCHED or RUNNING then, runs.scm:1731-1736). The home makes the pass at its
next follow-up, when such a test may have ended already: so that what is run
again does not depend on that timing, the pass takes only records that had
ended when the last test was handed out (:func:`last_launch`).

The launches apply both (:mod:`~mtpkt.agents.home.launches`); the rules are here.
Called with the books lock held.
"""

from collections.abc import Iterable
from typing import Final

from mtpkt.agents.area import TestPatt, TestRef
from mtpkt.agents.home.books import Launch
from mtpkt.pkts import State, Status
from mtpkt.pkts.control import Run
from mtpkt.pkts.outcome import ACTIVE, left_alone_by_run

__all__ = ["SECOND_PASS_RERUN", "auto_reruns", "first_pass_over", "last_launch", "second_pass"]

_NOT_AGAIN: Final = frozenset({State.NOT_STARTED, State.STALE})
"""Not taken by the second pass: NOT_STARTED is the first pass's still; STALE (mtpkt's
state, not Megatest's) is what the first pass left alone on purpose, as a ``rerunclean``
does: a plain ``run`` has already run it again."""

SECOND_PASS_RERUN: Final = (Status.NA, Status.ZERO_ITEMS)
"""The ``-rerun`` of the second pass, ``STUCK/DEAD,n/a,ZERO_ITEMS`` (runs.scm:618): the
status ``STUCK/DEAD`` is none of mtpkt's (nor one Megatest writes), so never matches."""


def _taken_again(state: State) -> bool:
    """Whether the second pass may take a record in this state: one that ended (not being
    run, not waiting to start) and is not STALE."""
    return state not in _NOT_AGAIN and state not in ACTIVE


def auto_reruns(launch: Launch, ref: TestRef, state: State, status: Status) -> bool:
    """Whether ``allow-auto-rerun`` runs a record again: one of the tests the testpatt
    names (not a prerequisite it brings, runs.scm:411-416), in a listed state and status."""
    schedule = launch.plan.schedule
    if not schedule.auto_rerun:
        return False
    named = TestPatt.parse(launch.control.testpatt).may_match_test(ref.test)
    return named and schedule.auto_reruns(state.value, status.value)


def first_pass_over(launch: Launch) -> bool:
    """Whether Megatest's runner would be at the end of its pass over the run: every test
    ended (``run-wait yes``), or none waits to launch (runs.scm:1568-1597)."""
    progress = launch.progress
    if launch.plan.schedule.run_wait:
        return progress.settled()
    waiting = progress.waiting_count()
    if waiting > len(launch.skipped):  # some record the launch does not leave alone waits
        return False
    if not waiting:
        return True
    return not any(progress.waiting(ref) for ref in progress.records if ref not in launch.skipped)


def last_launch(launch: Launch) -> None:
    """Note, after a pull handed out some of the launch's tests, whether that was its first
    pass's last launch (without ``run-wait``), and which records had ended by then."""
    schedule = launch.plan.schedule
    if (
        launch.ended_at_last_launch is not None
        or launch.second_pass
        or schedule.run_wait
        or not schedule.second_pass
        or any(i.ref not in launch.skipped for i in launch.progress.take_ready())  # more to go
        or not first_pass_over(launch)
    ):
        return
    launch.ended_at_last_launch = frozenset(
        ref for ref, (state, _) in launch.progress.records.items() if _taken_again(state)
    )


def second_pass(launch: Launch, others: Iterable[Launch]) -> list[TestRef]:
    """The records the second pass runs again, once the first is over (once per launch;
    none when ``reruns`` is 0). They are taken from the other launches, which leave them
    to this one, and must be recorded NOT_STARTED and their directories removed.

    Args:
        launch: a launch under way.
        others: the other launches under way (what they run is left to them).
    """
    if launch.second_pass or not launch.plan.schedule.second_pass:
        return []
    if not first_pass_over(launch):
        return []
    launch.second_pass = True
    control = launch.control
    rerun = control.rerun if isinstance(control, Run) and control.rerun else SECOND_PASS_RERUN
    others = list(others)
    theirs = {ref for other in others for ref in other.progress.records if ref not in other.skipped}
    ended = launch.ended_at_last_launch
    refs = [
        ref
        for ref, (state, status) in launch.progress.records.items()
        if ref not in theirs
        and (ended is None or ref in ended)
        and _taken_again(state)
        and (not left_alone_by_run(state, status, rerun) or auto_reruns(launch, ref, state, status))
    ]
    for ref in refs:
        launch.skipped.discard(ref)
        launch.progress.update(ref, State.NOT_STARTED, Status.NA)
    for other in others:
        other.skipped.update(ref for ref in refs if ref in other.progress.records)
    return refs
