"""Store.apply: exactly-once commits, stream sequence numbers, tests and steps rows, roll-ups."""

import logging

import pytest

from mtpkt.pkts.status import Ack, StatusPacket
from mtpkt.store import StoreError, TestRow
from mtpkt.store.databases import MAX_OPEN_RUNS
from tests.support.storekit import (
    END,
    START,
    TARGET,
    MakeReader,
    MakeStore,
    Sender,
    State,
    Status,
    ids_of,
    seqs_of,
)


def test_new_packets_get_consecutive_seqs_in_input_order(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    batch: list[StatusPacket] = [
        node.change("a"),
        node.step("a"),
        node.change("b"),
        node.step("b"),
    ]
    committed = store.apply(batch)
    assert committed == list(enumerate(batch, start=1))
    assert store.head() == 4
    more: list[StatusPacket] = [node.change("c"), node.ack()]
    assert store.apply(more) == [(5, more[0]), (6, more[1])]
    assert store.head() == 6


def test_duplicates_are_skipped_in_the_batch_later_and_after_reopening(
    make_store: MakeStore, make_reader: MakeReader
) -> None:
    store = make_store()
    node = Sender()
    a, b, c, ack = node.change("a"), node.step("a"), node.change("b"), node.ack()
    assert seqs_of(store.apply([a, b, a, ack, b, ack])) == [1, 2, 3]
    assert ids_of(store.apply([a, c, b, ack])) == [c.id]
    assert store.apply([a, b, c, ack]) == []
    store.close()

    store = make_store()
    assert store.head() == 4
    d = node.change("d")
    assert store.apply([c, ack, d, a]) == [(5, d)]
    assert ids_of(make_reader().history()) == [a.id, b.id, ack.id, c.id, d.id]


def test_an_empty_batch_commits_nothing(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply([]) == []
    assert store.head() == 0
    assert store.runs() == []


def test_status_changes_write_the_tests_row_last_one_wins(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    first = node.change("a", state=State.LAUNCHED, host="node1")
    last = node.change(
        "a", state=State.COMPLETED, status=Status.WARN, comment="slow", host="node7", pid=42
    )
    store.apply([first, node.change("a", state=State.RUNNING, host="node1"), last], received=5.0)
    run_id = store.run_id(TARGET, "nightly")
    assert run_id is not None
    (row,) = store.tests(run_id)
    assert (row.testname, row.item_path, row.state, row.status) == ("a", "", "COMPLETED", "WARN")
    assert (row.comment, row.host, row.event_time, row.last_update) == (
        "slow",
        "node7",
        last.ts,
        5.0,
    )
    assert row.run_id == run_id

    store.apply([node.change("a", state=State.RUNNING, comment="again")], received=6.0)
    (row,) = store.tests(run_id)
    assert (row.state, row.status, row.comment, row.last_update) == ("RUNNING", "n/a", "again", 6.0)


def test_steps_add_rows_and_create_missing_tests_rows(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    start = node.step("a", "x/1", step="build", state=START)
    end = node.step("a", "x/1", step="build", state=END, status=Status.FAIL, logfile="b.log")
    store.apply([start, end], received=3.0)
    run_id = store.run_id(TARGET, "nightly")
    assert run_id is not None
    steps = store.steps(run_id)
    assert [(s.testname, s.item_path, s.stepname, s.state, s.status, s.logfile) for s in steps] == [
        ("a", "x/1", "build", "start", "n/a", ""),
        ("a", "x/1", "build", "end", "FAIL", "b.log"),
    ]
    assert [s.event_time for s in steps] == [start.ts, end.ts]
    assert {s.comment for s in steps} == {""}
    rows = {(t.testname, t.item_path): (t.state, t.status) for t in store.tests(run_id)}
    assert rows == {("a", "x/1"): ("NOT_STARTED", "n/a"), ("a", ""): ("NOT_STARTED", "n/a")}
    assert steps[0].test_id == next(t.id for t in store.tests(run_id) if t.item_path == "x/1")


def test_a_step_does_not_reset_a_tests_row(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.change("a", state=State.RUNNING), node.step("a")])
    store.apply([node.step("a", state=END, status=Status.PASS)])
    run_id = store.run_id(TARGET, "nightly")
    assert run_id is not None
    assert [(t.state, t.status) for t in store.tests(run_id)] == [("RUNNING", "n/a")]


def toplevel(rows: list[TestRow], name: str) -> tuple[str, str, int, int]:
    (row,) = [t for t in rows if t.testname == name and t.item_path == ""]
    return row.state, row.status, row.pass_count, row.fail_count


def test_toplevel_rows_roll_up_their_items(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    done = State.COMPLETED
    store.apply([node.change("t", "1", done, Status.PASS), node.change("t", "2", State.RUNNING)])
    run_id = store.run_id(TARGET, "nightly")
    assert run_id is not None
    assert toplevel(store.tests(run_id), "t") == ("RUNNING", "PASS", 1, 0)

    store.apply([node.change("t", "2", done, Status.FAIL)])
    assert toplevel(store.tests(run_id), "t") == ("COMPLETED", "FAIL", 1, 1)

    # An item KILLED: the toplevel is KILLED too, as Megatest rolls it up (db.scm:3604-3656).
    store.apply([node.change("k", "1", done, Status.PASS), node.change("k", "2", State.KILLED)])
    assert toplevel(store.tests(run_id), "k") == ("KILLED", "CHECK", 1, 0)

    # A change sent for the toplevel itself does not stick: it is its items' roll-up.
    store.apply([node.change("k", "", State.RUNNING, Status.ABORT)])
    assert toplevel(store.tests(run_id), "k") == ("KILLED", "CHECK", 1, 0)


def test_a_plain_test_is_not_rolled_up(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.change("p", "", State.KILLED, Status.PASS)])
    run_id = store.run_id(TARGET, "nightly")
    assert run_id is not None
    assert [(t.state, t.status) for t in store.tests(run_id)] == [("KILLED", "PASS")]


def test_the_run_rolls_up_its_toplevel_level_records(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    done = State.COMPLETED
    store.apply([node.change("a", "", done, Status.PASS), node.step("b")])
    (run,) = store.runs()
    assert (run.state, run.status, run.pass_count, run.fail_count) == ("RUNNING", "PASS", 1, 0)

    store.apply(
        [
            node.change("b", "", done, Status.PASS),
            node.change("t", "1", done, Status.FAIL),
            node.change("t", "2", done, Status.PASS),
        ],
        received=9.0,
    )
    (run,) = store.runs()
    # a PASS, b PASS, t's toplevel FAIL; items do not count themselves.
    assert (run.state, run.status, run.pass_count, run.fail_count) == ("COMPLETED", "FAIL", 2, 1)
    assert run.last_update == 9.0


def test_runs_are_created_on_first_sight_and_kept_apart(make_store: MakeStore) -> None:
    store = make_store()
    nightly, weekly = Sender(runname="nightly"), Sender(origin="node2", runname="weekly")
    store.apply(
        [nightly.change("a"), weekly.change("a", state=State.COMPLETED, status=Status.PASS)]
    )
    runs = {run.runname: run for run in store.runs()}
    assert set(runs) == {"nightly", "weekly"}
    assert [(t.testname, t.state) for t in store.tests(runs["nightly"].id)] == [("a", "RUNNING")]
    assert [(t.testname, t.state) for t in store.tests(runs["weekly"].id)] == [("a", "COMPLETED")]


def test_acks_go_to_main_history(make_store: MakeStore, make_reader: MakeReader) -> None:
    store = make_store()
    home = Sender(origin="home")
    acks = [home.ack(), home.ack()]
    assert seqs_of(store.apply(acks)) == [1, 2]
    assert store.runs() == []
    history = make_reader().history()
    assert history == [(1, acks[0]), (2, acks[1])]
    assert all(isinstance(packet, Ack) for _, packet in history)


def test_head_survives_reopening(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.change("a") for _ in range(5)])
    store.apply([node.ack()])
    store.close()
    store = make_store()
    assert store.head() == 6
    assert seqs_of(store.apply([node.step("a")])) == [7]


def test_gaps_are_logged_and_applied(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    node = Sender()
    first, skipped, third = node.change("a"), node.change("b"), node.change("c")
    with caplog.at_level(logging.WARNING, logger="mtpkt.store"):
        assert store.apply([first]) != []
        assert caplog.messages == []
        assert ids_of(store.apply([third])) == [third.id]
    assert caplog.messages == ["status packets from node1: seq 3 follows 1 (a gap)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mtpkt.store"):
        assert ids_of(store.apply([skipped])) == [skipped.id]
    assert caplog.messages == [
        "status packets from node1: seq 2 follows 3 (out of order or repeated)"
    ]


def test_a_closed_store_says_so(make_store: MakeStore) -> None:
    store = make_store()
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.apply([Sender().change("a")])


def test_more_runs_than_the_writer_keeps_open(
    make_store: MakeStore, make_reader: MakeReader
) -> None:
    store = make_store()
    senders = [Sender(runname=f"run{n}") for n in range(MAX_OPEN_RUNS + 6)]
    store.apply([sender.change("a") for sender in senders])
    done = State.COMPLETED
    store.apply([sender.change("a", state=done, status=Status.PASS) for sender in senders])
    runs = store.runs()
    assert len(runs) == len(senders)
    assert {(run.state, run.status, run.pass_count) for run in runs} == {("COMPLETED", "PASS", 1)}
    assert [t.state for t in store.tests(runs[0].id)] == ["COMPLETED"]
    store.close()
    store = make_store(durable=True)
    assert store.head() == 2 * len(senders)
    assert store.apply([senders[0].change("a")]) != []
    assert len(make_reader().history(runname="run0")) == 3


def test_check_target(make_store: MakeStore) -> None:
    store = make_store()
    assert store.fields == ("os", "arch")
    store.check_target(TARGET)
    with pytest.raises(StoreError, match=r"target 'ubuntu' has 1 part\(s\)"):
        store.check_target("ubuntu")
