"""Tests through a batch system: submit-to-RUNNING latency and tests/s through the local Slurm,
beside the same tests on one agent started by hand, in the same run.

Usage: python benchmarks/batch.py [--tests 100] [--singles 5] [--slots 8] [--timeout 600]
                                  [--keep]

Needs a running Slurm whose ``sbatch`` this user may call (``.ci/slurm-local start`` makes
one on this machine; the benchmark says so and exits 2 when there is none). Builds an area
in a temporary directory with one test of ``--tests`` items, each one trivial step
(``true``), and ``[jobtools] launcher sbatch``; starts ``mtpkt home``, then

1. runs a test of one instance ``--singles`` times, one run after the other: the
   submit→RUNNING latency of a job that does not wait for a free slot;
2. runs the test of ``--tests`` instances through Slurm (``send run --wait``): one job
   per instance, each an ``mtpkt agent --batch``;
3. starts one ``mtpkt agent --slots SLOTS`` and runs both again, pinned to that agent
   (``--host``), the peer they are compared with.

Measured from each run's history: submit→RUNNING (the home's LAUNCHED record with the
job, "queued in slurm job N", to the agent's RUNNING; the agents' clock is this machine's),
median and 90th percentile; tests/s completed (instances over the time from the first
LAUNCHED to the last COMPLETED); and the wall time of ``send run --wait``. Every process it
starts is stopped at the end, on Ctrl-C, on an error and after ``--timeout`` seconds; the
jobs it submitted are cancelled.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import apsw

from mtpkt import pkts
from mtpkt.pkts import State
from mtpkt.pkts.status import StatusChange

MTPKT: Final = [sys.executable, "-m", "mtpkt.tools"]


class BenchError(Exception):
    """The benchmark could not measure; the message says why."""


def write_area(root: Path, tests: int) -> Path:
    area = root / "area"
    (area / "tests" / "t").mkdir(parents=True)
    (area / "tests" / "one").mkdir(parents=True)
    (area / "tests" / "one" / "testconfig").write_text("[ezsteps]\ns true\n")
    (area / "megatest.config").write_text(
        "[fields]\nOS TEXT\n\n[setup]\nlinktree #{getenv MT_RUN_AREA_HOME}/links\n"
        "max_concurrent_jobs 10000\n\n[jobtools]\nlauncher sbatch\n"
    )
    (area / "runconfigs.config").write_text("[default]\n")
    items = " ".join(str(n) for n in range(1, tests + 1))
    (area / "tests" / "t" / "testconfig").write_text(
        textwrap.dedent(f"[ezsteps]\ns true\n\n[items]\nI {items}\n")
    )
    return area


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes started; each stopped at the end (SIGTERM twice, then SIGKILL)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            for sig in (signal.SIGTERM, signal.SIGTERM):
                if process.poll() is None:
                    process.send_signal(sig)
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        continue
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def start(started: list[subprocess.Popen[bytes]], log: Path, *args: str) -> None:
    with log.open("wb") as out:
        started.append(subprocess.Popen([*MTPKT, *args], stdout=out, stderr=subprocess.STDOUT))


def wait_for_line(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise BenchError(f"no {text!r} in {log} after {timeout:g}s")


def run(area: Path, runname: str, testpatt: str, timeout: float, *extra: str) -> float:
    """``send run --wait``; its wall time."""
    began = time.monotonic()
    done = subprocess.run(
        [*MTPKT, "send", "run", "--area", str(area), "-t", "linux", "-r", runname, "--wait",
         "--testpatt", testpatt, *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"run {runname} ended with exit {done.returncode}: {done.stderr[-500:]}")
    return time.monotonic() - began


def history(area: Path, runname: str, items: bool = True) -> list[StatusChange]:
    main = apsw.Connection(str(area / ".mtpkt/db/main.db"), flags=apsw.SQLITE_OPEN_READONLY)
    ((run_id,),) = main.execute("SELECT id FROM runs WHERE runname = ?", (runname,)).fetchall()
    main.close()
    db = apsw.Connection(str(area / f".mtpkt/db/{run_id}.db"), flags=apsw.SQLITE_OPEN_READONLY)
    found = []
    for (data,) in db.execute("SELECT packet FROM history WHERE kind = 'status_change'"):
        packet = pkts.unpack(data)
        if isinstance(packet, StatusChange) and (bool(packet.item) is items):
            found.append(packet)
    db.close()
    return found


def figures(changes: list[StatusChange], tests: int) -> tuple[list[float], float, float]:
    """(submit→RUNNING of each instance, tests/s completed, seconds from the first
    LAUNCHED to the last COMPLETED)."""
    launched: dict[str, float] = {}
    submitted: dict[str, float] = {}
    running: dict[str, float] = {}
    completed: dict[str, float] = {}
    for packet in changes:
        key = packet.item
        if packet.state is State.LAUNCHED:
            launched.setdefault(key, packet.ts)
            submitted[key] = packet.ts  # the last LAUNCHED: with its job, where there is one
        elif packet.state is State.RUNNING:
            running.setdefault(key, packet.ts)
        elif packet.state is State.COMPLETED:
            completed[key] = packet.ts
    if len(completed) != tests:
        raise BenchError(f"{len(completed)} of {tests} instances completed")
    latency = [running[key] - submitted[key] for key in running]
    span = max(completed.values()) - min(launched.values())
    return latency, tests / span if span > 0 else float("inf"), span


def cancel_ours() -> None:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    ours = [line.split()[0] for line in out.splitlines() if " batch-" in line]
    if ours:
        subprocess.run(["scancel", *ours], timeout=30, check=False)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=100, help="test instances (default 100)")
    parser.add_argument("--singles", type=int, default=5, help="runs of one instance (5)")
    parser.add_argument("--slots", type=int, default=8, help="the peer agent's slots (8)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds in all (600)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary area")
    args = parser.parse_args()
    if (
        shutil.which("sbatch") is None
        or subprocess.run(["squeue", "-h"], capture_output=True, timeout=30, check=False).returncode
    ):
        print("benchmark needs a running Slurm: .ci/slurm-local start", file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(BenchError("timed out")))
    signal.alarm(int(args.timeout))
    root = Path(tempfile.mkdtemp(prefix="mtpkt-batch-bench-"))
    try:
        area = write_area(root, args.tests)
        with processes() as started:
            start(started, root / "home.log", "home", "--area", str(area))
            wait_for_line(root / "home.log", "home ready", 30)
            print(
                f"{args.tests} test instances, one trivial step each, and {args.singles} runs"
                f" of one instance; {os.cpu_count()} CPUs; the peer: one agent of"
                f" {args.slots} slots"
            )
            walls: dict[str, float] = {}
            for how, extra in (("slurm", ()), ("agent", ("--host", "bench"))):
                if how == "agent":
                    start(started, root / "agent.log", "agent", "--area", str(area), "--name",
                          "bench", "--slots", str(args.slots))  # fmt: skip
                    wait_for_line(root / "agent.log", "ready", 30)
                for single in range(args.singles):
                    run(area, f"{how}-one-{single}", "one", args.timeout, *extra)
                walls[how] = run(area, f"{how}-many", "t", args.timeout, *extra)
        for how in ("slurm", "agent"):
            singles: list[float] = []
            for single in range(args.singles):
                changes = history(area, f"{how}-one-{single}", items=False)
                singles += figures(changes, 1)[0]
            latency, rate, span = figures(history(area, f"{how}-many"), args.tests)
            print(
                f"{how:>6}: one instance submit→RUNNING median"
                f" {statistics.median(singles) * 1000:5.0f} ms, max {max(singles) * 1000:5.0f} ms;"
                f" {args.tests} instances: {rate:6.1f} tests/s ({span:.1f}s first LAUNCHED to"
                f" last COMPLETED, send run --wait {walls[how]:.1f}s), submit→RUNNING median"
                f" {statistics.median(latency):.2f}s, p90 {percentile(latency, 0.9):.2f}s"
            )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        cancel_ours()
        if args.keep:
            print(f"area kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
