"""The host agent end to end: real sockets on loopback, real test processes, real SQLite files.

The home is played by two real parts: a :class:`Collector` with its store takes
the status packets and heartbeats, and a small stand-in (a real
:class:`bus.Replier`) answers the agent's pulls with the tasks a test chooses,
sending each again until the agent acknowledges it, as the home does.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from mtpkt import pkts
from mtpkt.agents.area import Area, TestRef
from mtpkt.agents.home.collector import Collector
from mtpkt.agents.host.agent import HostAgent
from mtpkt.agents.host.plans import PlanCache
from mtpkt.agents.host.pulls import PULL_TIMEOUT
from mtpkt.agents.host.seen import SeenError, SeenTasks
from mtpkt.bus import Replier, SpoolError
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.link import Pull, Receipt, Task
from mtpkt.pkts.status import StatusChange
from mtpkt.store import HistoryReader, Store, TestRow
from tests.support.farm import write_area
from tests.support.procs import free_port, processes_with, wait_until

TARGET = "linux/x86"
RUN = "nightly"
FIELDS = ["OS", "ARCH"]
# Names the sleeper's processes in /proc: this run's own, even while the suite runs twice at once.
SLEEP = f"3019.{os.getpid():07d}"

FILES = {
    "megatest.config": """
        [fields]
        OS TEXT
        ARCH TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/links
    """,
    "runconfigs.config": """
        [default]
        GREETING hello
    """,
    "tests/quick/testconfig": """
        [ezsteps]
        tally echo "$MT_TEST_NAME/$MT_ITEMPATH" >> "$MT_RUN_AREA_HOME/tally.txt"
    """,
    "tests/itemized/testconfig": """
        [ezsteps]
        tally echo "$MT_TEST_NAME/$MT_ITEMPATH" >> "$MT_RUN_AREA_HOME/tally.txt"

        [items]
        N 1 2 3
    """,
    "tests/slowish/testconfig": """
        [ezsteps]
        work sleep 1.5 && echo "$MT_TEST_NAME/" >> "$MT_RUN_AREA_HOME/tally.txt"
    """,
    "tests/sleeper/testconfig": f"""
        [ezsteps]
        nap sleep {SLEEP} & sleep {SLEEP} & wait
    """,
    "tests/broken/testconfig": """
        [ezsteps]
        never echo never

        [requirements]
        mode exclusive
    """,
}


def task(action: Action, test: str, item: str = "", *, grace: float = 10.0) -> Task:
    return Task(
        origin="home",
        action=action,
        target=TARGET,
        runname=RUN,
        test=test,
        item=item,
        control=pkts.new_id(),
        grace=grace,
    )


class FakeHome:
    """Answers pulls like the home: a receipt, then every task given and not yet acknowledged."""

    def __init__(self, key: bytes, address: str = "tcp://127.0.0.1:0") -> None:
        self.key = key
        self.lock = threading.Lock()
        self.pending: dict[bytes, Task] = {}
        self.pulls: list[Pull] = []
        self.refuse = ""
        self.replier = Replier(address, self._handle, workers=2, name="fake home")
        self.replier.start()
        self.address = self.replier.address

    def give(self, *tasks: Task) -> None:
        with self.lock:
            self.pending.update((t.id, t) for t in tasks)

    def _handle(self, frame: bytes) -> bytes:
        pull = pkts.decode(frame, self.key)
        assert isinstance(pull, Pull)
        with self.lock:
            self.pulls.append(pull)
            if self.refuse:
                return pkts.encode(Receipt(origin="home", error=self.refuse), self.key)
            for task_id in pull.acks:
                self.pending.pop(task_id, None)
            tasks = list(self.pending.values())
        return pkts.encode_batch([Receipt(origin="home"), *tasks], self.key)

    def acks(self, task_id: bytes, since: int = 0) -> int:
        """How many pulls (from number ``since`` on) acknowledged the task."""
        with self.lock:
            return sum(task_id in pull.acks for pull in self.pulls[since:])

    def pulls_so_far(self) -> list[Pull]:
        with self.lock:
            return list(self.pulls)

    def close(self) -> None:
        self.replier.close()


class Statuses:
    """A collector with its store: where the agent's status packets and heartbeats land."""

    def __init__(self, dbdir: Path, key: bytes, address: str = "tcp://127.0.0.1:0") -> None:
        self.store = Store(dbdir, FIELDS)
        self.collector = Collector(self.store, key, listen=address, publish="tcp://127.0.0.1:0")
        self.collector.start()
        self.address = self.collector.listen_address

    def rows(self) -> dict[tuple[str, str], TestRow]:
        run_id = self.store.run_id(TARGET, RUN, create=False)
        if run_id is None:
            return {}
        return {(row.testname, row.item_path): row for row in self.store.tests(run_id)}

    def state(self, test: str, item: str = "") -> tuple[str, str] | None:
        row = self.rows().get((test, item))
        return None if row is None else (row.state, row.status)

    def wait_state(self, test: str, state: State, status: Status, item: str = "") -> TestRow:
        wait_until(
            lambda: self.state(test, item) == (state, status), 20, f"{test}/{item} {state}/{status}"
        )
        return self.rows()[(test, item)]

    def changes(self) -> list[StatusChange]:
        """Every status change committed, in commit order."""
        reader = HistoryReader(self.store.dbdir)
        try:
            history = reader.history(limit=10_000)
        finally:
            reader.close()
        return [packet for _, packet in history if isinstance(packet, StatusChange)]

    def close(self) -> None:
        self.collector.close()
        self.store.close()


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def area(tmp_path: Path) -> Area:
    root = write_area(tmp_path / "area", FILES)
    return Area.load(root, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})


def tally(area: Area) -> list[str]:
    path = area.home / "tally.txt"
    return sorted(path.read_text().split()) if path.exists() else []


@pytest.fixture
def home(key: bytes) -> Iterator[FakeHome]:
    fake = FakeHome(key)
    yield fake
    fake.close()


@pytest.fixture
def statuses(tmp_path: Path, key: bytes) -> Iterator[Statuses]:
    made = Statuses(tmp_path / "db", key)
    yield made
    made.close()


@pytest.fixture
def make_agent(area: Area, key: bytes, tmp_path: Path) -> Iterator[Callable[..., HostAgent]]:
    """Factory of agents on ``tmp_path/state``; every one is stopped at the end of the test."""
    made: list[HostAgent] = []

    def make(home: str, status_home: str, *, slots: int = 2) -> HostAgent:
        agent = HostAgent(
            area,
            key,
            home=home,
            status_home=status_home,
            name="node1",
            slots=slots,
            state_dir=tmp_path / "state",
            kill_grace=1.0,
            pull_interval=0.05,
            heartbeat=0.5,
        )
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()
    assert not processes_with(SLEEP), "a test left processes behind"


@pytest.mark.timeout(60)
def test_a_run_task_runs_exactly_its_instance_and_the_status_lands_in_the_store(
    area: Area, home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    agent = make_agent(home.address, statuses.address)
    agent.start()
    quick, item2 = task(Action.RUN, "quick"), task(Action.RUN, "itemized", "2")
    home.give(quick, item2)

    row = statuses.wait_state("quick", State.COMPLETED, Status.PASS)
    assert row.host == "node1"
    statuses.wait_state("itemized", State.COMPLETED, Status.PASS, item="2")
    assert tally(area) == ["itemized/2", "quick/"]
    assert ("itemized", "1") not in statuses.rows()  # the task named one item, not the test
    wait_until(lambda: not home.pending, 10, "the home to see both tasks acknowledged")
    wait_until(lambda: not agent.running, 10, "the agent to have nothing running")

    pulls = home.pulls_so_far()
    assert all(p.origin == "node1" and p.slots == 2 and not p.draining for p in pulls)
    assert pulls[-1].free == 2
    wait_until(
        lambda: [(a.name, a.slots) for a in statuses.store.agents()] == [("node1", 2)],
        10,
        "the heartbeat to be registered",
    )


@pytest.mark.timeout(60)
def test_a_task_delivered_again_runs_once_also_after_a_restart(
    area: Area, home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    first = make_agent(home.address, statuses.address)
    first.start()
    quick = task(Action.RUN, "quick")
    home.give(quick)
    statuses.wait_state("quick", State.COMPLETED, Status.PASS)
    wait_until(lambda: home.acks(quick.id) >= 1, 10, "the first ack")

    home.give(quick)  # as a home re-sends a task whose ack it missed
    wait_until(lambda: home.acks(quick.id) >= 2, 10, "the task to be acknowledged again")
    first.stop()
    assert first.wait(0)

    second = make_agent(home.address, statuses.address)
    since = len(home.pulls_so_far())
    home.give(quick)  # and again, to an agent that starts with the same state_dir
    second.start()
    wait_until(lambda: home.acks(quick.id, since) >= 1, 10, "the restarted agent's ack")
    item1 = task(Action.RUN, "itemized", "1")
    home.give(item1)
    statuses.wait_state("itemized", State.COMPLETED, Status.PASS, item="1")
    assert tally(area) == ["itemized/1", "quick/"]  # quick ran once
    second.stop()

    # The restarted agent went on numbering its status packets where the first one stopped.
    reader = HistoryReader(statuses.store.dbdir)
    try:
        seqs = [p.seq for _, p in reader.history(limit=10_000) if p.origin == "node1"]
    finally:
        reader.close()
    assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.timeout(60)
def test_a_kill_task_stops_a_sleeper_quickly_and_stop_kills_what_runs(
    home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    agent = make_agent(home.address, statuses.address)
    agent.start()
    home.give(task(Action.RUN, "sleeper"))
    statuses.wait_state("sleeper", State.RUNNING, Status.NA)
    wait_until(lambda: processes_with(SLEEP), 10, "the sleeper's processes")

    began = time.monotonic()
    home.give(task(Action.KILL, "sleeper", grace=0.5))
    row = statuses.wait_state("sleeper", State.KILLED, Status.KILLED)
    assert time.monotonic() - began < 5
    assert row.comment == "killed by request"
    wait_until(lambda: not processes_with(SLEEP), 5, "no sleeper processes left")
    wait_until(lambda: not agent.running, 5, "the agent to have nothing running")

    # A kill of something not running here does nothing, and the agent carries on.
    home.give(task(Action.KILL, "quick"))
    home.give(task(Action.RUN, "sleeper"))
    wait_until(lambda: len(agent.running) == 1, 10, "the second sleeper to start")
    statuses.wait_state("sleeper", State.RUNNING, Status.NA)
    wait_until(lambda: processes_with(SLEEP), 10, "the second sleeper's processes")

    began = time.monotonic()
    agent.stop()
    assert time.monotonic() - began < 8
    assert agent.wait(0)
    assert not processes_with(SLEEP)
    row = statuses.wait_state("sleeper", State.KILLED, Status.KILLED)
    assert row.comment == "agent node1 is stopping"
    agent.stop()  # idempotent
    agent.drain()


@pytest.mark.timeout(60)
def test_a_run_task_waits_for_a_free_slot_and_can_be_withdrawn(
    home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    agent = make_agent(home.address, statuses.address, slots=1)
    agent.start()
    first, second = task(Action.RUN, "sleeper"), task(Action.RUN, "quick")
    home.give(first)
    wait_until(lambda: agent.running, 10, "the sleeper to start")
    home.give(second)  # more than the pull's free slots, as after a lost answer
    wait_until(lambda: home.acks(second.id), 10, "the second task to be taken")

    assert [ref.test for ref in agent.running] == ["sleeper"]
    latest = home.pulls_so_far()[-1]
    assert (latest.free, set(latest.running)) == (0, {first.id, second.id})
    home.give(task(Action.KILL, "quick"))
    row = statuses.wait_state("quick", State.KILLED, Status.KILLED)
    assert row.comment == "killed by request"
    assert [ref.test for ref in agent.running] == ["sleeper"]
    wait_until(lambda: set(home.pulls_so_far()[-1].running) == {first.id}, 10, "one task left")


@pytest.mark.timeout(60)
def test_a_task_that_cannot_be_planned_ends_abort_with_one_line(
    home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    agent = make_agent(home.address, statuses.address)
    agent.start()
    home.give(
        task(Action.RUN, "nosuch"),
        task(Action.RUN, "broken"),
        task(Action.RUN, "itemized", "9"),
        task(Action.RUN, "itemized"),  # itemized, so there is no instance without an item
    )
    comments = {
        "nosuch": "matches no test of the area",
        "broken": "mode exclusive is not supported",
    }
    for test, words in comments.items():
        row = statuses.wait_state(test, State.COMPLETED, Status.ABORT)
        assert words in row.comment
        assert "\n" not in row.comment
    row = statuses.wait_state("itemized", State.COMPLETED, Status.ABORT, item="9")
    assert "has no test instance itemized/9" in row.comment
    # The toplevel record of an itemized test is the store's roll-up: look at the packet.
    wait_until(
        lambda: any(
            (p.test, p.item, p.state, p.status) == ("itemized", "", State.COMPLETED, Status.ABORT)
            and "no test instance itemized for linux/x86/nightly" in p.comment
            for p in statuses.changes()
        ),
        10,
        "the ABORT of the instance that is not there",
    )
    wait_until(lambda: not agent.running, 10, "every task to have ended")

    home.give(task(Action.RUN, "quick"))  # the agent carries on
    statuses.wait_state("quick", State.COMPLETED, Status.PASS)


@pytest.mark.timeout(60)
def test_drain_finishes_running_work_still_kills_and_takes_nothing_new(
    area: Area, home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    agent = make_agent(home.address, statuses.address)
    agent.start()
    home.give(task(Action.RUN, "slowish"), task(Action.RUN, "sleeper"))
    statuses.wait_state("slowish", State.RUNNING, Status.NA)
    statuses.wait_state("sleeper", State.RUNNING, Status.NA)

    drained = threading.Thread(target=agent.drain, kwargs={"timeout": 30})
    drained.start()
    try:
        wait_until(
            lambda: any(p.draining and p.free == 0 for p in home.pulls_so_far()),
            5,
            "a draining pull",
        )
        late = task(Action.RUN, "quick")
        home.give(late, task(Action.KILL, "sleeper", grace=0.5))
        drained.join(20)
        assert not drained.is_alive()
    finally:
        agent.stop()
        drained.join(10)

    assert agent.wait(0)
    # drain() returned with the status of both tests already in the store.
    assert statuses.state("slowish") == (State.COMPLETED, Status.PASS)
    assert statuses.state("sleeper") == (State.KILLED, Status.KILLED)
    assert statuses.state("quick") is None
    assert home.acks(late.id) == 0  # not taken: left for another agent
    assert late.id in home.pending
    assert tally(area) == ["slowish/"]
    assert [a.state for a in statuses.store.agents()] == ["offline"]


@pytest.mark.timeout(60)
def test_the_home_down_then_up_then_restarted(
    area: Area,
    key: bytes,
    tmp_path: Path,
    make_agent: Callable[..., HostAgent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pull_address = f"tcp://127.0.0.1:{free_port()}"
    status_address = f"tcp://127.0.0.1:{free_port()}"
    agent = make_agent(pull_address, status_address)
    with caplog.at_level(logging.DEBUG, logger="mtpkt.agents.host.pulls"):
        agent.start()
        # Two pulls time out, but the trouble is logged once.
        wait_until(
            lambda: "still no reply" in caplog.text, PULL_TIMEOUT * 3, "a second failed pull"
        )
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "mtpkt.agents.host.pulls" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        assert pull_address in warnings[0]

        home = FakeHome(key, pull_address)
        statuses: Statuses | None = None
        try:
            home.give(task(Action.RUN, "quick"))
            # It runs while the collector is still down; its status waits in the spool.
            wait_until(lambda: tally(area) == ["quick/"], 10, "the test to run")
            assert "recovered" in caplog.text
            statuses = Statuses(tmp_path / "db", key, status_address)
            statuses.wait_state("quick", State.COMPLETED, Status.PASS)

            home.close()  # the home restarts, refusing pulls for a while
            home = FakeHome(key, pull_address)
            home.refuse = "not ready"
            home.give(task(Action.RUN, "itemized", "3"))
            wait_until(lambda: len(home.pulls_so_far()) >= 3, 10, "refused pulls")
            refused = [
                r
                for r in caplog.records
                if r.levelno == logging.WARNING and "refused the pull" in r.getMessage()
            ]
            assert len(refused) == 1
            home.refuse = ""
            statuses.wait_state("itemized", State.COMPLETED, Status.PASS, item="3")
            agent.stop()
        finally:
            home.close()
            if statuses is not None:
                statuses.close()


@pytest.mark.timeout(60)
def test_a_drain_that_runs_out_of_time_kills_and_one_state_dir_has_one_agent(
    home: FakeHome, statuses: Statuses, make_agent: Callable[..., HostAgent]
) -> None:
    with make_agent(home.address, statuses.address) as agent:
        with pytest.raises(RuntimeError, match="already started"):
            agent.start()
        with pytest.raises(SpoolError, match="in use"):
            make_agent(home.address, statuses.address).start()  # the same state_dir
        home.give(task(Action.RUN, "sleeper"))
        statuses.wait_state("sleeper", State.RUNNING, Status.NA)
        began = time.monotonic()
        agent.drain(timeout=0.3)
        assert time.monotonic() - began < 5
        assert agent.wait(0)
    row = statuses.wait_state("sleeper", State.KILLED, Status.KILLED)
    assert row.comment == "agent node1 is stopping"
    assert not processes_with(SLEEP)


def test_seen_task_ids_survive_reopening_and_old_ones_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "state" / "seen.db"
    first, second = pkts.new_id(), pkts.new_id()
    seen = SeenTasks(path)
    try:
        assert seen.add(first)
        assert not seen.add(first)
        assert first in seen
        assert second not in seen
    finally:
        seen.close()
    seen = SeenTasks(path)
    try:
        assert not seen.add(first)
        assert len(seen) == 1
    finally:
        seen.close()
    seen = SeenTasks(path, retention=-1.0)  # every id is older than that
    try:
        assert len(seen) == 0
        assert seen.add(first)
    finally:
        seen.close()
    path.write_bytes(b"not a database, not at all" * 10)
    (tmp_path / "state" / "seen.db-wal").unlink(missing_ok=True)
    with pytest.raises(SeenError, match=r"seen\.db"):
        SeenTasks(path)


def test_a_pull_s_tasks_are_recorded_together(tmp_path: Path) -> None:
    seen = SeenTasks(tmp_path / "seen.db")
    old, run, kill = pkts.new_id(), pkts.new_id(), pkts.new_id()
    ref = TestRef(TARGET, RUN, "unit", "a/1")
    try:
        assert seen.add(old)
        assert seen.add_many([(old, ref), (run, ref), (kill, None)]) == {run, kill}
        assert seen.unfinished() == [(run, ref)]  # only a new run task is noted unfinished
        assert seen.add_many([]) == set()
        seen.finish(run)
        assert seen.unfinished() == []
    finally:
        seen.close()


def test_a_test_is_planned_once_per_launch_and_a_failed_plan_is_planned_again(area: Area) -> None:
    plans = PlanCache(area, agent="node1")

    def planned(test: str, item: str, control: bytes) -> str:
        """The instance's display name, or why there is none."""
        given = attrs.evolve(task(Action.RUN, test, item), control=control)
        found = plans.instance(given, TestRef(TARGET, RUN, test, item))
        return found if isinstance(found, str) else f"{found.ref.test}/{found.ref.item}"

    launch = pkts.new_id()
    assert planned("itemized", "1", launch) == "itemized/1"
    (area.home / "tests/itemized/testconfig").write_text("[ezsteps]\nx true\n[items]\nN 1 4\n")
    # The launch's other items come from its plan, made before the change ...
    assert planned("itemized", "2", launch) == "itemized/2"
    assert "has no test instance itemized/4" in planned("itemized", "4", launch)
    # ... and a new launch plans the test anew.
    assert planned("itemized", "4", pkts.new_id()) == "itemized/4"

    assert "matches no test of the area" in planned("later", "", launch)
    (area.home / "tests/later").mkdir()
    (area.home / "tests/later/testconfig").write_text("[ezsteps]\nx true\n")
    assert planned("later", "", launch) == "later/"  # the failure was not kept


def test_a_tests_items_taken_at_once_are_planned_once(area: Area) -> None:
    """An agent's slots start together: the tasks of one test's items wait for one plan."""
    plans = PlanCache(area, agent="node1")
    launch = pkts.new_id()
    found: list[str] = []

    def take(item: str) -> None:
        given = attrs.evolve(task(Action.RUN, "itemized", item), control=launch)
        instance = plans.instance(given, TestRef(TARGET, RUN, "itemized", item))
        found.append(instance if isinstance(instance, str) else instance.ref.item)

    threads = [threading.Thread(target=take, args=(item,)) for item in ("1", "2", "3") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(found) == ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    assert plans._instances.cache_info().misses == 1  # planned by one thread, once


def test_tasks_waiting_for_a_plan_that_fails_get_its_failure_and_the_next_plans_again(
    area: Area,
) -> None:
    plans = PlanCache(area, agent="node1")
    launch = pkts.new_id()
    found: list[str] = []

    def take() -> None:
        given = attrs.evolve(task(Action.RUN, "missing", ""), control=launch)
        instance = plans.instance(given, TestRef(TARGET, RUN, "missing", ""))
        found.append(instance if isinstance(instance, str) else "planned")

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(found) == 6
    assert all("matches no test of the area" in line for line in found), found
    tried = plans._instances.cache_info().misses
    assert 1 <= tried <= 6  # those that came while it was planned took its failure
    take()  # once none waits, the failure is not kept: planned again
    assert plans._instances.cache_info().misses == tried + 1
