"""How the states and statuses of many records combine into one (Megatest's roll-up).

An itemized test's toplevel record rolls up its items; a run rolls up its tests.
The worst status wins (:func:`pkts.worst`), and a record that ended badly
(KILLED, STUCK, INCOMPLETE, or status DEAD) counts as ``CHECK`` at least.
"""

from collections.abc import Iterable

from pkts.enums import State, Status, worst

__all__ = ["ACTIVE", "FINAL", "GOOD_FOR_DEPENDENTS", "ENDED_BADLY", "effective_status", "rollup"]

FINAL = frozenset(
    {State.COMPLETED, State.KILLED, State.INCOMPLETE, State.STUCK, State.ARCHIVED, State.DELETED}
)
"""States a test does not leave by itself."""
ACTIVE = frozenset({State.LAUNCHED, State.REMOTEHOSTSTART, State.RUNNING, State.KILLREQ})
"""States of a test that is being run."""
ENDED_BADLY = frozenset({State.KILLED, State.STUCK, State.INCOMPLETE})
GOOD_FOR_DEPENDENTS = frozenset(
    {Status.PASS, Status.WARN, Status.CHECK, Status.WAIVED, Status.SKIP}
)
"""Statuses of a COMPLETED prerequisite that let a normal-mode dependent run."""


def effective_status(state: State, status: Status) -> Status:
    """The status a record contributes to a roll-up."""
    if state in ENDED_BADLY:
        return worst([status, Status.CHECK])
    return status


def rollup(records: Iterable[tuple[State, Status]]) -> tuple[State, Status]:
    """Combine records into one state and status.

    COMPLETED when every record is final, RUNNING while any is active or some
    are done, NOT_STARTED before anything happened; the worst effective status.
    """
    states: list[State] = []
    statuses: list[Status] = []
    for state, status in records:
        states.append(state)
        statuses.append(effective_status(state, status))
    if all(state in FINAL for state in states):
        state = State.COMPLETED
    elif any(state in ACTIVE or state in FINAL for state in states):
        state = State.RUNNING
    else:
        state = State.NOT_STARTED
    return state, worst(statuses)
