"""What ``mtpkt plan`` shows of a run's plan: each test's level, items and priority, and
which of its instances an existing run already has done.

A test's level is one more than the highest level of the tests it waits on (a test that
waits on none is level 1): the tests of a level may all run once the levels before them
have, so the levels are the run's dependency order in waves. An instance is "done" as
``mtpkt send run`` (the home, :mod:`mtpkt.agents.home.launches`) keeps it: its record
COMPLETED (not STALE: the run's configs changed), KILLED, STUCK or ARCHIVED, and no
``[setup] allow-auto-rerun`` that runs it again; one being run is left to the launch that
has it.
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from mtpkt.agents.area import Plan, PlannedTest
    from mtpkt.store.rows import TestRow

__all__ = ["PlannedRow", "levels", "listing"]


@attrs.frozen(kw_only=True)
class PlannedRow:
    """One test of the plan, as ``mtpkt plan`` lists it."""

    test: str
    level: int
    """1 for a test that waits on none; else one more than its prerequisites' highest."""
    waiton: tuple[str, ...]
    priority: int
    items: tuple[str, ...]
    """The item paths of its instances ("" for a test without items); none when it has no
    instance (its items are made when it comes up to run, or none is selected)."""
    named: bool
    """The testpatt names it (else a test that waits on it brought it)."""
    deferred: bool
    """Its items come from ``[system …]`` commands, made when it comes up to run."""
    comment: str
    """Why it has no instance, when it has none."""
    mode: tuple[str, ...]
    jobgroup: str
    done: Mapping[str, str] = attrs.field(factory=dict)
    """Item path → ``STATE/STATUS`` of the instances a ``send run`` would leave alone."""

    def record(self) -> dict[str, object]:
        """The row as a JSON object (the fields ``mtpkt plan --help`` lists)."""
        return {
            "test": self.test,
            "level": self.level,
            "waiton": list(self.waiton),
            "priority": self.priority,
            "items": list(self.items),
            "named": self.named,
            "deferred": self.deferred,
            "comment": self.comment,
            "mode": list(self.mode),
            "jobgroup": self.jobgroup,
            "done": dict(self.done),
        }


def levels(waitons: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each test's level (see the module), for tests given prerequisites first; a waiton
    outside ``waitons`` counts as level 0."""
    found: dict[str, int] = {}
    for name, waiton in waitons.items():
        found[name] = 1 + max((found.get(other, 0) for other in waiton), default=0)
    return found


def listing(
    plan: "Plan", named: Sequence[str], rows: "Mapping[tuple[str, str], TestRow]", stale: bool
) -> list[PlannedRow]:
    """The plan's tests by level (then priority, highest first, then name).

    Args:
        plan: the run's plan.
        named: the tests the testpatt names.
        rows: the existing run's records by (test, item path); empty for a new run.
        stale: the run's configs changed since its last launch (COMPLETED counts as STALE).
    """
    level = levels({name: test.waiton for name, test in plan.tests.items()})
    found = [
        _row(test, level[name], name in named, _done(plan, test, name in named, rows, stale))
        for name, test in plan.tests.items()
    ]
    return sorted(found, key=lambda row: (row.level, -row.priority, row.test))


def _row(test: "PlannedTest", level: int, named: bool, done: Mapping[str, str]) -> PlannedRow:
    return PlannedRow(
        test=test.name,
        level=level,
        waiton=test.waiton,
        priority=test.priority,
        items=tuple(instance.item.path for instance in test.instances),
        named=named,
        deferred=test.deferred,
        comment=test.comment,
        mode=tuple(sorted(test.mode)),
        jobgroup=test.jobgroup,
        done=done,
    )


def _done(
    plan: "Plan",
    test: "PlannedTest",
    named: bool,
    rows: "Mapping[tuple[str, str], TestRow]",
    stale: bool,
) -> dict[str, str]:
    """The instances of ``test`` (its toplevel, when it has none) a ``run`` leaves alone."""
    from mtpkt.pkts import State
    from mtpkt.pkts.outcome import ACTIVE, left_alone_by_run, read_state, read_status

    items = [instance.item.path for instance in test.instances] or [""]
    done = {}
    for item in items:
        row = rows.get((test.name, item))
        if row is None:
            continue
        state, status = read_state(row.state), read_status(row.status)
        if stale and state is State.COMPLETED:
            state = State.STALE  # as the home records it before it plans
        rerun = named and plan.schedule.auto_reruns(state.value, status.value)
        if state in ACTIVE or (left_alone_by_run(state, status) and not rerun):
            done[item] = f"{state.value}/{status.value}"
    return done
