"""End-to-end throughput of the status path: agents' spools → collector → SQLite, committed.

Usage: python benchmarks/status_path.py [--agents 20] [--per-agent 5000] [--not-durable]
                                       [--backlog]

Starts a collector process and N load generators (``benchmarks/loadgen.py``,
each a simulated agent with its own spool) on loopback tcp, all on this
machine, and measures how fast packets are committed, from the first commit
to the last, then checks that the database holds every packet exactly once.
Prints the collector's peak memory (VmHWM) and CPU time.

Two modes:

* live (default): once all have started, the generators make, spool and
  send packets as fast as they can while the collector commits them. On two
  cores, the twenty generators' own work (making and spooling packets)
  competes with the collector, so this is a floor.
* ``--backlog``: every generator first spools all its packets, then all start
  sending at once, as agents do when the home comes back after being away.
  This measures the status path itself: sending, committing, acknowledging.

Extra collector options can be passed in MTPKT_BENCH_COLLECTOR_ARGS, e.g.
``MTPKT_BENCH_COLLECTOR_ARGS="--workers 2"``.

Target (issue 4): at least 50,000 status packets/s committed on the 2-core
machine, nothing lost.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from procstat import cpu_seconds, free_port, memory_kib

from mtpkt.store import HistoryReader

LOADGEN = Path(__file__).with_name("loadgen.py")
FIELDS = "os,arch"


def head(dbdir: Path) -> int:
    if not (dbdir / "main.db").exists():
        return 0
    reader = HistoryReader(dbdir)
    try:
        return reader.head()
    finally:
        reader.close()


def start(
    args: list[str], logs: IO[str], *, stdout: int = subprocess.DEVNULL
) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, *args], stdout=stdout, stderr=logs, text=True)


def wait_line(process: "subprocess.Popen[str]", word: str) -> bool:
    """Read the process's output up to a line with ``word``; False if it ends first."""
    assert process.stdout is not None
    for line in process.stdout:  # ends when the process does
        if word in line:
            return True
    return False


def wait_committed(dbdir: Path, total: int, timeout: float) -> tuple[float, float] | None:
    """(time of the first commit, time all were committed), or None on timeout.

    One reader, polled every 20 ms: the measuring must not load the machine it measures.
    """
    first = None
    deadline = time.monotonic() + timeout
    while head(dbdir) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    first = time.monotonic()
    reader = HistoryReader(dbdir)
    try:
        while time.monotonic() < deadline:
            if reader.head() >= total:
                return first, time.monotonic()
            time.sleep(0.02)
    finally:
        reader.close()
    return None


def report(dbdir: Path, total: int, elapsed: float, memory: dict[str, int]) -> bool:
    """Print the figures; whether nothing was lost or doubled."""
    reader = HistoryReader(dbdir)
    history = reader.history(after=0, limit=total * 2)
    reader.close()
    distinct = len({packet.id for _, packet in history})
    lost, doubled = total - distinct, len(history) - distinct
    rate = total / elapsed
    print(f"committed: {len(history):,} in {elapsed:.2f} s from first to last commit")
    print(f"throughput: {rate:,.0f} packets/s committed")
    print(f"lost: {lost}, doubled: {doubled}")
    rss, peak = memory.get("VmRSS", 0) / 1024, memory.get("VmHWM", 0) / 1024
    print(f"collector memory: {rss:.1f} MiB at the end, {peak:.1f} MiB peak")
    met = rate >= 50_000 and lost == 0 and doubled == 0
    print(f"target 50,000 packets/s committed, nothing lost: {'met' if met else 'NOT met'}")
    return lost == 0 and doubled == 0


def run(agents: int, per_agent: int, durable: bool, work: Path, backlog: bool) -> int:
    total = agents * per_agent
    key_file = work / "secret"
    key_file.write_bytes(os.urandom(32))
    request = f"tcp://127.0.0.1:{free_port()}"
    logs = (work / "logs.txt").open("w")
    collector = start(
        ["-m", "mtpkt.agents.home.collector", "--dbdir", str(work / "db"), "--fields", FIELDS,
         "--listen", request, "--publish", f"tcp://127.0.0.1:{free_port()}",
         "--key-file", str(key_file), *([] if durable else ["--not-durable"]),
         *os.environ.get("MTPKT_BENCH_COLLECTOR_ARGS", "").split()],
        logs, stdout=subprocess.PIPE,
    )  # fmt: skip
    processes = [collector]
    try:
        assert collector.stdout is not None
        print(collector.stdout.readline().strip())
        mode = "backlog" if backlog else "live"
        print(
            f"agents: {agents}, {total:,} packets ({per_agent:,} each), durable: {durable}, {mode}"
        )
        for index in range(agents):
            processes.append(
                start(
                    [
                        str(LOADGEN),
                        "--spool",
                        str(work / f"spool{index}.db"),
                        "--address",
                        request,
                        "--key-file",
                        str(key_file),
                        "--name",
                        f"a{index:03d}",
                        "--count",
                        str(per_agent),
                        "--chunk",
                        "100",
                        *(
                            ["--go-file", str(work / "go")]
                            if backlog
                            else ["--start-file", str(work / "go")]
                        ),
                    ],
                    logs,
                    stdout=subprocess.PIPE,
                )
            )
        # Every generator first starts (and, with --backlog, spools everything), so that
        # interpreters starting up do not compete with the measured stream.
        for generator in processes[1:]:
            if not wait_line(generator, "spooled" if backlog else "ready"):
                print(f"a generator ended before it was ready: see {work / 'logs.txt'}")
                return 1
        (work / "go").touch()
        cpu_before = cpu_seconds(collector.pid)
        times = wait_committed(work / "db", total, timeout=600)
        memory = memory_kib(collector.pid)
        collector_cpu = cpu_seconds(collector.pid) - cpu_before
        if times is None:
            print(f"did not finish: {head(work / 'db'):,} of {total:,} committed")
            return 1
        ok = report(work / "db", total, times[1] - times[0], memory)
        busy = collector_cpu / (times[1] - times[0])
        print(f"collector CPU: {collector_cpu:.2f} s ({busy:.0%} of one core while committing)")
        return 0 if ok else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        logs.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20, help="load generators (default 20)")
    parser.add_argument("--per-agent", type=int, default=5000, help="packets each (default 5000)")
    parser.add_argument(
        "--not-durable", action="store_true", help="collector with synchronous=NORMAL"
    )
    parser.add_argument(
        "--backlog", action="store_true", help="spool everything first, then drain it all at once"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mtpkt-bench-") as work:
        return run(args.agents, args.per_agent, not args.not_durable, Path(work), args.backlog)


if __name__ == "__main__":
    raise SystemExit(main())
