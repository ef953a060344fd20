"""``[skip]`` applied where Megatest applies it: to a test about to launch.

Megatest's runner checks a test's skip rule (:mod:`~mtpkt.agents.area.skip`)
once its prerequisites and the limits let it launch, and records a skipped test
``COMPLETED/SKIP`` with the reason as its comment instead of launching it
(runs.scm:1777-1807). The home does the same when it hands instances out
(:mod:`~mtpkt.agents.home.assign`). The records it looks at are Megatest's:
those of the same test (and item) in every run, from the store and from the
books (which also know what this very hand-out launches).

Locks as :mod:`~mtpkt.agents.home.books` says: called with the books lock held.
"""

import time
from collections.abc import Callable, Collection
from typing import Final

from mtpkt.agents.area import Instance, TestRef
from mtpkt.agents.area.skip import Skip
from mtpkt.agents.home.books import Books, Launch
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import read_state, read_status
from mtpkt.store import Store, TestRow

__all__ = ["Skips"]

RUNNING: Final = frozenset({State.RUNNING, State.REMOTEHOSTSTART, State.LAUNCHED})
"""What counts as running for ``prevrunning`` and ``rundelay`` (runs.scm:1785, 1796)."""
RAN_STATES: Final = frozenset({State.COMPLETED, State.INCOMPLETE})
RAN_STATUSES: Final = frozenset({Status.PASS, Status.FAIL, Status.ABORT})
"""The records whose start ``rundelay`` counts from (runs.scm:1797)."""


class Skips:
    """Whether a test about to launch is skipped, and why.

    Args:
        store: the home's store (every run's records).
        books: the dispatcher's books.
        clock: the time now, in seconds since the epoch (as records' times).
    """

    def __init__(self, store: Store, books: Books, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._books = books
        self._clock = clock

    def why(self, launch: Launch, instance: Instance, launching: Collection[TestRef]) -> str:
        """The comment of a skipped instance (Megatest's words), "" to launch it.

        Args:
            launch: the launch the instance is of.
            instance: the instance about to launch.
            launching: the instances launched by the same hand-out before this one.
        """
        rule = launch.plan.tests[instance.ref.test].skip
        if rule is None:
            return ""
        ref = instance.ref
        match rule.key:
            case "prevrunning":
                if self._running(ref, launching):
                    return "Skipping due to previous tests running"
            case "fileexists":
                if rule.path is not None and rule.path.exists():
                    return f"Skipping due to existance of file {rule.value}"  # sic, runs.scm:1791
            case "rundelay":
                if self._too_soon(rule, ref, launching):
                    return f"Skipping due to previous test run less than {rule.value} ago"
        return ""

    def _running(self, ref: TestRef, launching: Collection[TestRef]) -> bool:
        """Whether a record of the same test and item runs in any run."""
        if any(_same(other, ref) for other in launching):
            return True
        for agent in self._books.agents.values():
            if any(_same(other, ref) and self._state(other) in RUNNING for other in agent.running):
                return True
        return any(read_state(row.state) in RUNNING for row in self._records(ref))

    def _too_soon(self, rule: Skip, ref: TestRef, launching: Collection[TestRef]) -> bool:
        """``rundelay``: a record runs, or one that ran started less than the delay ago."""
        if self._running(ref, launching):
            return True
        starts = [
            (row.event_time or 0.0) - row.run_duration
            for row in self._records(ref)
            if read_state(row.state) in RAN_STATES and read_status(row.status) in RAN_STATUSES
        ]
        return rule.seconds > self._clock() - max(starts, default=0.0)

    def _records(self, ref: TestRef) -> list[TestRow]:
        """The records of the same test and item in every run."""
        return [
            row
            for row in self._store.records_of(ref.test)
            if not ref.item or row.item_path == ref.item
        ]

    def _state(self, ref: TestRef) -> State:
        """The state the books know of an instance handed out."""
        for launch in self._books.launches:
            record = launch.progress.records.get(ref)
            if record is not None and ref not in launch.skipped:
                return record[0]
        return State.LAUNCHED


def _same(other: TestRef, ref: TestRef) -> bool:
    """Whether ``other`` is a record Megatest's query for ``ref`` finds: the same test, and
    the same item, or any item for a test without items (runs.scm:1785, tests.scm:312-330)."""
    return other.test == ref.test and (not ref.item or other.item == ref.item)
