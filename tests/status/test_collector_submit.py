"""Collector.submit: packets the home makes are committed in the order queued."""

import threading
from pathlib import Path

import pkts
from agents.collector import Collector
from pkts.status import StatusChange
from store import Store

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
        waiter = threading.Thread(target=lambda: (wait(), waited.set()), daemon=True)
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
