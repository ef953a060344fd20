"""bus.Sender and bus.Heartbeater against a real peer playing the home.

The home is not written yet; :class:`Home` plays it with a real
:class:`bus.Replier` that commits status packets by id (deduping, as the
collector does) and answers with signed receipts.
"""

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mtpkt import pkts
from mtpkt.bus import Heartbeater, Replier, Sender, Spool
from mtpkt.bus.sender import OFFLINE_TIMEOUT
from mtpkt.pkts.link import Heartbeat, Receipt
from mtpkt.pkts.status import StatusPacket
from tests.support.procs import wait_until

Packets = Callable[..., list[StatusPacket]]
Address = Callable[[str], str]
ROOT = Path(__file__).parent.parent.parent


class Home:
    """Plays the home's collector: commits status packets by id and answers with a receipt."""

    def __init__(self, address: str, key: bytes, *, workers: int = 2) -> None:
        self.key = key
        self.reply_key = key
        """Key the receipts are signed with (another one makes them bad replies)."""
        self.committed: set[bytes] = set()
        """Ids committed, deduped: what the database would hold."""
        self.received: list[bytes] = []
        """Every status packet id that arrived, duplicates included."""
        self.heartbeats: list[Heartbeat] = []
        self.frames = 0
        self.error = ""
        """When set: commit nothing and answer with this error."""
        self.lose_replies = 0
        """Commit, then fail before replying, this many times."""
        self._lock = threading.Lock()
        self.replier = Replier(address, self.handle, workers=workers, name="home")
        self.replier.start()

    @property
    def address(self) -> str:
        return self.replier.address

    def handle(self, frame: bytes) -> bytes:
        packets = pkts.decode_batch(frame, self.key)
        with self._lock:
            self.frames += 1
            if self.error:
                return pkts.encode(Receipt(error=self.error), self.reply_key)
            ids: list[bytes] = []
            for packet in packets:
                match packet:
                    case Heartbeat():
                        self.heartbeats.append(packet)
                    case pkts.status.Ack() | pkts.status.Step() | pkts.status.StatusChange():
                        self.received.append(packet.id)
                        self.committed.add(packet.id)
                        ids.append(packet.id)
            if self.lose_replies:
                self.lose_replies -= 1
                raise RuntimeError("home went down after committing, before replying")
        return pkts.encode(Receipt(ids=tuple(ids)), self.reply_key)

    def close(self) -> None:
        self.replier.close()


@pytest.fixture
def start_home(key: bytes, closing: contextlib.ExitStack) -> Callable[[str], Home]:
    def start(address: str) -> Home:
        home = Home(address, key)
        closing.callback(home.close)
        return home

    return start


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool.db")
    yield spool
    spool.close()


@pytest.fixture
def start_sender(spool: Spool, key: bytes, closing: contextlib.ExitStack) -> Callable[..., Sender]:
    def start(address: str, **options: Any) -> Sender:
        sender = Sender(spool, address, key, **options)
        closing.callback(sender.stop)
        sender.start()
        return sender

    return start


def ids_of(packets: list[StatusPacket]) -> set[bytes]:
    return {packet.id for packet in packets}


def test_delivers_everything_exactly_once(
    spool: Spool,
    start_home: Callable[[str], Home],
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
) -> None:
    home = start_home(ipc_address("home"))
    packets = make_packets(2000)
    spool.put_many(packets[:500])  # waiting before the sender starts
    sender = start_sender(home.address, batch=100)
    for packet in packets[500:]:  # and arriving while it runs
        spool.put(packet)
    wait_until(lambda: len(spool) == 0)
    assert home.committed == ids_of(packets)
    assert len(home.received) == len(packets)  # nothing was lost, so nothing went twice
    stats = sender.stats
    assert stats.acknowledged == 2000
    assert stats.retries == 0
    assert 20 <= stats.frames < 2000  # batched, up to 100 a frame


def test_a_lost_receipt_means_sending_again_and_the_home_dedupes(
    spool: Spool,
    start_home: Callable[[str], Home],
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
) -> None:
    home = start_home(ipc_address("home"))
    home.lose_replies = 2
    packets = make_packets(300)
    spool.put_many(packets)
    sender = start_sender(home.address, batch=100, timeout=0.5)
    wait_until(lambda: len(spool) == 0)
    assert home.committed == ids_of(packets)
    assert len(home.received) > len(home.committed)  # duplicates arrived …
    assert set(home.received) == ids_of(packets)  # … and deduping leaves exactly the set put
    assert sender.stats.retries >= 2
    assert sender.stats.acknowledged == 300


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_survives_the_home_going_away_and_coming_back(
    transport: str,
    spool: Spool,
    start_home: Callable[[str], Home],
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
) -> None:
    first = start_home(ipc_address("home") if transport == "ipc" else "tcp://127.0.0.1:0")
    packets = make_packets(100)
    sender = start_sender(first.address, timeout=0.5)
    spool.put_many(packets[:50])
    wait_until(lambda: len(spool) == 0)
    first.close()
    for packet in packets[50:]:
        spool.put(packet)  # while nobody is there
    wait_until(lambda: sender.stats.retries >= 1)
    assert len(spool) == 50  # nothing deleted without a receipt
    second = start_home(first.address)  # the same address, a new process's socket
    wait_until(lambda: len(spool) == 0)
    assert first.committed | second.committed == ids_of(packets)
    assert first.committed == ids_of(packets[:50])


HOME_CHILD = """
import sys

from mtpkt import pkts
from mtpkt.bus import Replier
from mtpkt.pkts.link import Receipt

address, key, log_path = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
log = open(log_path, "ab", buffering=0)


def handle(frame):
    ids = [packet.id for packet in pkts.decode_batch(frame, key)]
    log.write(b"".join(packet_id.hex().encode() + b"\\n" for packet_id in ids))  # commit
    return pkts.encode(Receipt(ids=tuple(ids)), key)


with Replier(address, handle, workers=1, name="child home"):
    print("ready", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def home_process(address: str, key: bytes, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A home in a child process, committing to ``log``; killed with SIGKILL when done with."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOME_CHILD, address, key.decode(), str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], 20)
        assert ready, "home child did not start"
        assert child.stdout.readline() == b"ready\n"
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def committed_in(log: Path) -> set[bytes]:
    lines = log.read_bytes().split(b"\n") if log.exists() else []
    return {bytes.fromhex(line.decode()) for line in lines if len(line) == 2 * pkts.ID_SIZE}


def test_a_home_killed_with_sigkill_and_restarted_loses_nothing(
    spool: Spool,
    key: bytes,
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
    tmp_path: Path,
    closing: contextlib.ExitStack,
) -> None:
    address = ipc_address("home")
    log = tmp_path / "committed"
    packets = make_packets(3000)
    produced = threading.Event()
    abandon = threading.Event()

    def produce() -> None:
        for index, packet in enumerate(packets):
            if abandon.is_set():
                return
            spool.put(packet)
            if index % 10 == 0:
                time.sleep(0.005)  # a steady stream over a second or two, not one burst
        produced.set()

    producer = threading.Thread(target=produce)
    closing.callback(producer.join, 10)
    closing.callback(abandon.set)
    with home_process(address, key, log) as first:
        start_sender(address, batch=50, timeout=0.5)
        producer.start()
        wait_until(lambda: len(committed_in(log)) >= 500, timeout=20)
        first.send_signal(signal.SIGKILL)  # mid-stream
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    wait_until(lambda: len(spool) > 0)  # packets wait through the outage
    with home_process(address, key, log):
        producer.join(20)
        assert produced.is_set()
        wait_until(lambda: len(spool) == 0, timeout=20)
    assert committed_in(log) == ids_of(packets)


def test_an_error_receipt_deletes_nothing_and_is_retried(
    spool: Spool,
    start_home: Callable[[str], Home],
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = start_home(ipc_address("home"))
    home.error = "disk full"
    packets = make_packets(10)
    spool.put_many(packets)
    with caplog.at_level(logging.DEBUG, logger="mtpkt.bus.sender"):
        sender = start_sender(home.address)
        wait_until(lambda: home.frames >= 3)  # retried (0.2 s, then 0.4 s later)
        assert len(spool) == 10
        assert home.committed == set()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len([r for r in warnings if "disk full" in r.getMessage()]) == 1  # once, not per try
        home.error = ""
        wait_until(lambda: len(spool) == 0)
        wait_until(lambda: "recovered" in caplog.text)  # logged just after the delete
    assert home.committed == ids_of(packets)
    assert sender.stats.retries >= 3


def test_a_reply_signed_with_another_key_deletes_nothing(
    spool: Spool,
    start_home: Callable[[str], Home],
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = start_home(ipc_address("home"))
    home.reply_key = b"some-other-area-key-0123456789ab"
    packets = make_packets(10)
    spool.put_many(packets)
    with caplog.at_level(logging.WARNING, logger="mtpkt.bus.sender"):
        sender = start_sender(home.address)
        wait_until(lambda: sender.stats.retries >= 2)
        assert len(spool) == 10
        assert "bad MAC" in caplog.text
    home.reply_key = home.key
    wait_until(lambda: len(spool) == 0)
    assert sender.stats.acknowledged == 10


def test_stop_without_a_home_keeps_its_drain_bound(
    spool: Spool,
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
) -> None:
    spool.put_many(make_packets(5))
    sender = start_sender(ipc_address("nobody"), timeout=30)  # a request is waiting when stop comes
    time.sleep(0.1)
    started = time.monotonic()
    sender.stop(drain=0.3)
    elapsed = time.monotonic() - started
    assert 0.29 <= elapsed < 1.3
    assert not sender.running
    assert len(spool) == 5  # still there for the next start
    sender.stop()  # again: nothing happens


def test_stop_with_drain_returns_once_the_spool_is_empty(
    spool: Spool,
    start_home: Callable[[str], Home],
    start_sender: Callable[..., Sender],
    make_packets: Packets,
    ipc_address: Address,
) -> None:
    home = start_home(ipc_address("home"))
    packets = make_packets(500)
    spool.put_many(packets)
    sender = start_sender(home.address, batch=50)
    started = time.monotonic()
    sender.stop(drain=10)
    assert time.monotonic() - started < 10
    assert len(spool) == 0
    assert home.committed == ids_of(packets)
    assert not sender.running


def test_heartbeats_online_beats_offline(
    start_home: Callable[[str], Home], key: bytes, ipc_address: Address
) -> None:
    home = start_home(ipc_address("home"))
    beater = Heartbeater(home.address, key, origin="node7", interval=0.1, load=lambda: (4, 1))
    beater.start()
    try:
        wait_until(lambda: len(home.heartbeats) >= 4)
    finally:
        beater.stop()
    phases = [beat.phase for beat in home.heartbeats]
    assert phases[0] == pkts.Phase.ONLINE
    assert phases[-1] == pkts.Phase.OFFLINE
    assert set(phases[1:-1]) == {pkts.Phase.BEAT}
    for beat in home.heartbeats:
        assert (beat.origin, beat.interval, beat.slots, beat.busy) == ("node7", 0.1, 4, 1)
        assert beat.pid == os.getpid()
    beater.stop()  # again: nothing happens
    assert home.heartbeats[-1].phase == pkts.Phase.OFFLINE


def test_heartbeats_reach_a_home_that_starts_later_and_stop_is_bounded_without_one(
    start_home: Callable[[str], Home], key: bytes, ipc_address: Address
) -> None:
    address = ipc_address("home")
    failing_load = iter([(2, 0)])
    beater = Heartbeater(
        address, key, origin="node8", interval=0.1, load=lambda: next(failing_load)
    )
    beater.start()
    time.sleep(0.3)  # "online" waits for a home
    home = start_home(address)
    wait_until(lambda: len(home.heartbeats) >= 3)
    home.close()
    started = time.monotonic()
    beater.stop()  # the offline beat has nobody to go to
    assert time.monotonic() - started < OFFLINE_TIMEOUT + 1.0
    phases = [beat.phase for beat in home.heartbeats]
    assert phases[0] == pkts.Phase.ONLINE  # sent before the home was up, delivered when it was
    assert set(phases[1:]) == {pkts.Phase.BEAT}
    assert home.heartbeats[0].slots == 2
    assert home.heartbeats[-1].slots == 0  # load() raised: the beat went anyway
