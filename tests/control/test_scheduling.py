"""The home's scheduling as Megatest's runner schedules: ``[skip]``, ``[jobgroups]``,
``launch-delay``, ``allow-auto-rerun`` and the second pass (``reruns``).

The dispatcher on its own with a real store, the collector's part played inline
(:class:`~tests.control.test_dispatcher.InlineCollector`); what an agent would
report is committed as its status packets. The end-to-end parts (the launcher
warning of ``send run --wait``, ``deadtime``) are in test_scheduling_farm.py.
"""

import contextlib
import itertools
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.agents.area import Area
from mtpkt.agents.rundirs import instance_dir
from mtpkt.pkts import AckOutcome, Action, State, Status
from mtpkt.pkts.control import Run
from mtpkt.pkts.link import Pull, Task
from mtpkt.pkts.status import Ack, StatusChange
from mtpkt.store import Store
from mtpkt.store.journal import DONE
from mtpkt.store.reader import HistoryReader
from tests.control.test_dispatcher import InlineCollector, records
from tests.support.farm import TARGET, write_area

STEP = "[ezsteps]\nstep true\n"
MEGATEST = """
    [fields]
    OS TEXT
    ARCH TEXT

    [setup]
    linktree #{getenv MT_RUN_AREA_HOME}/links
"""


def make_area(root: Path, setup: str = "", **tests: str) -> Area:
    """An area whose megatest.config has ``setup`` added to its [setup], with a test of each
    testconfig."""
    config = textwrap.dedent(MEGATEST) + textwrap.dedent(setup)
    files = {"megatest.config": config, "runconfigs.config": "[default]\n"}
    files |= {f"tests/{name}/testconfig": text for name, text in tests.items()}
    return Area.load(write_area(root / "area", files), env={"PATH": os.environ["PATH"]})


@pytest.fixture
def stores() -> Iterator[list[Store]]:
    opened: list[Store] = []
    yield opened
    for store in opened:
        store.close()


def open_home(area: Area, stores: list[Store]) -> InlineCollector:
    store = Store(area.dbdir, area.fields, durable=False)
    stores.append(store)
    return InlineCollector(area, store)


class Agent:
    """What an agent reports, numbered as an agent numbers its packets."""

    def __init__(self, home: InlineCollector, name: str = "a1") -> None:
        self.home = home
        self.name = name
        self._seq = itertools.count(1)

    def pull(self, free: int = 10) -> list[Task]:
        """The run tasks a pull with ``free`` slots gets, acknowledged."""
        tasks = self.home.dispatcher.pull(Pull(origin=self.name, slots=free, free=free))
        self.home.dispatcher.pull(
            Pull(origin=self.name, slots=free, free=0, acks=tuple(t.id for t in tasks))
        )
        return [task for task in tasks if task.action is Action.RUN]

    def report(
        self, runname: str, test: str, state: State, status: Status, *, ts: float | None = None
    ) -> None:
        change = StatusChange(
            origin=self.name, seq=next(self._seq), ts=time.time() if ts is None else ts,
            target=TARGET, runname=runname, test=test, state=state, status=status,
        )  # fmt: skip
        self.home.report(change)


def comment(store: Store, runname: str, test: str) -> str:
    run_id = store.run_id(TARGET, runname, create=False)
    assert run_id is not None
    (row,) = [row for row in store.tests(run_id) if row.testname == test and not row.item_path]
    return row.comment


def state(store: Store, runname: str, test: str) -> tuple[str, str]:
    return records(store, runname)[test][:2]


# -- [skip] -------------------------------------------------------------------------------


def test_prevrunning_skips_a_test_while_the_same_test_runs_in_another_run(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:1782-1787, 1804-1806: with ``[skip] prevrunning`` (any value, manual
    reference.txt:461-472) a test about to launch while a record of the same test is
    LAUNCHED, REMOTEHOSTSTART or RUNNING in any run ends COMPLETED/SKIP, "Skipping due to
    previous tests running"; once none runs, it launches. Two runs handed out together: the
    first launches, the second sees it LAUNCHED."""
    area = make_area(tmp_path, solo=STEP + "[skip]\nprevrunning x\n", other=STEP)
    home = open_home(area, stores)
    agent = Agent(home)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="solo"))
    assert [task.runname for task in agent.pull()] == ["r1"]
    agent.report("r1", "solo", State.RUNNING, Status.NA)

    home.dispatcher.control(Run(target=TARGET, runname="r2", testpatt="%"))
    assert [task.test for task in agent.pull()] == ["other"]
    store = home.store
    assert state(store, "r2", "solo") == ("COMPLETED", "SKIP")
    assert comment(store, "r2", "solo") == "Skipping due to previous tests running"

    agent.report("r1", "solo", State.COMPLETED, Status.PASS)
    home.dispatcher.control(Run(target=TARGET, runname="r3", testpatt="solo"))
    home.dispatcher.control(Run(target=TARGET, runname="r4", testpatt="solo"))
    assert [task.runname for task in agent.pull()] == ["r3"]
    assert state(store, "r4", "solo") == ("COMPLETED", "SKIP")


def test_fileexists_skips_a_test_while_its_file_exists_and_only_the_first_key_counts(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:1788-1791: ``[skip] fileexists PATH`` skips the test while PATH exists,
    "Skipping due to existance of file PATH" (Megatest's spelling), a relative PATH taken
    from the test's directory (runs.scm:1720-1724). runs.scm:1780-1802: only the first key
    in Megatest's order is tried, so ``prevrunning`` before ``fileexists`` hides it."""
    area = make_area(
        tmp_path,
        flag=STEP + "[skip]\nfileexists stop.flag\n",
        first=STEP + "[skip]\nprevrunning yes\nfileexists stop.flag\n",
    )
    for name in ("flag", "first"):
        (area.home / "tests" / name / "stop.flag").write_text("")
    home = open_home(area, stores)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    assert [task.test for task in Agent(home).pull()] == ["first"]
    assert state(home.store, "r1", "flag") == ("COMPLETED", "SKIP")
    assert comment(home.store, "r1", "flag") == "Skipping due to existance of file stop.flag"

    (area.home / "tests" / "flag" / "stop.flag").unlink()
    home.dispatcher.control(Run(target=TARGET, runname="r2", testpatt="flag"))
    assert [task.test for task in Agent(home, "a2").pull()] == ["flag"]


def test_rundelay_skips_a_test_that_started_less_than_the_delay_ago(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:1792-1802: ``[skip] rundelay 10m 5s`` skips while the test runs in any run,
    or when the newest start of its records COMPLETED or INCOMPLETE with PASS, FAIL or ABORT
    (a SKIP does not count) is less than the delay ago: "Skipping due to previous test run
    less than 10m 5s ago". Megatest's event_time is a test's start (db.scm:3780)."""
    area = make_area(tmp_path, late=STEP + "[skip]\nrundelay 10m 5s\n")
    home = open_home(area, stores)
    agent = Agent(home)
    now = time.time()
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="late"))
    assert len(agent.pull()) == 1  # no earlier run: it launches
    agent.report("r1", "late", State.RUNNING, Status.NA, ts=now - 3600)
    agent.report("r1", "late", State.COMPLETED, Status.FAIL, ts=now - 300)  # started an hour ago
    home.dispatcher.tick()

    home.dispatcher.control(Run(target=TARGET, runname="r2", testpatt="late"))
    assert len(agent.pull()) == 1
    agent.report("r2", "late", State.RUNNING, Status.NA, ts=now - 400)  # started 400 s ago

    home.dispatcher.control(Run(target=TARGET, runname="r3", testpatt="late"))
    assert agent.pull() == []  # r2's runs
    assert comment(home.store, "r3", "late") == (
        "Skipping due to previous test run less than 10m 5s ago"
    )
    agent.report("r2", "late", State.INCOMPLETE, Status.ABORT, ts=now - 100)
    home.dispatcher.control(Run(target=TARGET, runname="r4", testpatt="late"))
    assert agent.pull() == []  # r2's started 400 s ago
    assert state(home.store, "r4", "late") == ("COMPLETED", "SKIP")


# -- [jobgroups] --------------------------------------------------------------------------


def test_a_jobgroup_has_at_most_its_limit_of_tests_in_hand_over_all_runs(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:203-231 with db.scm:2905-2931: a test of jobgroup G ([test_meta] jobgroup,
    runs.scm:1345) launches only while fewer than ``[jobgroups] G`` tests of the group are
    LAUNCHED or running, counted over every run (the query has no run_id); the runner goes
    on to other tests meanwhile."""
    group = "[test_meta]\njobgroup sql\n"
    area = make_area(
        tmp_path,
        "[jobgroups]\nsql 2\n",
        **{f"q{n}": STEP + group for n in range(1, 5)},
        free=STEP,
    )
    home = open_home(area, stores)
    agent = Agent(home)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    running = sorted(task.test for task in agent.pull())
    assert len(running) == 3, running
    assert "free" in running
    home.dispatcher.control(Run(target=TARGET, runname="r2", testpatt="q1"))
    assert agent.pull() == []  # two of the group run in r1
    waiting = {"q1", "q2", "q3", "q4"} - set(running)
    for done in [name for name in running if name != "free"]:
        agent.report("r1", done, State.COMPLETED, Status.PASS)
        (task,) = agent.pull()  # one leaves the group, one more of it launches
        assert (task.runname, task.test) in {("r1", name) for name in waiting}
        waiting.discard(task.test)
        running.append(task.test)
    assert not waiting
    for done in running[-2:]:
        agent.report("r1", done, State.COMPLETED, Status.PASS)
    assert [(task.runname, task.test) for task in agent.pull()] == [("r2", "q1")]


# -- launch-delay -------------------------------------------------------------------------


def test_launch_delay_spaces_the_launches_of_a_run(tmp_path: Path, stores: list[Store]) -> None:
    """launch.scm:1338-1345: the runner waits until ``launch-delay`` seconds have passed since
    its last launch, counted from its start for the first (common.scm:241); one launch at a
    time. A skipped test is no launch (runs.scm:1804-1810): it is not held back."""
    delay = 0.3
    area = make_area(
        tmp_path,
        f"launch-delay {delay}\n",
        a=STEP,
        b=STEP,
        c=STEP,
        gone=STEP + "[skip]\nfileexists /\n",
    )
    home = open_home(area, stores)
    agent = Agent(home)
    started = time.monotonic()
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    times: list[float] = []
    deadline = started + 30
    while len(times) < 3:
        assert time.monotonic() < deadline, times
        handed = agent.pull()
        assert len(handed) <= 1, handed
        if handed:
            times.append(time.monotonic())
        time.sleep(0.02)
    gaps = [later - earlier for earlier, later in zip([started, *times], times, strict=False)]
    assert all(gap >= delay for gap in gaps), gaps
    assert state(home.store, "r1", "gone") == ("COMPLETED", "SKIP")


# -- allow-auto-rerun and the second pass ---------------------------------------------------


def test_allow_auto_rerun_runs_the_named_tests_listed_records_again(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:453-462, db.scm:2798-2815: at the start of a ``-run``, records of the tests
    the testpatt names (not the prerequisites it brings: runs.scm:411-416) that are in one of
    the ``allow-auto-rerun`` STATE/STATUS pairs become NOT_STARTED and so run again
    (runs.scm:1737-1740); ``/PASS`` (an empty state) matches none. (``reruns 0``: the
    second pass, which starts the same way, would run them once more.)"""
    area = make_area(
        tmp_path,
        "allow-auto-rerun /PASS COMPLETED/FAIL\nreruns 0\n",
        base=STEP,
        top=STEP + "[requirements]\nwaiton base\nmode toplevel\n",
        fine=STEP,
    )
    home = open_home(area, stores)
    agent = Agent(home)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    assert sorted(task.test for task in agent.pull()) == ["base", "fine"]
    agent.report("r1", "base", State.COMPLETED, Status.FAIL)
    agent.report("r1", "fine", State.COMPLETED, Status.PASS)
    assert [task.test for task in agent.pull()] == ["top"]
    agent.report("r1", "top", State.COMPLETED, Status.FAIL)
    home.dispatcher.tick()

    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="top,fine"))
    assert [task.test for task in agent.pull()] == ["top"]  # base: brought, not named


def test_the_second_pass_runs_incomplete_and_na_tests_again_once_in_clean_directories(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:613-621: once the first pass is over (run-wait yes: every test ended,
    runs.scm:1573-1597) Megatest's ``-run`` makes one pass more with ``-preclean`` and
    ``-rerun STUCK/DEAD,n/a,ZERO_ITEMS``: INCOMPLETE tests run again (runs.scm:1737-1740),
    so do COMPLETED ones with status n/a; FAIL, DEAD (not "STUCK/DEAD") and KILLED stay.
    The pass is made once (its run count goes from 1 to 0)."""
    names = ("lost", "blank", "failed", "dead", "killed", "fine")
    area = make_area(tmp_path, "run-wait yes\n", **dict.fromkeys(names, STEP))
    home = open_home(area, stores)
    agent = Agent(home)
    run = Run(target=TARGET, runname="r1", testpatt="%")
    home.dispatcher.control(run)
    first = {task.test: task.id for task in agent.pull()}
    assert sorted(first) == sorted(names)
    left = instance_dir(area.linktree, TARGET, "r1", "lost") / "left.txt"
    left.parent.mkdir(parents=True)
    left.write_text("from the first pass\n")
    ends = {
        "lost": (State.INCOMPLETE, Status.ABORT),
        "blank": (State.COMPLETED, Status.NA),
        "failed": (State.COMPLETED, Status.FAIL),
        "dead": (State.COMPLETED, Status.DEAD),
        "killed": (State.KILLED, Status.KILLED),
    }
    for name, (end_state, end_status) in ends.items():
        agent.report("r1", name, end_state, end_status)
    home.dispatcher.tick()
    assert agent.pull() == []  # "fine" still runs: the first pass is not over
    agent.report("r1", "fine", State.COMPLETED, Status.PASS)
    home.dispatcher.tick()

    store = home.store
    assert state(store, "r1", "lost") == ("NOT_STARTED", "n/a")
    assert not left.exists()  # -preclean
    second = {task.test: task.id for task in agent.pull()}
    assert sorted(second) == ["blank", "lost"]
    assert all(second[name] != first[name] for name in second)  # tasks the agent has not seen
    for name in second:
        agent.report("r1", name, State.COMPLETED, Status.NA)
    home.dispatcher.tick()
    assert agent.pull() == []  # one pass more, not two
    assert {row.packet.id: row.state for row in store.journal()}[run.id] == DONE
    assert state(store, "r1", "failed") == ("COMPLETED", "FAIL")


def test_without_run_wait_the_second_pass_takes_what_had_ended_at_the_last_launch(
    tmp_path: Path, stores: list[Store]
) -> None:
    """Without ``run-wait`` Megatest's first pass ends at its last launch (runs.scm:1568-1597)
    and the second begins at once (runs.scm:613-621), when the test just launched is still
    LAUNCHED or RUNNING and so is not run again (runs.scm:1731-1736). Whichever way the
    home's follow-ups fall, a test ending after the last launch is not taken: the first of
    two tests ended INCOMPLETE before the other launched and runs again; the other, which
    ended so after, does not."""
    area = make_area(tmp_path, "max_concurrent_jobs 1\n", x=STEP, y=STEP)
    home = open_home(area, stores)
    agent = Agent(home)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    (first,) = [task.test for task in agent.pull()]
    agent.report("r1", first, State.INCOMPLETE, Status.ABORT)
    (last,) = [task.test for task in agent.pull()]  # the first pass's last launch
    agent.report("r1", last, State.INCOMPLETE, Status.ABORT)
    home.dispatcher.tick()  # the second pass, made after the last one ended
    assert [task.test for task in agent.pull()] == [first]
    assert state(home.store, "r1", last) == ("INCOMPLETE", "ABORT")


def test_the_runs_ack_comes_after_its_second_pass(tmp_path: Path, stores: list[Store]) -> None:
    """Every record settled does not end a run while Megatest's second pass may still record
    tests NOT_STARTED again (runs.scm:613-621): the home's ``done`` ack of the run, which
    ``send --wait`` waits for, is committed once the launch has settled, after the second
    pass's records."""
    area = make_area(tmp_path, "run-wait yes\n", lost=STEP, fine=STEP)
    home = open_home(area, stores)
    agent = Agent(home)
    run = Run(target=TARGET, runname="r1", testpatt="%")
    accepted = home.dispatcher.control(run)
    assert accepted is not None
    assert accepted.outcome is AckOutcome.ACCEPTED  # what it will do: no end of the run
    assert (
        accepted.reason == f"run {TARGET}/r1: 2 tests, 2 instances; 0 already done (kept), 2 to run"
    )
    assert len(agent.pull()) == 2
    agent.report("r1", "lost", State.INCOMPLETE, Status.ABORT)
    agent.report("r1", "fine", State.COMPLETED, Status.PASS)  # every record settled now
    home.dispatcher.tick()
    assert acks_of(area, run) == []  # the second pass runs "lost" again
    assert [task.test for task in agent.pull()] == ["lost"]
    agent.report("r1", "lost", State.COMPLETED, Status.PASS)
    home.dispatcher.tick()
    (seq, ack), *more = acks_of(area, run)
    assert more == []
    note = f"run r1 of {TARGET}: 2 test instances settled"
    assert (ack.outcome, ack.reason) == (AckOutcome.DONE, note)
    with contextlib.closing(HistoryReader(area.dbdir)) as reader:
        changes = reader.history(target=TARGET, runname="r1")
    assert seq > max(number for number, _ in changes)


def acks_of(area: Area, control: Run) -> list[tuple[int, Ack]]:
    """The home's acks that end a control packet (``done`` or ``rejected``, not the
    ``accepted`` one that says what the home will do), with their stream numbers."""
    with contextlib.closing(HistoryReader(area.dbdir)) as reader:
        return [
            (seq, packet)
            for seq, packet in reader.history()
            if isinstance(packet, Ack)
            and packet.ref == control.id
            and packet.outcome is not AckOutcome.ACCEPTED
        ]


def test_reruns_0_turns_the_second_pass_off_and_a_given_rerun_list_replaces_its_own(
    tmp_path: Path, stores: list[Store]
) -> None:
    """runs.scm:338-354: ``[setup] reruns 0`` makes the run count 0, so no second pass;
    runs.scm:617-618: when the command line gave ``-rerun``, the second pass uses it, so a
    test that failed again is run a third time in all."""

    def ran_once(
        where: str, setup: str, end: tuple[State, Status]
    ) -> tuple[InlineCollector, Agent]:
        """A run of one test ``t`` that ended ``end``, its first pass over."""
        home = open_home(make_area(tmp_path / where, setup, t=STEP), stores)
        agent = Agent(home)
        home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
        assert len(agent.pull()) == 1
        agent.report("r1", "t", *end)
        home.dispatcher.tick()
        return home, agent

    home, agent = ran_once("off", "run-wait yes\nreruns 0\n", (State.INCOMPLETE, Status.ABORT))
    assert agent.pull() == []
    assert state(home.store, "r1", "t") == ("INCOMPLETE", "ABORT")

    home, agent = ran_once("given", "run-wait yes\n", (State.COMPLETED, Status.FAIL))
    assert agent.pull() == []  # -rerun not given: FAIL stays
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%", rerun=(Status.FAIL,)))
    assert len(agent.pull()) == 1  # the first pass runs it again
    agent.report("r1", "t", State.COMPLETED, Status.FAIL)
    home.dispatcher.tick()
    assert len(agent.pull()) == 1  # and the second pass once more
