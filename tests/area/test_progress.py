"""RunProgress.take_ready: the kept queue always agrees with a fresh look (ready()), whatever
the waiton modes (normal, toplevel, itemwait, itemmatch) and for a test without items."""

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mtpkt.agents.area import Area, RunProgress, plan_run
from mtpkt.agents.area.plan import Plan
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import settled
from tests.support.farm import write_area

FILES = {
    "megatest.config": "[fields]\nOS TEXT\n\n[setup]\nlinktree #{getenv MT_RUN_AREA_HOME}/lt\n",
    "runconfigs.config": "[default]\nX 1\n",
    "tests/a/testconfig": "[ezsteps]\ns true\n\n[items]\nN 1 2 3\n",
    "tests/b/testconfig": "[ezsteps]\ns true\n\n[requirements]\nwaiton a\n",
    "tests/c/testconfig": "[ezsteps]\ns true\n\n[requirements]\npriority 5\n",
    "tests/d/testconfig": "[ezsteps]\ns true\n\n[requirements]\nwaiton b c\nmode toplevel\n",
    "tests/e/testconfig": (
        "[ezsteps]\ns true\n\n[requirements]\nwaiton a\nmode itemwait\n\n[items]\nN 1 2 4\n"
    ),
    "tests/f/testconfig": "[ezsteps]\ns true\n\n[requirements]\nwaiton a\nmode itemmatch\n",
    "tests/z/testconfig": "[ezsteps]\ns true\n\n[requirements]\nwaiton e\n\n[items]\nX\n",
}
ENDS = [
    (State.NOT_STARTED, Status.PREQ_DISCARDED),
    (State.KILLED, Status.KILLED),
    (State.LAUNCHED, Status.NA),
    (State.RUNNING, Status.NA),
    (State.COMPLETED, Status.PASS),
    (State.COMPLETED, Status.FAIL),
    (State.KILLED, Status.KILLED),
    (State.NOT_STARTED, Status.NA),
]


class Planned:
    """The plan of :data:`FILES`, shown short in a failing example (hypothesis prints every
    argument; a plan's fields run to tens of kB, over its limit)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __repr__(self) -> str:
        return "Planned(<the plan of FILES>)"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Planned:
    root = write_area(tmp_path_factory.mktemp("area"), FILES)
    area = Area.load(Path(root), env={"MT_RUN_AREA_HOME": str(root)})
    return Planned(plan_run(area, "linux", "r1"))


@settings(max_examples=200, deadline=None)
@example(
    steps=[
        (4, (State.NOT_STARTED, Status.PREQ_DISCARDED), False),
        (0, (State.KILLED, Status.KILLED), False),
        (4, (State.NOT_STARTED, Status.NA), False),
    ]
)  # a settled NOT_STARTED record made to wait again: the queue is sorted again
@given(steps=st.lists(st.tuples(st.integers(0, 12), st.sampled_from(ENDS), st.booleans())))
def test_take_ready_agrees_with_ready(
    planned: Planned, steps: list[tuple[int, tuple[State, Status], bool]]
) -> None:
    plan = planned.plan
    progress = RunProgress(plan)
    refs = list(progress.records)
    assert list(progress.take_ready()) == progress.ready()
    for index, (state, status), block in steps:
        progress.update(refs[index % len(refs)], state, status)
        if block:
            progress.resolve()
        assert list(progress.take_ready()) == progress.ready()
        fresh = RunProgress(plan)  # nothing kept from before: the same records, looked at anew
        for ref, record in progress.records.items():
            fresh.update(ref, *record)
        assert fresh.ready() == progress.ready()
        assert progress.settled() == all(settled(*record) for record in progress.records.values())
