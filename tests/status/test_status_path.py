"""The status path end to end, with real processes, sockets and files, under faults.

Nothing an agent reports may be lost or doubled: 20 producers send 5,000
status packets each through their spools while the home (``mtpkt home``, whose
collector commits them) is killed (SIGKILL) and restarted twice and one
producer once. Followers, one joining mid-stream and one paused for a while,
must end with exactly the history.
"""

import os
import random
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.bus import Requester
from mtpkt.pkts.link import Heartbeat, Receipt
from mtpkt.pkts.status import StatusChange, StatusPacket, Step
from mtpkt.store import HistoryReader, Store
from tests.support.cli import mtpkt_argv
from tests.support.procs import free_port, read_line, stop_process, wait_for

ROOT = Path(__file__).parents[2]
LOADGEN = ROOT / "benchmarks" / "loadgen.py"
FOLLOWER = ROOT / "tests" / "support" / "follower.py"
FIELDS = ["os", "arch"]
"""The area's ``[fields]``: the load generators send target ``linux/x86``."""
PRODUCERS = 20
PER_PRODUCER = 5000
TOTAL = PRODUCERS * PER_PRODUCER


class Processes:
    """Starts processes for a test and makes sure every one is stopped at its end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[subprocess.Popen[str]] = []

    def start(self, *argv: str, log: str) -> subprocess.Popen[str]:
        with (self.tmp / f"{log}.log").open("a") as errors:  # the child keeps its own copy
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            stop_process(process)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


class Home:
    """An area's home (``mtpkt home``) on fixed loopback ports, so it can be killed and
    started again where its producers and followers find it."""

    def __init__(self, processes: Processes, tmp: Path) -> None:
        self.processes = processes
        self.area = tmp / "area"
        self.area.mkdir()
        fields = "".join(f"{field} TEXT\n" for field in FIELDS)
        (self.area / "megatest.config").write_text(f"[fields]\n{fields}")
        self.key_file = self.area / ".mtpkt" / "secret"  # made by the first home
        self.dbdir = self.area / ".mtpkt" / "db"
        self.request = f"tcp://127.0.0.1:{free_port()}"
        self.publish = f"tcp://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def key(self) -> bytes:
        return self.key_file.read_bytes()

    def start(self) -> None:
        self.starts += 1
        self.process = self.processes.start(
            *mtpkt_argv("home", "--area", str(self.area)),
            "--listen", self.request, "--publish", self.publish,
            log="home",
        )  # fmt: skip
        read_line(self.process, "home ready", timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0


def head(dbdir: Path) -> int:
    if not (dbdir / "main.db").exists():
        return 0
    reader = HistoryReader(dbdir)
    try:
        return reader.head()
    finally:
        reader.close()


def check_history(history: list[tuple[int, StatusPacket]]) -> None:
    """Exactly the 100,000 packets, each once, in stream order and each sender's own order."""
    assert len(history) == TOTAL
    assert len({packet.id for _, packet in history}) == TOTAL
    per_origin = Counter((packet.origin, packet.seq) for _, packet in history)
    assert set(per_origin) == {
        (f"p{i:02d}", s) for i in range(PRODUCERS) for s in range(1, PER_PRODUCER + 1)
    }
    seqs = [seq for seq, _ in history]
    assert seqs == sorted(seqs)
    last_seen: dict[str, int] = {}
    for _, packet in history:
        assert packet.seq > last_seen.get(packet.origin, 0), (packet.origin, packet.seq)
        last_seen[packet.origin] = packet.seq


def check_tables(dbdir: Path, history: list[tuple[int, StatusPacket]]) -> None:
    """The tests and test_steps tables agree with the packets."""
    with Store(dbdir, FIELDS) as store:
        (run,) = store.runs()
        tests = {row.testname: row for row in store.tests(run.id)}
        steps = Counter(row.test_id for row in store.steps(run.id))
    last_change: dict[str, StatusChange] = {}
    step_count: Counter[str] = Counter()
    for _, packet in history:
        if isinstance(packet, StatusChange):
            last_change[packet.test] = packet
        elif isinstance(packet, Step):
            step_count[packet.test] += 1
    assert len(tests) == len(last_change) == TOTAL // 10
    for name, change in last_change.items():
        assert (tests[name].state, tests[name].status) == (change.state, change.status)
    assert {tests[name].id: count for name, count in step_count.items()} == dict(steps)
    assert sum(steps.values()) == TOTAL * 8 // 10


@pytest.mark.timeout(600)
def test_nothing_lost_or_doubled_through_crashes(processes: Processes, tmp_path: Path) -> None:
    home = Home(processes, tmp_path)
    home.start()

    def producer(index: int) -> subprocess.Popen[str]:
        return processes.start(
            sys.executable, str(LOADGEN), "--spool", str(tmp_path / f"spool{index}.db"),
            "--address", home.request, "--key-file", str(home.key_file),
            "--name", f"p{index:02d}", "--count", str(PER_PRODUCER), "--rate", "350",
            log=f"producer{index}",
        )  # fmt: skip

    def follower(name: str) -> subprocess.Popen[str]:
        return processes.start(
            sys.executable, str(FOLLOWER), "--request", home.request, "--publish", home.publish,
            "--key-file", str(home.key_file), "--out", str(tmp_path / f"{name}.txt"),
            "--count", str(TOTAL), "--seconds", "400",
            log=name,
        )  # fmt: skip

    paused = follower("paused")
    read_line(paused, "following", timeout=30)
    producers = [producer(index) for index in range(PRODUCERS)]

    def progress(count: int) -> Callable[[], bool]:
        return lambda: head(home.dbdir) >= count

    assert wait_for(progress(TOTAL // 5), 120), "a fifth of the stream"
    home.kill()  # 1st home crash
    home.start()

    paused.send_signal(signal.SIGSTOP)  # a subscriber that stops reading for a while
    assert wait_for(progress(TOTAL * 2 // 5), 120), "two fifths of the stream"
    producers[3].kill()  # a producer crash: its spool keeps what it had not sent
    producers[3].wait(timeout=10)
    producers[3] = producer(3)
    paused.send_signal(signal.SIGCONT)

    assert wait_for(progress(TOTAL // 2), 120), "half the stream"
    late = follower("late")  # joins mid-stream
    assert wait_for(progress(TOTAL * 7 // 10), 120), "seven tenths of the stream"
    home.kill()  # 2nd home crash
    home.start()

    for index, process in enumerate(producers):
        assert process.wait(timeout=300) == 0, f"producer {index} failed"
    refills = {}
    for name, process in (("paused", paused), ("late", late)):
        assert process.wait(timeout=120) == 0, f"follower {name} did not get everything"
        summary = read_line(process, "followed", timeout=5)
        refills[name] = int(summary.split(",")[1].split()[0])
    assert refills["paused"] >= 1  # it missed part of the live stream and filled the gap
    home.stop()

    reader = HistoryReader(home.dbdir)
    history = reader.history(after=0, limit=TOTAL * 2)
    reader.close()
    check_history(history)
    check_tables(home.dbdir, history)
    expected = [f"{seq} {packet.id.hex()} {packet.origin} {packet.seq}" for seq, packet in history]
    for name in ("paused", "late"):  # both followers end with exactly the committed history
        assert (tmp_path / f"{name}.txt").read_text().splitlines() == expected, name
    assert home.starts == 3


@pytest.mark.timeout(120)
def test_hostile_frames_are_rejected_and_logged_and_the_home_keeps_serving(
    processes: Processes, tmp_path: Path
) -> None:
    home = Home(processes, tmp_path)
    home.start()
    beat = Heartbeat(origin="agent-1", phase=pkts.Phase.ONLINE, interval=5.0)
    hostile = [
        os.urandom(200),
        b"",
        pkts.encode(beat, b"x" * 32),  # another area's key
        pkts.encode(beat, home.key)[:-3],  # cut short
        pkts.encode(beat, home.key)[:40]
        + bytes([0])
        + pkts.encode(beat, home.key)[41:],  # bit flips
        b"\x00" * (pkts.MAX_FRAME_SIZE + 100),  # oversized
    ]
    with Requester(home.request, timeout=3.0) as requester:
        for frame in hostile:
            try:
                reply = pkts.decode(requester.request(frame), home.key)
            except Exception:  # an oversized frame may get no reply at all
                continue
            assert isinstance(reply, Receipt)
            assert reply.error.startswith("rejected")
    for port in (home.request, home.publish):  # raw bytes at the TCP level, not even NNG
        host, number = port.removeprefix("tcp://").rsplit(":", 1)
        with socket.create_connection((host, int(number)), timeout=3) as raw:
            raw.sendall(random.randbytes(4096))
    with Requester(home.request, timeout=5.0) as requester:
        reply = pkts.decode(requester.request(pkts.encode(beat, home.key)), home.key)
    assert reply == Receipt(origin="home", id=reply.id, ts=reply.ts, ids=(), error="")
    assert home.process is not None
    assert home.process.poll() is None
    home.stop()
    log = (tmp_path / "home.log").read_text()
    assert log.count("rejected a frame") >= 4
    assert "bad MAC" in log
