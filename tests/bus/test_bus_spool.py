"""bus.Spool on real SQLite files: ordering, persistence, and surviving a SIGKILL."""

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from mtpkt import pkts
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host.report import Reporter
from mtpkt.bus import MAX_PACKET_SIZE, Spool, SpoolError
from mtpkt.pkts.status import StatusPacket, Step

Packets = Callable[..., list[StatusPacket]]


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "agent" / "spool.db"


@pytest.fixture
def open_spool(spool_path: Path, closing: contextlib.ExitStack) -> Callable[[], Spool]:
    """Factory: open the test's spool file; every spool opened is closed at teardown."""

    def make() -> Spool:
        spool = Spool(spool_path)
        closing.callback(spool.close)
        return spool

    return make


def seqs(spool: Spool) -> list[int]:
    packets = [pkts.unpack(data) for _, data in spool.pending(limit=1_000_000, max_bytes=1 << 40)]
    return [packet.seq for packet in packets if isinstance(packet, pkts.status.Sequenced)]


def test_put_pending_remove(open_spool: Callable[[], Spool], make_packets: Packets) -> None:
    spool = open_spool()
    assert spool.next_seq == 1
    assert len(spool) == 0
    assert spool.pending() == []
    packets = make_packets(5)
    for packet in packets:
        spool.put(packet)
    assert spool.next_seq == 6
    assert len(spool) == 5
    pending = spool.pending()
    assert [packet_id for packet_id, _ in pending] == [packet.id for packet in packets]
    assert [pkts.unpack(data) for _, data in pending] == packets  # pack bytes, oldest first
    assert spool.remove([packets[1].id, packets[3].id, pkts.new_id()]) == 2  # unknown id ignored
    assert len(spool) == 3
    assert [packet_id for packet_id, _ in spool.pending()] == [packets[i].id for i in (0, 2, 4)]
    assert spool.remove([]) == 0
    assert spool.remove([packets[1].id]) == 0  # already gone
    assert spool.next_seq == 6  # deleting never lowers the next seq


def test_pending_limits_by_count_and_bytes(
    open_spool: Callable[[], Spool], make_packets: Packets
) -> None:
    spool = open_spool()
    spool.put_many(make_packets(50))
    assert len(spool.pending(limit=7)) == 7
    assert spool.pending(limit=0) == []
    size = len(spool.pending(limit=1)[0][1])
    assert len(spool.pending(max_bytes=size * 3)) == 3
    # A first packet larger than max_bytes still comes out alone: nothing gets stuck.
    assert len(spool.pending(max_bytes=1)) == 1


def test_next_seq_and_packets_persist_across_reopen(
    spool_path: Path, make_packets: Packets
) -> None:
    spool = Spool(spool_path)
    packets = make_packets(10)
    spool.put_many(packets)
    spool.remove(packet.id for packet in packets)  # all acknowledged: the table is empty
    more = make_packets(3, next_seq=11)
    spool.put_many(more)
    spool.close()
    spool = Spool(spool_path)
    try:
        assert spool.next_seq == 14  # kept, though the rows that gave it were deleted
        assert [pkts.unpack(data) for _, data in spool.pending()] == more
        assert len(spool) == 3
    finally:
        spool.close()


def test_a_reporter_numbers_on_from_the_spool(spool_path: Path) -> None:
    ref = TestRef("ubuntu/x86_64", "nightly", "smoke")
    for run in range(3):  # three lives of an agent
        spool = Spool(spool_path)
        reporter = Reporter("node7", spool.put, next_seq=spool.next_seq)
        for _ in range(4):
            reporter.change(ref, pkts.State.RUNNING, pkts.Status.NA)
        assert reporter.next_seq == spool.next_seq == 4 * (run + 1) + 1
        spool.close()
    spool = Spool(spool_path)
    try:
        assert seqs(spool) == list(range(1, 13))
    finally:
        spool.close()


def test_put_with_the_wrong_seq_is_rejected(
    open_spool: Callable[[], Spool], make_packets: Packets
) -> None:
    spool = open_spool()
    first, second, third = make_packets(3)
    with pytest.raises(ValueError, match="seq 2"):
        spool.put(second)
    spool.put(first)
    with pytest.raises(ValueError, match="seq 1"):
        spool.put(first)  # the same packet again
    with pytest.raises(ValueError, match="seq 3"):
        spool.put(third)
    assert len(spool) == 1
    assert spool.next_seq == 2


def test_put_many_is_all_or_nothing(open_spool: Callable[[], Spool], make_packets: Packets) -> None:
    spool = open_spool()
    packets = make_packets(5)
    with pytest.raises(ValueError, match="out of order"):
        spool.put_many([*packets[:2], packets[3]])
    assert len(spool) == 0
    assert spool.next_seq == 1
    spool.put_many(packets)
    assert seqs(spool) == [1, 2, 3, 4, 5]


def test_a_packet_too_large_for_a_frame_is_refused(
    open_spool: Callable[[], Spool], make_packets: Packets
) -> None:
    spool = open_spool()
    (packet,) = make_packets(1)
    assert isinstance(packet, Step)
    huge = attrs.evolve(packet, logfile="x" * MAX_PACKET_SIZE)
    with pytest.raises(ValueError, match="frame"):
        spool.put(huge)
    assert spool.next_seq == 1
    spool.put(packet)


def test_wait_wakes_on_put_and_times_out_when_empty(
    open_spool: Callable[[], Spool], make_packets: Packets
) -> None:
    spool = open_spool()
    started = time.monotonic()
    assert spool.wait(0.1) is False
    assert time.monotonic() - started >= 0.09
    (packet,) = make_packets(1)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(spool.wait(10)))
    waiter.start()
    time.sleep(0.05)
    spool.put(packet)
    waiter.join(10)
    assert woke == [True]
    assert spool.wait(10) is True  # something is waiting: returns at once


def test_one_process_owns_a_spool(open_spool: Callable[[], Spool], spool_path: Path) -> None:
    open_spool()
    with pytest.raises(SpoolError, match="in use"):
        Spool(spool_path)


def test_a_file_that_is_not_a_spool(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite database, not even close" * 100)
    with pytest.raises(SpoolError, match=r"junk\.db"):
        Spool(path)


CHILD = """
import sys
from pathlib import Path

from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host.report import Reporter
from mtpkt import pkts
from mtpkt.bus import Spool

spool = Spool(Path(sys.argv[1]))
reporter = Reporter("node7", spool.put, next_seq=spool.next_seq)
ref = TestRef("ubuntu/x86_64", "nightly", "smoke")
print("ready", spool.next_seq, flush=True)
while True:
    seq = reporter.next_seq
    reporter.change(ref, pkts.State.RUNNING, pkts.Status.NA, comment="x" * 200)
    print(seq, flush=True)  # put() has returned: this packet must survive
"""


def run_until_killed(path: Path, puts: int) -> list[int]:
    """Run a child putting packets; SIGKILL it after ``puts`` confirmed puts; their seqs."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent.parent,
    )
    assert child.stdout is not None
    confirmed: list[int] = []
    try:
        deadline = time.monotonic() + 20
        buffer = ""
        while len(confirmed) < puts:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"child confirmed only {len(confirmed)} puts"
            ready, _, _ = select.select([child.stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(child.stdout.fileno(), 65536).decode()
            assert chunk, f"child ended early with {child.poll()}"
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            confirmed += [int(line) for line in lines if not line.startswith("ready")]
    finally:
        child.send_signal(signal.SIGKILL)  # mid-way: it keeps putting until the signal lands
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return confirmed


def test_every_put_that_returned_survives_sigkill(spool_path: Path) -> None:
    confirmed: list[int] = []
    for _ in range(2):  # killed, restarted where it left off, killed again
        confirmed += run_until_killed(spool_path, 300)
        spool = Spool(spool_path)
        try:
            present = seqs(spool)
            assert set(confirmed) <= set(present)
            # No holes, and numbering goes on after the last packet stored.
            assert present == list(range(1, spool.next_seq))
        finally:
            spool.close()
    assert confirmed == sorted(set(confirmed))  # the restart numbered on, never reused a seq
