"""Properties: any batches, with repeats and restarts, land exactly once in first-seen order."""

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mtpkt import pkts
from mtpkt.pkts.outcome import rollup, toplevel_rollup
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step
from mtpkt.store import HistoryReader, Store
from mtpkt.store.tally import Tally
from tests.support.storekit import FIELDS, TARGET

State, Status = pkts.State, pkts.Status
RUNS = ("nightly", "weekly")
TESTS = ("a", "b")
ITEMS = ("", "1", "2")


@st.composite
def packet_pools(draw: st.DrawFn) -> list[StatusPacket]:
    """Distinct packets about two runs, two tests with or without items, from two origins."""
    specs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["change", "step", "ack"]),
                st.sampled_from(RUNS),
                st.sampled_from(TESTS),
                st.sampled_from(ITEMS),
                st.sampled_from(list(State)),
                st.sampled_from(list(Status)),
                st.sampled_from(["node1", "node2"]),
            ),
            min_size=1,
            max_size=25,
        )
    )
    seq: Counter[str] = Counter()
    pool: list[StatusPacket] = []
    for kind, runname, test, item, state, status, origin in specs:
        seq[origin] += 1
        about = {"origin": origin, "seq": seq[origin], "target": TARGET, "runname": runname}
        if kind == "change":
            pool.append(StatusChange(**about, test=test, item=item, state=state, status=status))
        elif kind == "step":
            pool.append(Step(**about, test=test, item=item, step="s", state=pkts.StepState.END))
        else:
            pool.append(
                Ack(origin=origin, seq=seq[origin], ref=pkts.new_id(), outcome=pkts.AckOutcome.DONE)
            )
    return pool


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[StatusPacket], list[tuple[list[StatusPacket], bool]]]:
    """A pool, and batches drawn from it with repeats, each maybe followed by a restart."""
    pool = draw(packet_pools())
    indices = st.lists(st.integers(0, len(pool) - 1), max_size=12)
    batches = draw(st.lists(st.tuples(indices, st.booleans()), min_size=1, max_size=6))
    return pool, [([pool[i] for i in batch], reopen) for batch, reopen in batches]


def expected_tests(
    distinct: list[StatusPacket], runname: str
) -> dict[tuple[str, str], tuple[str, str]]:
    """What the tests table must hold after these packets, by Megatest's rules."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for packet in distinct:
        if isinstance(packet, Ack) or packet.runname != runname:
            continue
        key = (packet.test, packet.item)
        if isinstance(packet, StatusChange):
            rows[key] = (packet.state, packet.status)
        else:
            rows.setdefault(key, (State.NOT_STARTED, Status.NA))
    for test in TESTS:
        items = [
            (State(s), Status(t)) for (name, item), (s, t) in rows.items() if name == test and item
        ]
        if items:
            rows[(test, "")] = toplevel_rollup(items)
    return rows


@settings(max_examples=100)
@given(scenarios())
def test_history_is_the_distinct_packets_in_first_seen_order(
    scenario: tuple[list[StatusPacket], list[tuple[list[StatusPacket], bool]]],
) -> None:
    _, batches = scenario
    distinct: dict[bytes, StatusPacket] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dbdir = Path(tmp)
        store = Store(dbdir, FIELDS, durable=False)
        try:
            committed: list[tuple[int, StatusPacket]] = []
            for batch, reopen in batches:
                committed += store.apply(batch)
                for packet in batch:
                    distinct.setdefault(packet.id, packet)
                if reopen:
                    store.close()
                    store = Store(dbdir, FIELDS, durable=False)
            want = list(enumerate(distinct.values(), start=1))
            assert committed == want
            assert store.head() == len(want)
            reader = HistoryReader(dbdir)
            try:
                assert reader.history(limit=1000) == want
            finally:
                reader.close()
            runs = {run.runname: run for run in store.runs()}
            for runname, run in runs.items():
                rows = {(t.testname, t.item_path): (t.state, t.status) for t in store.tests(run.id)}
                expected = expected_tests(list(distinct.values()), runname)
                assert rows == expected
                top = [record for (_, item), record in expected.items() if not item]
                state, status = rollup((State(s), Status(t)) for s, t in top)
                assert (run.state, run.status) == (state, status)
                assert (run.pass_count, run.fail_count) == (
                    sum(t == Status.PASS for _, t in top),
                    sum(t == Status.FAIL for _, t in top),
                )
        finally:
            store.close()


@given(
    st.lists(st.tuples(st.sampled_from(list(State)), st.sampled_from(list(Status))), min_size=1),
    st.data(),
)
def test_tally_agrees_with_rollup(
    records: list[tuple[pkts.State, pkts.Status]], data: st.DataObject
) -> None:
    tally = Tally()
    for state, status in records:
        tally.add(state, status)
    removed = data.draw(st.lists(st.sampled_from(range(len(records))), unique=True))
    for index in removed:
        tally.remove(*records[index])
    kept = [record for index, record in enumerate(records) if index not in removed]
    summary = tally.summary()
    if not kept:
        assert (summary.state, summary.status) == (State.NOT_STARTED, Status.NA)
        return
    assert (summary.state, summary.status) == rollup(kept)
    assert summary.pass_count == sum(status == Status.PASS for _, status in kept)
    assert summary.fail_count == sum(status == Status.FAIL for _, status in kept)
