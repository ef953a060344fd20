"""Collector.submit: packets the home makes are committed in the order queued."""

import threading
from pathlib import Path

from mtpkt import pkts
from mtpkt.agents.home.collector import Collector
from mtpkt.agents.home.writer import Job
from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.link import Heartbeat
from mtpkt.pkts.status import StatusChange
from mtpkt.store import Store

KEY = b"q" * 32


def test_an_empty_submit_waits_for_what_was_queued_before(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", ["os", "arch"], durable=False)
    collector = Collector(
        store, KEY, listen=f"ipc://{tmp_path}/c.ipc", publish=f"ipc://{tmp_path}/p.ipc"
    )
    try:
        launched = StatusChange(
            origin="home",
            seq=1,
            target="linux/x86",
            runname="r",
            test="t",
            state=pkts.State.LAUNCHED,
            status=pkts.Status.NA,
        )
        collector.submit([launched])  # queued; the writer has not started yet
        wait = collector.submit([])
        waited = threading.Event()

        def waiter_body() -> None:
            wait()
            waited.set()

        waiter = threading.Thread(target=waiter_body, daemon=True)
        waiter.start()
        assert not waited.wait(0.3)  # LAUNCHED is not committed: nothing may go out yet
        collector.start()
        waiter.join(10)
        assert waited.is_set()
        assert store.head() == 1
        collector.submit([])()  # nothing pending: returns at once
    finally:
        collector.close()
        store.close()


def test_heartbeats_are_answered_before_the_status_commit_of_their_group(tmp_path: Path) -> None:
    """With hundreds of agents a beat is in almost every group: it must not wait for the
    group's status commit (nor each beat for a commit of its own)."""
    store = Store(tmp_path / "db", ["os", "arch"], durable=False)
    in_commit, release = threading.Event(), threading.Event()

    def on_commit(packets: object) -> None:  # the status is committed, not yet answered
        in_commit.set()
        release.wait(10)

    collector = Collector(
        store, KEY, listen=f"ipc://{tmp_path}/c.ipc", publish=f"ipc://{tmp_path}/p.ipc",
        on_commit=on_commit,
    )  # fmt: skip
    change = StatusChange(
        origin="a1", seq=1, target="linux/x86", runname="r", test="t",
        state=pkts.State.RUNNING, status=pkts.Status.NA,
    )  # fmt: skip
    status = Job(columns=StatusColumns.of([change]))
    beats = [
        Job(beat=Heartbeat(origin=f"a{n}", phase=pkts.Phase.BEAT, interval=2.0))
        for n in range(1, 4)
    ]
    # One group, written as the writer thread writes it (that thread is idle: nothing queued).
    writer = threading.Thread(target=collector.writer.write, args=([status, *beats],), daemon=True)
    collector.start()
    try:
        writer.start()
        assert in_commit.wait(10)
        assert all(job.done.done() and job.done.exception() is None for job in beats)
        assert not status.done.done()
        assert sorted((a.name, a.state) for a in store.agents()) == [
            ("a1", "online"), ("a2", "online"), ("a3", "online"),
        ]  # fmt: skip
        release.set()
        writer.join(10)
        assert status.done.result(0) is None
    finally:
        release.set()
        collector.close()
        store.close()
