"""A load generator: a simulated agent that spools status packets and sends them to a home.

``python benchmarks/loadgen.py --spool S --address A --key-file K --name p01 --count N``

Packet number i (its seq) is always the same packet apart from its id: test
``<name>_t<k>`` gets RUNNING, four steps (start and end) and COMPLETED with
PASS (FAIL for every seventh). A generator killed and started again resumes at
its spool's next seq, so the stream is still exactly N packets. It prints
"done" once the home has acknowledged everything. Used by the status path's
tests and by ``benchmarks/status_path.py``.

With ``--agents N`` one process simulates N agents named ``<name>-<k>``, each
with its own spool (``<spool>/<name>-<k>.db``: ``--spool`` is then a
directory), its own seqs and :class:`~bus.Sender`, and, with ``--heartbeat``
and ``--pull``, its own :class:`~bus.Heartbeater` and pulls, as a real agent
on the wire; each makes ``--count`` packets at ``--rate`` packets/s, and the
swarm writes what it saw (``--report``, JSON) for ``benchmarks/load.py``.
"""

import argparse
import contextlib
import faulthandler
import heapq
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

from mtpkt import pkts
from mtpkt.bus import BusError, Requester
from mtpkt.bus.sender import Heartbeater, Sender
from mtpkt.bus.spool import Spool
from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.link import Pull, Receipt
from mtpkt.pkts.status import StatusChange, StatusPacket, Step

TESTS_EVERY = 10  # packets per test: RUNNING, 4 steps (start+end), COMPLETED
SLOTS: Final = 4
"""Slots a simulated agent of a swarm reports in its heartbeats and pulls (all free)."""
PULL_TIMEOUT: Final = 2.0
"""Seconds a simulated pull waits for the home's answer (as a host agent's)."""


def packet(origin: str, seq: int, target: str, runname: str) -> StatusPacket:
    """Status packet number ``seq`` of a producer."""
    test = f"{origin}_t{(seq - 1) // TESTS_EVERY:04d}"
    slot = (seq - 1) % TESTS_EVERY
    common: dict[str, Any] = {
        "origin": origin,
        "seq": seq,
        "target": target,
        "runname": runname,
        "test": test,
    }
    if slot == 0:
        return StatusChange(state=State.RUNNING, status=Status.NA, host=origin, **common)
    if slot == TESTS_EVERY - 1:
        final = Status.FAIL if (seq // TESTS_EVERY) % 7 == 0 else Status.PASS
        return StatusChange(state=State.COMPLETED, status=final, host=origin, **common)
    step = f"step{(slot - 1) // 2}"
    if slot % 2 == 1:
        return Step(step=step, state=StepState.START, **common)
    return Step(
        step=step,
        state=StepState.END,
        status=Status.PASS,
        exit_code=0,
        duration=0.5,
        logfile=f"{step}.log",
        **common,
    )


def _wait_for(path: Path, timeout: float) -> bool:
    """Wait until ``path`` exists; whether it does."""
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.exists()


class _Simulated:
    """One agent of a swarm: its own name, spool (so its own seqs), sender, heartbeats and
    pull socket, and the books of what it saw.

    Args:
        name: its origin name.
        spool: its spool file.
        address: the home's address.
        key: the area's secret.
        heartbeat: seconds between heartbeats (0: none).
        pull: seconds between pulls (0: none).
    """

    def __init__(
        self, name: str, spool: Path, address: str, key: bytes, *, heartbeat: float, pull: float
    ) -> None:
        self.name = name
        self.spool = Spool(spool)
        self.sender = Sender(self.spool, address, key, name=name)
        self._key = key
        self._pull_every = pull
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.beat_rtts: list[float] = []
        self.beats_failed = 0
        self.pull_rtts: list[float] = []
        self.pulls_failed = 0
        self.heartbeater = (
            Heartbeater(
                address, key, origin=name, interval=heartbeat,
                load=lambda: (SLOTS, 0), on_beat=self._beaten,
            )
            if heartbeat
            else None
        )  # fmt: skip
        self._requester = Requester(address, timeout=PULL_TIMEOUT) if pull else None
        self._puller = threading.Thread(target=self._pull_loop, name=f"{name} pulls", daemon=True)

    def _beaten(self, round_trip: float | None) -> None:
        with self._lock:
            if round_trip is None:
                self.beats_failed += 1
            else:
                self.beat_rtts.append(round_trip)

    def start(self) -> None:
        self.sender.start()
        if self.heartbeater is not None:
            self.heartbeater.start()
        if self._requester is not None:
            self._puller.start()

    def _pull_loop(self) -> None:
        assert self._requester is not None
        pull = pkts.encode(Pull(origin=self.name, slots=SLOTS, free=SLOTS), self._key)
        while not self._stop.wait(self._pull_every):
            began = time.monotonic()
            try:
                reply = pkts.decode_batch(self._requester.request(pull), self._key)
            except (BusError, pkts.PacketError):
                reply = []
            ok = bool(reply) and isinstance(reply[0], Receipt) and not reply[0].error
            if self._stop.is_set():
                return  # cut short by stop(): not the home's failure
            with self._lock:
                if ok:
                    self.pull_rtts.append(time.monotonic() - began)
                else:
                    self.pulls_failed += 1

    def stop(self) -> None:
        """Stop pulling, send ``offline``, stop sending (the spool stays open)."""
        self._stop.set()
        if self._requester is not None:
            self._requester.close()
            if self._puller.is_alive():
                self._puller.join(PULL_TIMEOUT + 1)
        if self.heartbeater is not None:
            self.heartbeater.stop()
        self.sender.stop()

    def books(self, put: int) -> dict[str, Any]:
        stats = self.sender.stats
        with self._lock:
            return {
                "put": put,
                "left": len(self.spool),
                "acknowledged": stats.acknowledged,
                "frames": stats.frames,
                "retries": stats.retries,
                "beats_acked": len(self.beat_rtts),
                "beats_failed": self.beats_failed,
                "pulls_acked": len(self.pull_rtts),
                "pulls_failed": self.pulls_failed,
            }


def _pace(agents: list[_Simulated], count: int, rate: float, target: str, runname: str) -> None:
    """Put ``count`` packets into each agent's spool at ``rate`` per second, the agents' phases
    spread evenly over one period; an agent that fell behind puts all it owes at once."""
    began = time.monotonic()
    n = len(agents)
    due = [(began + k / (n * rate), k) for k in range(n)]
    while due:
        when, k = heapq.heappop(due)
        time.sleep(max(0.0, when - time.monotonic()))
        agent = agents[k]
        first = agent.spool.next_seq
        owed = math.floor((time.monotonic() - began) * rate - k / n) + 1
        last = min(count, max(first, owed))
        agent.spool.put_many(
            [packet(agent.name, seq, target, runname) for seq in range(first, last + 1)]
        )
        if last < count:
            heapq.heappush(due, (began + (k / n + last) / rate, k))


def _drained(agents: list[_Simulated], deadline: float) -> bool:
    """Wait until every agent's spool is empty (or the deadline); whether they all are."""
    end = time.monotonic() + deadline
    while any(len(agent.spool) for agent in agents) and time.monotonic() < end:
        time.sleep(0.05)
    return not any(len(agent.spool) for agent in agents)


def swarm(args: argparse.Namespace) -> int:
    """Simulate ``args.agents`` agents in this process; exit 0 once the home has acknowledged
    every packet of every one."""
    if args.rate <= 0:
        print("--agents needs a --rate above 0", file=sys.stderr)
        return 2
    key = args.key_file.read_bytes()
    with contextlib.ExitStack() as stack:
        agents: list[_Simulated] = []
        for k in range(1, args.agents + 1):
            name = f"{args.name}-{k:02d}"
            agent = _Simulated(
                name, args.spool / f"{name}.db", args.address, key,
                heartbeat=args.heartbeat, pull=args.pull,
            )  # fmt: skip
            stack.callback(agent.spool.close)
            stack.callback(agent.stop)
            agents.append(agent)
        first = agents[0].spool.next_seq
        print("ready", flush=True)
        if args.start_file is not None and not _wait_for(args.start_file, args.deadline):
            print("gave up waiting to start", flush=True)
            return 1
        for agent in agents:
            agent.start()
        print(f"start at {first}", flush=True)
        _pace(agents, args.count, args.rate, args.target, args.runname)
        print(f"spooled {args.count} each", flush=True)
        drained = _drained(agents, args.deadline)
        for agent in agents:
            agent.stop()
        books = {agent.name: agent.books(args.count - first + 1) for agent in agents}
        if args.report is not None:
            report = {
                "agents": books,
                "beat_rtts": [rtt for agent in agents for rtt in agent.beat_rtts],
                "pull_rtts": [rtt for agent in agents for rtt in agent.pull_rtts],
            }
            args.report.write_text(json.dumps(report))
        left = sum(book["left"] for book in books.values())
        print("done" if drained else f"gave up with {left} unacknowledged", flush=True)
        return 0 if drained else 1
    raise AssertionError("unreachable")  # (mypy: ExitStack may swallow exceptions)


def main() -> int:
    """Generate, spool and send; exit 0 once everything is acknowledged."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a stuck one is: load.py asks
    parser = argparse.ArgumentParser(prog="benchmarks/loadgen.py", description=__doc__)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--target", default="linux/x86")
    parser.add_argument("--runname", default="stress")
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=0.0, help="packets/s (0: as fast as it can)")
    parser.add_argument(
        "--go-file",
        type=Path,
        help="spool everything first, then send once this file exists (a backlog to drain)",
    )
    parser.add_argument(
        "--start-file",
        type=Path,
        help='print "ready", then make and send packets once this file exists',
    )
    swarming = parser.add_argument_group("a swarm of simulated agents")
    swarming.add_argument(
        "--agents", type=int, default=1, help="agents to simulate (--spool is then a directory)"
    )
    swarming.add_argument("--heartbeat", type=float, default=0.0, help="seconds between beats")
    swarming.add_argument("--pull", type=float, default=0.0, help="seconds between pulls")
    swarming.add_argument("--report", type=Path, help="write what the swarm saw here (JSON)")
    args = parser.parse_args()
    if args.agents > 1:
        return swarm(args)
    key = args.key_file.read_bytes()
    spool = Spool(args.spool)
    sender = Sender(spool, args.address, key, name=args.name)
    if args.start_file is not None:
        print("ready", flush=True)
        if not _wait_for(args.start_file, args.deadline):
            print("gave up waiting to start", flush=True)
            return 1
    if args.go_file is None:
        sender.start()
    print(f"start at {spool.next_seq}", flush=True)
    began, resumed_at = time.monotonic(), spool.next_seq
    while spool.next_seq <= args.count:
        first = spool.next_seq
        last = min(args.count, first + args.chunk - 1)
        spool.put_many(
            [packet(args.name, seq, args.target, args.runname) for seq in range(first, last + 1)]
        )
        if args.rate:
            ahead = (last - resumed_at + 1) / args.rate - (time.monotonic() - began)
            time.sleep(max(0.0, ahead))
    print(f"spooled {args.count}", flush=True)
    if args.go_file is not None:
        _wait_for(args.go_file, args.deadline)
        sender.start()
    deadline = time.monotonic() + args.deadline
    while len(spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.stop()
    left = len(spool)
    spool.close()
    print("done" if left == 0 else f"gave up with {left} unacknowledged", flush=True)
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
