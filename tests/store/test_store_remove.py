"""Removing tests' records (clean) and recording archives."""

from pathlib import Path

from mtpkt.store import ArchiveRow
from tests.support.storekit import TARGET, MakeStore, Sender, State, Status


def test_removing_items_rolls_up_and_removing_all_removes_the_run(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = make_store()
    node = Sender()
    store.apply(
        [
            node.change("unit", "1", State.COMPLETED, Status.PASS),
            node.change("unit", "2", State.COMPLETED, Status.FAIL),
            node.step("unit", "2"),
            node.change("build", "", State.COMPLETED, Status.PASS),
        ]
    )
    run_id = store.run_id(TARGET, "nightly", create=False)
    assert run_id is not None

    assert store.remove_tests(TARGET, "nightly", [("unit", "2")]) == [("unit", "2")]
    rows = {(row.testname, row.item_path): row for row in store.tests(run_id)}
    assert set(rows) == {("unit", "1"), ("unit", ""), ("build", "")}
    assert (rows[("unit", "")].state, rows[("unit", "")].status) == ("COMPLETED", "PASS")
    assert store.steps(run_id) == []
    assert [run.status for run in store.runs()] == ["PASS"]

    removed = store.remove_tests(TARGET, "nightly", [("unit", "1"), ("build", "")])
    assert removed == [("build", ""), ("unit", ""), ("unit", "1")]  # the toplevel went too
    assert store.runs() == []
    assert not (dbdir / f"{run_id}.db").exists()
    assert store.remove_tests(TARGET, "nightly", [("unit", "1")]) == []

    # a new run gets a new id, never the removed run's (its database name)
    store.apply([Sender(runname="later").change("build")])
    assert store.run_id(TARGET, "later", create=False) == run_id + 1


def test_an_archive_is_recorded_and_read_back(make_store: MakeStore) -> None:
    store = make_store()
    store.apply([Sender().change("build", "", State.COMPLETED, Status.PASS)])
    archive = ArchiveRow(path="/a/build.tar.gz", sha256="0" * 64, size=10, files=2)
    assert store.record_archive(TARGET, "nightly", ("build", ""), archive)
    got = store.archive(TARGET, "nightly", ("build", ""))
    assert got is not None
    assert (got.path, got.sha256, got.size, got.files) == (archive.path, "0" * 64, 10, 2)
    run_id = store.run_id(TARGET, "nightly", create=False)
    assert run_id is not None
    assert [row.archived for row in store.tests(run_id)] == [1]
    assert not store.record_archive(TARGET, "nightly", ("nosuch", ""), archive)
    assert store.archive(TARGET, "other", ("build", "")) is None


def test_a_retry_of_a_cleaned_packet_does_not_bring_it_back(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = make_store()
    node = Sender()
    packets = [
        node.change("keep", "", State.COMPLETED, Status.PASS),
        node.change("gone", "", State.COMPLETED, Status.FAIL),
    ]
    store.apply(packets)
    run_id = store.run_id(TARGET, "nightly", create=False)
    assert run_id is not None
    store.remove_tests(TARGET, "nightly", [("gone", "")])
    assert store.apply(packets) == []  # the agent never got its receipt and sends again
    assert [row.testname for row in store.tests(run_id)] == ["keep"]

    store.remove_tests(TARGET, "nightly", [("keep", "")])
    store.close()
    store = make_store()  # also across a restart of the home
    assert store.apply(packets) == []
    assert store.runs() == []  # no run made for them
    assert store.apply([node.change("new")]) != []  # what is new still goes in


def test_items_can_be_removed_after_their_toplevel(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.change("unit", item, State.COMPLETED, Status.PASS) for item in "12"])
    assert store.remove_tests(TARGET, "nightly", [("unit", "")]) == [("unit", "")]
    removed = store.remove_tests(TARGET, "nightly", [("unit", "1"), ("unit", "2")])
    assert removed == [("unit", "1"), ("unit", "2")]
    assert store.runs() == []
