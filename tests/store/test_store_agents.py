"""The agent registry (heartbeats, lost agents) and the control journal."""

import logging

import pytest

from mtpkt import pkts
from mtpkt.pkts.control import Kill, Run
from tests.support.storekit import MakeStore, Phase, beat


def test_heartbeats_fill_the_registry(make_store: MakeStore) -> None:
    store = make_store()
    store.heartbeat(beat("node1", Phase.ONLINE, ts=100.0), received=101.5)
    (agent,) = store.agents()
    assert (agent.name, agent.state, agent.pid, agent.slots, agent.busy) == (
        "node1",
        "online",
        321,
        4,
        1,
    )
    assert (agent.interval, agent.first_seen, agent.last_beat, agent.last_ts) == (
        10.0,
        101.5,
        101.5,
        100.0,
    )
    assert agent.skew == pytest.approx(1.5)

    store.heartbeat(beat("node1", ts=110.0, busy=3), received=110.5)
    store.heartbeat(beat("node0", Phase.ONLINE), received=111.0)
    node0, node1 = store.agents()
    assert node0.name == "node0"
    assert (node1.busy, node1.first_seen, node1.last_beat, node1.skew) == (3, 101.5, 110.5, 0.5)

    store.heartbeat(beat("node1", Phase.OFFLINE, ts=120.0), received=120.0)
    assert [a.state for a in store.agents()] == ["online", "offline"]
    store.close()
    assert [a.name for a in make_store().agents()] == ["node0", "node1"]


def test_agents_silent_for_twice_their_interval_are_lost(make_store: MakeStore) -> None:
    store = make_store()
    store.heartbeat(beat("fast", interval=1.0), received=100.0)
    store.heartbeat(beat("slow", interval=30.0), received=100.0)
    store.heartbeat(beat("gone", Phase.OFFLINE, interval=1.0), received=100.0)
    assert store.mark_lost(102.0) == []  # exactly twice the interval: still alive
    assert store.mark_lost(102.5) == ["fast"]
    assert store.mark_lost(103.0) == []  # already lost
    assert store.mark_lost(200.0) == ["slow"]
    assert {a.name: a.state for a in store.agents()} == {
        "fast": "lost", "slow": "lost", "gone": "offline",
    }  # fmt: skip
    store.heartbeat(beat("fast", interval=1.0), received=300.0)
    assert {a.name: a.state for a in store.agents()}["fast"] == "online"


def test_the_beats_of_many_agents_are_recorded_together(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    store.heartbeat(beat("back", interval=1.0), received=100.0)
    assert store.mark_lost(103.0) == ["back"]
    beats = [beat(f"n{k}", Phase.ONLINE) for k in range(50)]
    with caplog.at_level(logging.WARNING, logger="mtpkt.store"):
        store.heartbeats(
            [*beats, beat("back", interval=1.0), beat("n7", Phase.OFFLINE)], received=104.0
        )
    states = {a.name: (a.state, a.last_beat) for a in store.agents()}
    assert len(states) == 51
    assert states["back"] == ("online", 104.0)
    assert states["n7"] == ("offline", 104.0)  # the later beat of one agent wins
    assert states["n8"] == ("online", 104.0)
    assert caplog.messages == ["agent back is back: heartbeats again"]


def test_a_home_that_just_started_gives_agents_two_intervals(make_store: MakeStore) -> None:
    store = make_store()
    store.heartbeat(beat("node", interval=1.0), received=100.0)
    # the home was away from 100 to 500: the old beat counts as made at 500
    assert store.mark_lost(501.5, up_since=500.0) == []
    assert store.mark_lost(502.5, up_since=500.0) == ["node"]


def test_clock_drift_is_warned_once(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    with caplog.at_level(logging.WARNING, logger="mtpkt.store"):
        store.heartbeat(beat("node1", ts=100.0), received=160.0)
        store.heartbeat(beat("node1", ts=110.0), received=170.0)
    assert caplog.messages == ["agent node1: clock differs from the home's by 60.0 s"]


def test_control_journal(make_store: MakeStore) -> None:
    store = make_store()
    run = Run(target="ubuntu/x86_64", runname="nightly", testpatt="a/%", origin="ann@ws1")
    kill = Kill(target="ubuntu/x86_64", runname="nightly", host="node1", grace=2.0)
    assert store.journal_add(run, received=10.0) is True
    assert store.journal_add(run, received=11.0, state="rejected") is False
    assert store.journal_add(kill, received=12.0) is True
    assert [(row.packet, row.received, row.state) for row in store.journal()] == [
        (run, 10.0, "accepted"),
        (kill, 12.0, "accepted"),
    ]
    assert store.journal_set_state(run.id, "done", "3 tests") is True
    assert store.journal_set_state(pkts.new_id(), "done") is False
    store.close()
    (done,) = make_store().journal(state="done")
    assert (done.packet, done.reason) == (run, "3 tests")
