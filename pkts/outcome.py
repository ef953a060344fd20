"""Which states and statuses are final, active, good and bad: the one place these rules live.

Every command (``send --wait``, ``tail --until-done``, ``report``), the
dispatcher, the live view and the roll-ups decide with these sets and
functions, so a test that one of them calls bad is bad to all of them.

* A record is *settled* (:func:`settled`) once its state is :data:`FINAL`,
  or while it is NOT_STARTED with one of the statuses by which Megatest's
  scheduler says it will never run (:data:`NEVER_RUNS`: PREQ_DISCARDED,
  ZERO_ITEMS …; runs.scm:1168-1182). It is being run while its state is
  :data:`ACTIVE`.
* A settled record *ended badly* (:func:`ended_badly`) when its state is one
  of :data:`ENDED_BADLY` (KILLED, STUCK, INCOMPLETE) or its status one of
  :data:`BAD` (a test that will never run is bad: it gave no result).
  ``CHECK`` is bad: Megatest uses it for a result that needs a person to
  look at it. Such a record makes ``send --wait`` and
  ``tail --until-done`` exit 3, shows in the live view's list of bad tests,
  and is a JUnit ``<failure>`` or ``<error>``.
* Among the bad statuses, :data:`ERRORS` say the test could not run to its
  end (a JUnit ``<error>``); FAIL and CHECK say it ran and its result is bad
  (a ``<failure>``).
* A plain ``run`` leaves a COMPLETED test alone whatever its status, as
  Megatest's ``-run`` does (:func:`left_alone_by_run`); dependents may run
  after :data:`GOOD_FOR_DEPENDENTS` (Megatest's list in ``runs.scm``, which also
  lets ``CHECK`` through).
* Roll-ups (:func:`rollup`): the worst status wins (:func:`pkts.worst`), and a
  record that ended in one of :data:`ENDED_BADLY` counts as ``CHECK`` at least.
  An itemized test's toplevel record, once its items have all settled, takes the
  state Megatest gives it (:func:`toplevel_rollup`): KILLED, INCOMPLETE … when an
  item ended so, NOT_STARTED/PREQ_FAIL when an item could not run for a failed
  prerequisite.
"""

from collections.abc import Iterable
from typing import Final

from mtpkt.pkts.enums import State, Status, worst

__all__ = [
    # States
    "ACTIVE",
    "ENDED_BADLY",
    "FINAL",
    # Statuses
    "BAD",
    "ERRORS",
    "GOOD",
    "GOOD_FOR_DEPENDENTS",
    "NEVER_RUNS",
    # Rules
    "effective_status",
    "ended_badly",
    "is_error",
    "left_alone_by_run",
    "read_state",
    "read_status",
    "rerun_by_rerunclean",
    "rollup",
    "settled",
    "toplevel_rollup",
]

FINAL: Final = frozenset(
    {
        State.COMPLETED,
        State.KILLED,
        State.INCOMPLETE,
        State.STUCK,
        State.ARCHIVED,
        State.DELETED,
        State.STALE,
    }
)
"""States a test does not leave by itself: it has settled."""
ACTIVE: Final = frozenset({State.LAUNCHED, State.REMOTEHOSTSTART, State.RUNNING, State.KILLREQ})
"""States of a test that is being run."""
ENDED_BADLY: Final = frozenset({State.KILLED, State.STUCK, State.INCOMPLETE})
"""Final states that are bad whatever the status."""

GOOD: Final = frozenset({Status.PASS, Status.WARN, Status.WAIVED, Status.SKIP})
"""Statuses of a result that needs nothing more."""
NEVER_RUNS: Final = frozenset(
    {
        Status.TEN_STRIKES,
        Status.BLOCKED,
        Status.PREQ_FAIL,
        Status.ZERO_ITEMS,
        Status.PREQ_DISCARDED,
        Status.TIMED_OUT,
    }
)
"""Statuses of a NOT_STARTED test that Megatest's scheduler will not run
(``runs:runable-tests``, runs.scm:1168-1182)."""
ERRORS: Final = frozenset({Status.ABORT, Status.DEAD, Status.KILLED, *NEVER_RUNS})
"""Bad statuses of a test that could not run, or not to its end (``KILLED``: it was stopped
while it ran; its state is KILLED too, which :data:`ENDED_BADLY` names)."""
BAD: Final = frozenset({Status.CHECK, Status.FAIL, *ERRORS})
"""Statuses of a result that needs a look (``n/a`` and ``KEEP_TRYING`` are neither good
nor bad)."""
GOOD_FOR_DEPENDENTS: Final = GOOD | {Status.CHECK}
"""Statuses of a COMPLETED prerequisite that let a normal-mode dependent run."""
_RERUN_STATES: Final = ENDED_BADLY | {State.NOT_STARTED}
_LEFT_ALONE: Final = frozenset({State.KILLED, State.STUCK, State.ARCHIVED})
"""States besides COMPLETED a plain ``run`` leaves alone (runs.scm:1817-1833)."""


def read_state(word: object) -> State:
    """A state read from a database, where another tool may have written any word: one
    mtpkt does not know counts as INCOMPLETE (the record ended badly)."""
    try:
        return State(str(word))
    except ValueError:
        return State.INCOMPLETE


def read_status(word: object) -> Status:
    """A status read from a database: one mtpkt does not know counts as CHECK (someone
    should look at it)."""
    try:
        return Status(str(word))
    except ValueError:
        return Status.CHECK


def settled(state: State, status: Status) -> bool:
    """Whether a record will not change by itself: a final state, or not started with a
    status that says it never will be (:data:`NEVER_RUNS`)."""
    return state in FINAL or (state is State.NOT_STARTED and status in NEVER_RUNS)


def ended_badly(state: State, status: Status) -> bool:
    """Whether a record has settled and needs a look: a bad state or a bad status."""
    return settled(state, status) and (state in ENDED_BADLY or status in BAD)


def is_error(state: State, status: Status) -> bool:
    """Whether a record that :func:`ended_badly` could not run to its end (rather than ran and
    came out bad)."""
    return state in ENDED_BADLY or status in ERRORS


def left_alone_by_run(state: State, status: Status, rerun: Iterable[Status] = ()) -> bool:
    """Whether a plain ``run`` skips a test, as Megatest's ``-run`` does (runs.scm:1731-1760,
    :1817-1833): COMPLETED whatever its status, unless ``--rerun`` names the status; KILLED,
    STUCK or ARCHIVED always (Megatest needs ``-force``). NOT_STARTED, INCOMPLETE, DELETED
    and STALE run again; a test being run is left to the launch that has it."""
    if state is State.COMPLETED:
        return status not in set(rerun)
    return state in _LEFT_ALONE


def rerun_by_rerunclean(state: State, status: Status) -> bool:
    """Whether ``rerunclean`` runs a test again: not being run, and not started, ended in a
    bad state, or with a bad status."""
    return state not in ACTIVE and (state in _RERUN_STATES or status in BAD)


def effective_status(state: State, status: Status) -> Status:
    """The status a record contributes to a roll-up."""
    if state in ENDED_BADLY:
        return worst([status, Status.CHECK])
    return status


def rollup(records: Iterable[tuple[State, Status]]) -> tuple[State, Status]:
    """Combine records into one state and status.

    COMPLETED when every record is settled, RUNNING while any is active or some
    are done, NOT_STARTED before anything happened; the worst effective status.
    """
    states: list[State] = []
    statuses: list[Status] = []
    done = True
    for state, status in records:
        states.append(state)
        statuses.append(effective_status(state, status))
        done = done and settled(state, status)
    if done:
        state = State.COMPLETED
    elif any(state in ACTIVE or state in FINAL for state in states):
        state = State.RUNNING
    else:
        state = State.NOT_STARTED
    return state, worst(statuses)


_STATE_RANK: Final = {
    State.NOT_STARTED: 4,
    State.KILLED: 3,
    State.KILLREQ: 2,
    State.STUCK: 1,
}
"""Megatest's order of states for a toplevel's roll-up, highest first (``*common:std-states*``,
common.scm:515-526; a state not listed ranks 0)."""
_NOT_STARTED_OK: Final = frozenset(
    {Status.NA, Status.PASS, Status.FAIL, Status.WARN, Status.CHECK, Status.WAIVED}
    | {Status.DEAD, Status.SKIP}
)
"""NOT_STARTED with one of these is waiting, not stuck (``*common:not-started-ok-statuses*``,
common.scm:569-570)."""


def toplevel_rollup(records: Iterable[tuple[State, Status]]) -> tuple[State, Status]:
    """The state and status of an itemized test's toplevel record, from its items.

    While an item has not settled, as :func:`rollup`. Once all have, as Megatest's
    ``db:set-state-status-and-roll-up-items`` (db.scm:3604-3656): NOT_STARTED/PREQ_FAIL when an
    item has PREQ_FAIL; COMPLETED when an item will never start (NOT_STARTED with another
    status); else the highest-ranked state other than COMPLETED and DELETED among the items
    (:data:`_STATE_RANK`: KILLED over STUCK over INCOMPLETE, ARCHIVED, STALE …), else
    COMPLETED; the worst status in every case (where Megatest writes ``STARTED``, a status
    mtpkt does not have, for an item that will never start: the worst status here).
    """
    items = list(records)
    state, status = rollup(items)
    if state is not State.COMPLETED:
        return state, status
    if any(item_status is Status.PREQ_FAIL for _, item_status in items):
        return State.NOT_STARTED, Status.PREQ_FAIL
    if any(s is State.NOT_STARTED and st not in _NOT_STARTED_OK for s, st in items):
        return State.COMPLETED, status
    others = [s for s, _ in items if s not in (State.COMPLETED, State.DELETED)]
    if not others:
        return state, status
    return max(others, key=lambda s: _STATE_RANK.get(s, 0)), status
