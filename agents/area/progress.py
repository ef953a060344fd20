"""Where a run stands, and what may run next: waiton, modes and priorities.

Pure bookkeeping over a :class:`~agents.area.plan.Plan`: no processes, no
sockets. The home's dispatcher drives it across agents.
"""

from collections.abc import Iterator

import attrs

from mtpkt.agents.area.job import TestRef
from mtpkt.agents.area.plan import Instance, Plan, PlannedTest
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import GOOD_FOR_DEPENDENTS, rollup, settled

__all__ = ["Blocked", "RunProgress"]


@attrs.frozen
class Blocked:
    """A test that will not run because a prerequisite did not end well."""

    test: str
    reason: str


class RunProgress:
    """The state and status of every instance of a plan, and what follows from them."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.records: dict[TestRef, tuple[State, Status]] = {
            instance.ref: (State.NOT_STARTED, Status.NA) for instance in plan.instances()
        }
        self._order = {ref: index for index, ref in enumerate(self.records)}
        self._open = {name: len(test.instances) for name, test in plan.tests.items()}
        """Instances of each test not in a final state."""
        self._prerequisites = {name for test in plan.tests.values() for name in test.waiton}
        self._queue: list[Instance] | None = None  # ready() as last computed, for take_ready
        self._front = 0  # entries before it in _queue have left NOT_STARTED

    def update(self, ref: TestRef, state: State, status: Status) -> None:
        """Record an instance's new state and status."""
        old = self.records.get(ref)
        self.records[ref] = (state, status)
        if old is None:
            return
        was_final, final = settled(*old), settled(state, status)
        if was_final != final:
            self._open[ref.test] += -1 if final else 1
        if self._queue is None:
            return
        if state is State.NOT_STARTED and old[0] is not State.NOT_STARTED:
            self._queue = None  # back in the queue: sort again
        elif ref.test in self._prerequisites and old != (state, status):
            if was_final or (final and not self._open[ref.test]):
                self._queue = None  # a prerequisite settled, or changed its end

    def test_state(self, name: str) -> tuple[State, Status]:
        """A test's rolled-up state and status (a test with no items is COMPLETED/SKIP)."""
        test = self.plan.tests[name]
        if not test.instances:
            return State.COMPLETED, Status.SKIP
        return rollup(self.records[instance.ref] for instance in test.instances)

    def _settled(self, test: PlannedTest) -> bool:
        return not self._open[test.name]

    def _not_started(self, test: PlannedTest) -> bool:
        return all(self.records[i.ref][0] is State.NOT_STARTED for i in test.instances)

    def _satisfied(self, test: PlannedTest, prerequisite: str) -> bool | None:
        """Whether ``prerequisite`` lets ``test`` run: None while it is not settled."""
        if not self._settled(self.plan.tests[prerequisite]):
            return None
        state, status = self.test_state(prerequisite)
        if state is not State.COMPLETED:
            return False
        return test.mode == "toplevel" or status in GOOD_FOR_DEPENDENTS

    def blocked(self) -> list[Blocked]:
        """Tests that can never run because a prerequisite ended badly.

        Their instances are marked COMPLETED/PREQ_FAIL here; the caller reports them.
        Repeats until no more follow (a blocked test blocks its own dependents).
        """
        found: list[Blocked] = []
        changed = True
        while changed:
            changed = False
            for test in self.plan.tests.values():
                if not test.instances or not self._not_started(test):
                    continue
                failed = [p for p in test.waiton if self._satisfied(test, p) is False]
                if failed:
                    state, status = self.test_state(failed[0])
                    reason = f"waiton {failed[0]} ended {state}/{status}"
                    for instance in test.instances:
                        self.update(instance.ref, State.COMPLETED, Status.PREQ_FAIL)
                    found.append(Blocked(test.name, reason))
                    changed = True
        return found

    def ready(self) -> list[Instance]:
        """Instances not started whose prerequisites all allow them, highest priority first."""
        ready = [
            instance
            for test in self.plan.tests.values()
            if all(self._satisfied(test, p) for p in test.waiton)
            for instance in test.instances
            if self.records[instance.ref][0] is State.NOT_STARTED
        ]
        return sorted(
            ready,
            key=lambda i: (-self.plan.tests[i.ref.test].priority, self._order[i.ref]),
        )

    def take_ready(self) -> Iterator[Instance]:
        """What :meth:`ready` gives, from a queue kept between calls.

        The queue is sorted again only when something could add to it (a
        prerequisite settles, an instance goes back to NOT_STARTED); handing
        out the first few of many thousands waiting costs next to nothing.
        """
        if self._queue is None:
            self._queue, self._front = self.ready(), 0
        queue = self._queue
        while self._front < len(queue) and not self._waiting(queue[self._front]):
            self._front += 1
        for index in range(self._front, len(queue)):
            if self._waiting(queue[index]):
                yield queue[index]

    def _waiting(self, instance: Instance) -> bool:
        return self.records[instance.ref][0] is State.NOT_STARTED

    def settled(self) -> bool:
        """Whether every instance has reached a final state."""
        return not any(self._open.values())

    def summary(self) -> dict[TestRef, tuple[State, Status]]:
        """Every instance's record, plus the toplevel record of each itemized or empty test."""
        result = dict(self.records)
        for test in self.plan.tests.values():
            if test.itemized or not test.instances:
                result[self.plan.toplevel(test.name)] = self.test_state(test.name)
        return result
