"""A load generator: a simulated agent that spools status packets and sends them to a home.

``python -m agents.loadgen --spool S --address A --key-file K --name p01 --count N``

Packet number i (its seq) is always the same packet apart from its id: test
``<name>_t<k>`` gets RUNNING, four steps (start and end) and COMPLETED with
PASS (FAIL for every seventh). A generator killed and started again resumes at
its spool's next seq, so the stream is still exactly N packets. It prints
"done" once the home has acknowledged everything. Used by the status path's
tests and by ``benchmarks/status_path.py``.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bus.sender import Sender
from bus.spool import Spool
from pkts import State, Status, StepState
from pkts.status import StatusChange, StatusPacket, Step

TESTS_EVERY = 10  # packets per test: RUNNING, 4 steps (start+end), COMPLETED


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


def main() -> int:
    """Generate, spool and send; exit 0 once everything is acknowledged."""
    parser = argparse.ArgumentParser(prog="python -m agents.loadgen", description=__doc__)
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
    args = parser.parse_args()
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
