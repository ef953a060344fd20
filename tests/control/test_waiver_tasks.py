"""The home sends the previous run's record with the task of a test that has ``[waivers]``
(agents/home/previous.py, db:get-previous-test-run-record, tests.scm:412), and nothing
with the others, so their hand-out costs no lookup."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.agents.area import Area
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.control import Run
from mtpkt.pkts.link import Pull, Task
from mtpkt.pkts.status import StatusChange
from mtpkt.store import Store
from tests.control.test_dispatcher import InlineCollector
from tests.support.farm import TARGET, make_area, write_area

WAIVED_TEST = """
    [ezsteps]
    make echo made > out.txt

    [waivers]
    same_output diff out.txt

    [requirements]
    priority 10
"""


@pytest.fixture
def area(tmp_path: Path) -> Area:
    root = make_area(tmp_path / "area")
    write_area(root, {"tests/waived/testconfig": WAIVED_TEST})
    return Area.load(root)


@pytest.fixture
def store(area: Area) -> Iterator[Store]:
    with Store(area.dbdir, area.fields, durable=False) as store:
        yield store


def run_tasks(home: InlineCollector, runname: str) -> dict[str, Task]:
    home.dispatcher.control(Run(target=TARGET, runname=runname, testpatt="waived,build"))
    tasks = home.dispatcher.pull(Pull(origin=f"agent-{runname}", slots=4, free=4))
    return {t.test: t for t in tasks if t.action is Action.RUN and t.runname == runname}


def test_the_previous_record_rides_with_a_waivable_tests_task(area: Area, store: Store) -> None:
    home = InlineCollector(area, store)
    first = run_tasks(home, "r1")
    assert first["waived"].previous == ()  # no run before
    assert first["build"].previous == ()
    home.report(
        StatusChange(
            origin="a1", seq=1, target=TARGET, runname="r1", test="waived",
            state=State.COMPLETED, status=Status.WAIVED, comment="known difference",
        )
    )  # fmt: skip

    second = run_tasks(home, "r2")

    state, status, comment, rundir = second["waived"].previous
    assert (state, status, comment) == ("COMPLETED", "WAIVED", "known difference")
    assert rundir.endswith("/r1/waived")
    assert second["build"].previous == ()  # no [waivers]: not looked up


def test_the_newest_other_run_that_has_the_test_is_the_previous_one(
    area: Area, store: Store
) -> None:
    home = InlineCollector(area, store)
    run_tasks(home, "r1")
    for seq, (runname, status) in enumerate([("r1", Status.WAIVED), ("r2", Status.FAIL)], 1):
        if runname == "r2":
            run_tasks(home, "r2")
        home.report(
            StatusChange(
                origin="a1", seq=seq, target=TARGET, runname=runname, test="waived",
                state=State.COMPLETED, status=status,
            )
        )  # fmt: skip

    assert run_tasks(home, "r3")["waived"].previous[:2] == ("COMPLETED", "FAIL")
