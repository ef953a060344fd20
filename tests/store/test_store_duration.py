"""tests.run_duration: the seconds from a test's RUNNING change to its end."""

from typing import TypedDict

from mtpkt import pkts
from mtpkt.store import Store
from tests.support.storekit import TARGET, MakeStore, Sender, State, Status


class Ending(TypedDict):
    """How a change ends a test (keywords of ``Sender.change``)."""

    state: pkts.State
    status: pkts.Status


DONE: Ending = {"state": State.COMPLETED, "status": Status.PASS}


def durations(store: Store) -> dict[tuple[str, str], float]:
    run_id = store.run_id(TARGET, "nightly", create=False)
    assert run_id is not None
    return {(row.testname, row.item_path): row.run_duration for row in store.tests(run_id)}


def test_run_duration_from_running_to_the_end(make_store: MakeStore) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.change(name, ts=100.0) for name in "abd"])
    store.apply([node.change("a", ts=112.5, **DONE)])  # separate batches
    store.apply([node.change("c", ts=200.0), node.change("c", ts=203.0, **DONE)])  # one batch
    store.apply([node.change("b", state=State.KILLREQ, ts=104.0)])
    assert durations(store)[("b", "")] == 0.0  # still running
    store.close()

    store = make_store()  # reopened: d's start is read back from its row
    store.apply(
        [
            node.change("b", state=State.KILLED, status=Status.KILLED, ts=109.0),
            node.change("d", ts=107.25, **DONE),
        ]
    )
    found = durations(store)
    assert found[("a", "")] == 12.5
    assert found[("c", "")] == 3.0
    assert found[("d", "")] == 7.25
    # Reopened while KILLREQ: its start is not known any more, the duration stays as it was.
    assert found[("b", "")] == 0.0
    store.apply([node.change("a", state=State.NOT_STARTED, ts=300.0)])  # rerunclean resets it
    assert durations(store)[("a", "")] == 0.0


def test_run_duration_survives_a_clean_of_other_tests_and_ignores_old_starts(
    make_store: MakeStore,
) -> None:
    store = make_store()
    node, home = Sender(), Sender(origin="home")
    store.apply([node.change(name, ts=100.0) for name in "abcd"])
    store.apply([node.change("a", state=State.KILLREQ, ts=101.0)])
    store.remove_tests(TARGET, "nightly", [("d", "")])  # reads the rows again
    store.apply([node.change("a", state=State.KILLED, status=Status.KILLED, ts=105.0)])
    # b ran, ended, was reset and handed out again in one batch, then killed before it ran
    store.apply(
        [
            node.change("b", ts=110.0, **DONE),
            home.change("b", state=State.NOT_STARTED, ts=120.0),
            home.change("b", state=State.LAUNCHED, ts=121.0),
        ]
    )
    store.apply([home.change("b", state=State.KILLED, status=Status.KILLED, ts=130.0)])
    # c is ended by the home (another clock): its duration is not measured across clocks
    store.apply([home.change("c", state=State.COMPLETED, status=Status.DEAD, ts=150.0)])
    found = durations(store)
    assert found[("a", "")] == 5.0
    assert found[("b", "")] == 0.0
    assert found[("c", "")] == 0.0
