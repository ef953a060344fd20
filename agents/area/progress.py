"""Where a run stands, and what may run next: waiton, modes, items and priorities.

Pure bookkeeping over a :class:`~agents.area.plan.Plan`: no processes, no
sockets. The home's launches (and, for the host's tests, a run on one host)
drive it: :meth:`RunProgress.ready` says which instances may start,
:meth:`RunProgress.resolve` which will never run and how they end (Megatest's
rules, :mod:`~mtpkt.agents.area.waiton`).

A test with no instance to run (its items are none, or none the testpatt
selects) is followed through its toplevel record: it waits on its
prerequisites like any test, and once they would let it start it becomes
``NOT_STARTED/ZERO_ITEMS``, as Megatest marks it when it comes to expand its
items (runs.scm:773, :1496-1500); if they fail first it ends as any blocked
test does.

A test whose items are made late (:mod:`~mtpkt.agents.area.deferred`) is
followed through its toplevel record too, until its prerequisites would let it
start: it is then :meth:`RunProgress.due`, its caller makes its items
(:meth:`Plan.expand <mtpkt.agents.area.plan.Plan.expand>`) and hands them to
:meth:`RunProgress.expand`, and from there on it is followed as any test.
"""

import itertools
from collections.abc import Iterator, Mapping, Sequence

import attrs

from mtpkt.agents.area.job import TestRef
from mtpkt.agents.area.plan import Instance, Plan, PlannedTest
from mtpkt.agents.area.waiton import ITEM_MODES, Decision, Records, Verdict, decide, looked_at
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import rollup, settled

__all__ = ["Resolved", "RunProgress"]

READY = Verdict.READY
_ENDS = {
    Verdict.PREQ_FAIL: (State.NOT_STARTED, Status.PREQ_FAIL),
    Verdict.PREQ_DISCARDED: (State.NOT_STARTED, Status.PREQ_DISCARDED),
}


@attrs.frozen
class Resolved:
    """Instances of a test that will not run, and how they end (already recorded)."""

    test: str
    refs: tuple[TestRef, ...]
    state: State
    status: Status
    reason: str


class RunProgress:
    """The state and status of every instance of a plan, and what follows from them."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.tests: dict[str, PlannedTest] = dict(plan.tests)
        """The plan's tests; a deferred one replaced by its expansion once made (:meth:`expand`)."""
        self._refs = {name: _own_refs(plan, test) for name, test in plan.tests.items()}
        self.records: dict[TestRef, tuple[State, Status]] = {
            ref: (State.NOT_STARTED, Status.NA) for refs in self._refs.values() for ref in refs
        }
        """Every instance's record, and the toplevel record of each test without instances."""
        self._orders = itertools.count()
        self._order = {ref: next(self._orders) for ref in self.records}
        self._open = {name: len(refs) for name, refs in self._refs.items()}
        """Records of each test not settled."""
        self._prerequisites = {name for test in plan.tests.values() for name in test.waiton}
        self._itemwise = _itemwise(self.tests)
        """Prerequisites whose every item matters to a waiter (or to a test without
        instances, whose verdict is not a start)."""
        self._waiting_refs = {name: len(refs) for name, refs in self._refs.items()}
        """Records of each test waiting to start (:meth:`_waiting`)."""
        self._views: dict[str, Records] = {}
        """What waiters see of a prerequisite, kept until one of its records changes."""
        self._queue: list[Instance] | None = None  # ready() as last computed, for take_ready
        self._front = 0  # entries before it in _queue have left NOT_STARTED

    def update(self, ref: TestRef, state: State, status: Status) -> None:
        """Record an instance's new state and status."""
        old = self.records.get(ref)
        self.records[ref] = (state, status)
        if old is None or old == (state, status):
            return
        self._views.pop(ref.test, None)
        was_final, final = settled(*old), settled(state, status)
        if was_final != final:
            self._open[ref.test] += -1 if final else 1
        self._waiting_refs[ref.test] += _waits(state, status) - _waits(*old)
        if self._queue is None:
            return
        if _waits(state, status) and not _waits(*old):
            # Back in the queue (from a run, or from NOT_STARTED/PREQ_FAIL …): sort again.
            self._queue = None
        elif ref.test in self._prerequisites and looked_at(*old) != looked_at(state, status):
            whole = ref.test in self._itemwise or not self.tests[ref.test].itemized
            if whole or was_final or (final and not self._open[ref.test]):
                self._queue = None  # what its waiters look at changed

    def test_state(self, name: str) -> tuple[State, Status]:
        """A test's toplevel state and status: its items rolled up, or its one record."""
        refs = self._refs[name]
        if len(refs) == 1 and not self.tests[name].itemized:
            return self.records[refs[0]]
        return rollup(self.records[ref] for ref in refs)

    def _view(self, name: str) -> Records:
        """What waiters see of prerequisite ``name`` now."""
        view = self._views.get(name)
        if view is None:
            test = self.tests[name]
            items = {i.ref.item: self.records[i.ref] for i in test.instances if test.itemized}
            view = self._views[name] = Records.of(name, self.test_state(name), items)
        return view

    def _decide(self, test: PlannedTest, item: str = "") -> Decision:
        waitons = [self._view(name) for name in test.waiton]
        return decide(test.name, item, test.mode, test.itemmap, waitons)

    def _item_decisions(self, test: PlannedTest) -> bool:
        """Whether each item of the test waits by its own records (itemwait, itemmatch)."""
        return bool(test.mode & ITEM_MODES) and test.itemized

    def resolve(self) -> list[Resolved]:
        """Instances that will never run, ended as Megatest ends them: a blocked test
        (``NOT_STARTED/PREQ_FAIL``, ``NOT_STARTED/PREQ_DISCARDED``), a test without instances
        whose prerequisites let it start (``NOT_STARTED/ZERO_ITEMS``).

        They are recorded here; the caller reports them. Repeats until no more follow
        (a blocked test blocks its own dependents).
        """
        found: list[Resolved] = []
        while True:
            more = [r for test in self.tests.values() for r in self._resolve(test)]
            if not more:
                return found
            for resolved in more:
                for ref in resolved.refs:
                    self.update(ref, resolved.state, resolved.status)
            found += more

    def _resolve(self, test: PlannedTest) -> list[Resolved]:
        if not self._waiting_refs[test.name] or (test.instances and not test.waiton):
            return []  # cheap: this runs after every commit
        gate = self._decide(test)
        if gate.verdict is READY and test.instances and not self._item_decisions(test):
            return []
        waiting = [ref for ref in self._refs[test.name] if self.waiting(ref)]
        if gate.verdict is READY and test.deferred:
            return []  # due(): its items are made first
        if gate.verdict is READY and not test.instances:
            return [
                Resolved(
                    test.name, tuple(waiting), State.NOT_STARTED, Status.ZERO_ITEMS, test.comment
                )
            ]
        if gate.verdict in _ENDS:
            return [Resolved(test.name, tuple(waiting), *_ENDS[gate.verdict], gate.comment)]
        if gate.verdict is not READY:
            return []
        found = []
        for ref in waiting:
            decision = self._decide(test, ref.item)
            if decision.verdict in _ENDS:
                found.append(
                    Resolved(test.name, (ref,), *_ENDS[decision.verdict], decision.comment)
                )
        return found

    # -- deferred items -------------------------------------------------------------------

    def due(self) -> list[str]:
        """Deferred tests whose items are to be made now: not made yet, their toplevel
        waiting, and their prerequisites would let them start (Megatest's condition for
        ``runs:expand-items``, runs.scm:750-778)."""
        return [
            test.name
            for test in self.tests.values()
            if test.deferred
            and self._waiting_refs[test.name]
            and self._decide(test).verdict is READY
        ]

    def unexpanded(self, name: str) -> bool:
        """Whether ``name`` is a deferred test whose items are not made yet."""
        return self.tests[name].deferred

    def expand(self, name: str, planned: PlannedTest) -> tuple[TestRef, ...] | None:
        """Put the expansion of deferred test ``name`` in its place (its items made:
        :meth:`Plan.expand <mtpkt.agents.area.plan.Plan.expand>`).

        Its instances' records, ``NOT_STARTED``, replace its toplevel's; with no instance
        the toplevel stays, and :meth:`resolve` ends it ``NOT_STARTED/ZERO_ITEMS`` (with the
        expansion's comment). Nothing changes for a test not deferred (any more) or whose
        toplevel no longer waits (killed meanwhile).

        Returns:
            The new records, or None when nothing changed.
        """
        top = self.plan.toplevel(name)
        if not self.tests[name].deferred or not self.waiting(top):
            return None
        self.tests[name] = planned
        self._itemwise = _itemwise(self.tests)
        self._views.pop(name, None)
        self._queue = None
        if not planned.instances:
            return ()
        del self.records[top], self._order[top]
        refs = tuple(instance.ref for instance in planned.instances)
        self._refs[name] = refs
        for ref in refs:
            self.records[ref] = (State.NOT_STARTED, Status.NA)
            self._order[ref] = next(self._orders)
        self._open[name] = self._waiting_refs[name] = len(refs)
        return refs

    def expand_due(self) -> list[str]:
        """Make the items of every :meth:`due` test here and now (:meth:`Plan.expansion
        <mtpkt.agents.area.plan.Plan.expansion>`): for a run in one process. The home makes
        them in a thread of its own (:mod:`~mtpkt.agents.home.expansions`).

        Returns:
            The tests expanded.
        """
        due = self.due()
        for name in due:
            self.expand(name, self.plan.expansion(name))
        return due

    def ready(self) -> list[Instance]:
        """Instances not started whose prerequisites all allow them, highest priority first."""
        ready = []
        for test in self.tests.values():
            if not self._waiting_refs[test.name] or self._decide(test).verdict is not READY:
                continue
            waiting = [i for i in test.instances if self.waiting(i.ref)]
            if self._item_decisions(test):
                waiting = [i for i in waiting if self._decide(test, i.ref.item).verdict is READY]
            ready += waiting
        return sorted(
            ready,
            key=lambda i: (-self.tests[i.ref.test].priority, self._order[i.ref]),
        )

    def take_ready(self) -> Iterator[Instance]:
        """What :meth:`ready` gives, from a queue kept between calls.

        The queue is sorted again only when something could add to it (what a
        waiter looks at in a prerequisite changes, an instance goes back to
        NOT_STARTED); handing out the first few of many thousands waiting costs
        next to nothing.
        """
        if self._queue is None:
            self._queue, self._front = self.ready(), 0
        queue = self._queue
        while self._front < len(queue) and not self.waiting(queue[self._front].ref):
            self._front += 1
        for index in range(self._front, len(queue)):
            if self.waiting(queue[index].ref):
                yield queue[index]

    def waiting(self, ref: TestRef) -> bool:
        """Not started, and not ended without starting either."""
        return _waits(*self.records[ref])

    def waiting_count(self) -> int:
        """How many records wait to start (:meth:`waiting`), kept as they change."""
        return sum(self._waiting_refs.values())

    def settled(self) -> bool:
        """Whether every record has settled (:func:`~mtpkt.pkts.outcome.settled`)."""
        return not any(self._open.values())

    def summary(self) -> dict[TestRef, tuple[State, Status]]:
        """Every record, plus the toplevel record of each itemized test."""
        result = dict(self.records)
        for test in self.tests.values():
            if test.itemized and test.instances:
                result[self.plan.toplevel(test.name)] = self.test_state(test.name)
        return result


def _itemwise(tests: Mapping[str, PlannedTest]) -> set[str]:
    """Prerequisites whose every item matters to a waiter (``itemwait``/``itemmatch``, or a
    test without instances, whose verdict is not a start)."""
    return {
        name
        for test in tests.values()
        if test.mode & ITEM_MODES or not test.instances
        for name in test.waiton
    }


def _own_refs(plan: Plan, test: PlannedTest) -> Sequence[TestRef]:
    """The records a test's progress is made of: its instances, or its toplevel."""
    if test.instances:
        return tuple(instance.ref for instance in test.instances)
    return (plan.toplevel(test.name),)


def _waits(state: State, status: Status) -> bool:
    """Whether a record waits to start: NOT_STARTED, and not settled so."""
    return state is State.NOT_STARTED and not settled(state, status)
