"""Encode/decode throughput of typical ``Step`` packets, batched as the status path sends them.

Usage: python benchmarks/codec.py [--batch N] [--seconds S]

Prints packets/s each way on one core (this process, single-threaded).
Target (DESIGN.md, issue 2): at least 100,000 packets/s each way in batches.
"""

import argparse
import os
import time
from collections.abc import Callable

from mtpkt import pkts
from mtpkt.pkts.columns import read_status_frame
from mtpkt.pkts.status import Step


def typical_step(seq: int) -> Step:
    """A ``Step`` end packet as an agent reports it for an itemized test."""
    return Step(
        seq=seq,
        origin="agent-ws042",
        target="ubuntu/x86_64",
        runname="nightly-2026-11-24",
        test="runfirst",
        item="a/1",
        step="compile",
        state=pkts.StepState.END,
        status=pkts.Status.PASS,
        exit_code=0,
        logfile="compile.log",
        duration=12.75,
    )


def measure(label: str, work: Callable[[], object], packets_per_call: int, seconds: float) -> float:
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        work()
        calls += 1
    elapsed = time.perf_counter() - start
    rate = calls * packets_per_call / elapsed
    print(f"{label:<28} {rate:>12,.0f} packets/s  ({calls} frames in {elapsed:.2f} s)")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="packets per frame (default 100)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()

    key = os.urandom(32)
    batch = [typical_step(seq) for seq in range(1, args.batch + 1)]
    frame = pkts.encode_batch(batch, key)
    assert pkts.decode_batch(frame, key) == batch
    single = pkts.encode(batch[0], key)
    per_packet = len(frame) / args.batch
    print(f"typical Step: {len(single)} bytes alone, {per_packet:.0f} bytes/packet batched")

    enc = measure(
        f"encode_batch ({args.batch}/frame)",
        lambda: pkts.encode_batch(batch, key),
        args.batch,
        args.seconds,
    )
    dec = measure(
        f"decode_batch ({args.batch}/frame)",
        lambda: pkts.decode_batch(frame, key),
        args.batch,
        args.seconds,
    )
    measure(
        f"read_status_frame ({args.batch}/frame)",
        lambda: read_status_frame(frame, key),
        args.batch,
        args.seconds,
    )
    measure("encode (1/frame)", lambda: pkts.encode(batch[0], key), 1, args.seconds)
    measure("decode (1/frame)", lambda: pkts.decode(single, key), 1, args.seconds)
    target = 100_000
    ok = enc >= target and dec >= target
    print(f"target {target:,} packets/s each way in batches: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
