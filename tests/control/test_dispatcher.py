"""The dispatcher on its own: a real area and a real store, the collector's part played inline.

:class:`InlineCollector` stands in for the collector the way an in-memory broker
stands in for a message bus: what the home submits is committed into the real
store at once, in this thread, and then shown to the dispatcher as the writer
thread would show it. No sockets: these tests are about the books, the
numbering and the liveness rule, not the transport (the end-to-end suites
cover that).
"""

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import apsw
import pytest

from mtpkt.agents.area import Area
from mtpkt.agents.home.dispatcher import Dispatcher
from mtpkt.agents.home.intake import ControlError
from mtpkt.agents.rundirs import instance_dir
from mtpkt.pkts import Action, Phase, State, Status
from mtpkt.pkts.control import Archive, Kill, Run
from mtpkt.pkts.link import Heartbeat, Pull, Task
from mtpkt.pkts.status import StatusChange, StatusPacket
from mtpkt.store import HistoryReader, JournalRow, Store
from mtpkt.store.journal import DONE, FAILED
from tests.support.farm import TARGET, make_area


class InlineCollector:
    """The collector's ``submit`` without a writer thread: commits at once, then shows the
    committed StatusChanges to its dispatcher (as ``on_commit`` does)."""

    def __init__(self, area: Area, store: Store, *, agent_grace: float = 60.0) -> None:
        self.store = store
        self.dispatcher = Dispatcher(area, store, self.submit, agent_grace=agent_grace)

    def submit(self, packets: Sequence[StatusPacket]) -> Callable[[], None]:
        committed = self.store.apply(packets) if packets else []
        changes = [packet for _, packet in committed if isinstance(packet, StatusChange)]
        if changes:
            self.dispatcher.observe(changes)
        return lambda: None

    def report(self, *changes: StatusChange) -> None:
        """What an agent reports, committed and observed."""
        self.submit(changes)


@pytest.fixture
def area(tmp_path: Path) -> Area:
    return Area.load(make_area(tmp_path / "area"))


@pytest.fixture
def store(area: Area) -> Iterator[Store]:
    with Store(area.dbdir, area.fields, durable=False) as store:
        yield store


def records(store: Store, runname: str) -> dict[str, tuple[str, str, str]]:
    """``test/item`` → (state, status, host) of the run's records."""
    run_id = store.run_id(TARGET, runname, create=False)
    assert run_id is not None
    return {
        "/".join(filter(None, (row.testname, row.item_path))): (row.state, row.status, row.host)
        for row in store.tests(run_id)
    }


def home_seqs(store: Store) -> list[int]:
    reader = HistoryReader(store.dbdir)
    try:
        history = reader.history(after=0, limit=10_000)
    finally:
        reader.close()
    return [packet.seq for _, packet in history if packet.origin == "home"]


def run_tasks(tasks: list[Task]) -> dict[str, Task]:
    return {task.test: task for task in tasks if task.action is Action.RUN}


def test_a_run_is_recorded_then_handed_out_launched_within_the_free_slots(
    area: Area, store: Store
) -> None:
    home = InlineCollector(area, store)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    assert {state for state, _, _ in records(store, "r1").values()} == {"NOT_STARTED"}

    tasks = home.dispatcher.pull(Pull(origin="a1", slots=2, free=2))
    assert len(run_tasks(tasks)) == 2  # ready ones only, no more than the free slots
    launched = {name for name, (state, _, _) in records(store, "r1").items() if state == "LAUNCHED"}
    assert launched == set(run_tasks(tasks))  # committed before the agent hears of them
    assert all(
        host == "a1" for name, (_, _, host) in records(store, "r1").items() if name in launched
    )

    again = home.dispatcher.pull(Pull(origin="a1", slots=2, free=0))
    assert {t.id for t in again} == {t.id for t in tasks}  # sent again until acknowledged
    acked = home.dispatcher.pull(
        Pull(origin="a1", slots=2, free=0, acks=tuple(t.id for t in tasks))
    )
    assert acked == []


def test_the_home_numbers_its_packets_on_from_the_last_one_committed(
    area: Area, store: Store
) -> None:
    first = InlineCollector(area, store)
    first.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="%"))
    first.dispatcher.pull(Pull(origin="a1", slots=3, free=3))
    before = home_seqs(store)
    assert before == list(range(1, len(before) + 1))

    second = InlineCollector(area, store)  # a home that restarted
    second.dispatcher.recover()
    second.dispatcher.control(Kill(target=TARGET, runname="r1", testpatt="%"))
    seqs = home_seqs(store)
    assert len(seqs) > len(before)
    assert seqs == list(range(1, len(seqs) + 1))  # one numbering: none reused, none skipped


def write_foreign_word(area: Area, store: Store, test: str) -> None:
    """Record ``test`` of run r1 as another tool might: COMPLETED with a status mtpkt does
    not know."""
    run_id = store.run_id(TARGET, "r1", create=False)
    conn = apsw.Connection(str(area.dbdir / f"{run_id}.db"))
    try:
        conn.execute(
            "UPDATE tests SET state = 'COMPLETED', status = 'GREEN' WHERE testname = ?", (test,)
        )
    finally:
        conn.close()


def test_a_restarted_home_reads_a_word_another_tool_wrote_as_every_reader_does(
    area: Area, store: Store
) -> None:
    """A status mtpkt does not know counts as CHECK (pkts.outcome.read_status): the record
    has settled, and the run picked up again leaves it alone instead of running it anew."""
    first = InlineCollector(area, store)
    first.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="sleeper,build"))
    write_foreign_word(area, store, "build")

    second = InlineCollector(area, store)  # a home that restarted
    second.dispatcher.recover()
    handed = second.dispatcher.pull(Pull(origin="a1", slots=4, free=4))
    assert [task.test for task in handed] == ["sleeper"]
    assert records(store, "r1")["build"][:2] == ("COMPLETED", "GREEN")


def test_an_archive_keeps_a_status_no_packet_can_carry_as_check(area: Area, store: Store) -> None:
    home = InlineCollector(area, store)
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="build"))
    write_foreign_word(area, store, "build")
    rundir = instance_dir(area.linktree, TARGET, "r1", "build")
    rundir.mkdir(parents=True)
    (rundir / "build.log").write_text("compiled\n")

    archive = Archive(target=TARGET, runname="r1", testpatt="build", remove=True)
    home.dispatcher.start()
    try:
        home.dispatcher.control(archive)
        deadline = time.monotonic() + 30
        while (entry := journal_entry(store, archive.id)).state not in (DONE, FAILED):
            assert time.monotonic() < deadline, entry
            time.sleep(0.05)
    finally:
        home.dispatcher.close()
    assert entry.state == DONE, entry
    assert entry.reason.startswith("archived and removed 1 test(s): build"), entry
    assert records(store, "r1")["build"][:2] == ("ARCHIVED", "CHECK")
    assert not rundir.exists()


def journal_entry(store: Store, packet_id: bytes) -> JournalRow:
    (entry,) = [row for row in store.journal() if row.packet.id == packet_id]
    return entry


def test_a_refused_packet_changes_nothing(area: Area, store: Store) -> None:
    home = InlineCollector(area, store)
    with pytest.raises(ControlError, match="nosuch"):
        home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt="nosuch"))
    with pytest.raises(ControlError, match="there is no run"):
        home.dispatcher.control(Kill(target=TARGET, runname="r9", testpatt="%"))
    assert home_seqs(store) == []
    assert store.journal() == []


def test_tests_of_an_agent_lost_beyond_the_grace_die_and_are_killed_if_it_returns(
    area: Area, store: Store
) -> None:
    interval = 0.1
    home = InlineCollector(area, store, agent_grace=0.0)
    dispatcher = home.dispatcher
    dispatcher.control(Run(target=TARGET, runname="r1", testpatt="sleeper"))
    store.heartbeats(
        [Heartbeat(origin="a1", phase=Phase.ONLINE, interval=interval)], received=time.time()
    )
    (task,) = dispatcher.pull(Pull(origin="a1", slots=1, free=1))
    dispatcher.pull(Pull(origin="a1", slots=1, free=0, acks=(task.id,), running=(task.id,)))

    deadline = time.monotonic() + 10
    while records(store, "r1")["sleeper"][:2] != ("COMPLETED", "DEAD"):
        assert time.monotonic() < deadline, records(store, "r1")
        store.mark_lost(time.time())  # the collector's writer does this every second
        time.sleep(0.05)
        dispatcher.tick()
    assert "agent a1 lost" in _comment(store, "sleeper")

    store.heartbeats(
        [Heartbeat(origin="a1", phase=Phase.BEAT, interval=interval)], received=time.time()
    )
    back = dispatcher.pull(Pull(origin="a1", slots=1, free=0, running=(task.id,)))
    (kill,) = back
    assert kill.action is Action.KILL
    assert (kill.test, kill.control) == ("sleeper", task.control)


def _comment(store: Store, test: str) -> str:
    run_id = store.run_id(TARGET, "r1", create=False)
    assert run_id is not None
    (row,) = [row for row in store.tests(run_id) if row.testname == test]
    return row.comment


def test_a_kill_withdraws_what_waits_and_asks_the_agent_for_what_runs(
    area: Area, store: Store
) -> None:
    home = InlineCollector(area, store)
    dispatcher = home.dispatcher
    run = Run(target=TARGET, runname="r1", testpatt="sleeper,build")
    dispatcher.control(run)
    (first,) = dispatcher.pull(Pull(origin="a1", slots=1, free=1))
    kill = Kill(target=TARGET, runname="r1", testpatt="%", grace=3.0)
    dispatcher.control(kill)
    states = records(store, "r1")
    waiting = "build" if first.test == "sleeper" else "sleeper"
    assert states[first.test][:2] == ("KILLREQ", "n/a")
    assert states[waiting][:2] == ("KILLED", "KILLED")
    tasks = dispatcher.pull(Pull(origin="a1", slots=1, free=0, acks=(first.id,)))
    (asked,) = tasks
    assert (asked.action, asked.test, asked.control, asked.grace) == (
        Action.KILL, first.test, kill.id, 3.0,
    )  # fmt: skip
    home.report(
        StatusChange(
            origin="a1", seq=1, target=TARGET, runname="r1", test=first.test,
            state=State.KILLED, status=Status.KILLED,
        )
    )  # fmt: skip
    journal = {row.packet.id: row.state for row in store.journal()}
    assert (journal[kill.id], journal[run.id]) == ("done", "started")
    dispatcher.tick()  # the run has settled
    assert {row.packet.id: row.state for row in store.journal()}[run.id] == "done"
