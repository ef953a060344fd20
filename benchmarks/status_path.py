"""End-to-end throughput of the status path: agents' spools → collector → SQLite, committed.

Usage: python benchmarks/status_path.py [--agents 20] [--per-agent 5000] [--not-durable]
                                       [--backlog]

Makes an area in a temporary directory, starts its home (``mtpkt home``,
whose collector commits status packets) and N load generators
(``benchmarks/loadgen.py``, each a simulated agent with its own spool, signing
with the area's key) on loopback tcp, all on this machine, and measures how
fast packets are committed, from the first commit to the last, then checks
that the database holds every packet exactly once. Prints the home's peak
memory (VmHWM) and CPU time. ``--not-durable`` is ``mtpkt home --not-durable``
(``synchronous=NORMAL``). The home answers with its own worker threads
(:data:`mtpkt.agents.home.home.WORKERS`): the collector no longer runs on its
own, so its ``--workers`` option is gone.

Two modes:

* live (default): once all have started, the generators make, spool and
  send packets as fast as they can while the collector commits them. On two
  cores, the twenty generators' own work (making and spooling packets)
  competes with the collector, so this is a floor.
* ``--backlog``: every generator first spools all its packets, then all start
  sending at once, as agents do when the home comes back after being away.
  This measures the status path itself: sending, committing, acknowledging.
  Once the home has stopped, the same number of rows shaped like the history
  table's (a random 16-byte blob primary key, the packets' mean size) are
  inserted into a new database on the same disk with plain batched SQLite
  (apsw, 1,000 rows a transaction, WAL, ``synchronous=FULL``, or ``NORMAL``
  with ``--not-durable``), and the
  share mtpkt reaches of that limit is printed; then again with
  ``synchronous=OFF``, to show how much of the limit is the disk's.

Target (issue 4): at least 50,000 status packets/s committed on the 2-core
machine, nothing lost.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Final

import apsw
from dispatch import BenchError, Farm, make_area
from procstat import cpu_seconds, memory_kib

from mtpkt.agents.homedir import HomeDir
from mtpkt.store import HistoryReader

LOADGEN = Path(__file__).with_name("loadgen.py")
PLAIN_BATCH: Final = 1000
"""Rows in each transaction of the plain SQLite inserts."""


def start(args: list[str], logs: IO[bytes]) -> "subprocess.Popen[bytes]":
    """A load generator; its stdout is read (:func:`wait_line`), its stderr goes to ``logs``."""
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=logs)


def wait_line(process: "subprocess.Popen[bytes]", word: bytes) -> bool:
    """Read the process's output up to a line with ``word``; False if it ends first."""
    assert process.stdout is not None
    for line in process.stdout:  # ends when the process does
        if word in line:
            return True
    return False


def wait_committed(reader: HistoryReader, total: int, timeout: float) -> tuple[float, float] | None:
    """(time of the first commit, time all were committed), or None on timeout.

    One reader, polled every 20 ms: the measuring must not load the machine it measures.
    """
    deadline = time.monotonic() + timeout
    while reader.head() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    first = time.monotonic()
    while time.monotonic() < deadline:
        if reader.head() >= total:
            return first, time.monotonic()
        time.sleep(0.02)
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
    print(f"home memory: {rss:.1f} MiB at the end, {peak:.1f} MiB peak")
    met = rate >= 50_000 and lost == 0 and doubled == 0
    print(f"target 50,000 packets/s committed, nothing lost: {'met' if met else 'NOT met'}")
    return lost == 0 and doubled == 0


def packet_size(dbdir: Path) -> int:
    """The mean size in bytes of the packets committed to the history tables of ``dbdir``."""
    count = total = 0
    for path in dbdir.glob("*.db"):
        db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            for rows, size in db.execute("SELECT count(*), total(length(packet)) FROM history"):
                count, total = count + int(rows), total + int(size)
        finally:
            db.close()
    return total // count if count else 0


def plain_inserts(path: Path, rows: int, size: int, synchronous: str) -> float:
    """Rows per second committed by plain batched inserts into a new database at ``path``.

    The table is shaped like the history table, but keyed by a random 16-byte blob (a
    packet id); the rows are made before the clock starts. ``synchronous`` is the home's
    (FULL, or NORMAL for ``--not-durable``).
    """
    db = apsw.Connection(str(path))
    try:
        db.pragma("journal_mode", "wal")
        db.pragma("synchronous", synchronous)
        db.execute(
            "CREATE TABLE history (packet_id BLOB PRIMARY KEY, origin TEXT NOT NULL,"
            " origin_seq INTEGER NOT NULL, kind TEXT NOT NULL, testname TEXT NOT NULL,"
            " item_path TEXT NOT NULL, received REAL, packet BLOB NOT NULL)"
        )
        made = [
            (os.urandom(16), f"a{n % 20:03d}", n, "status_change", "t0000", f"{n:05d}",
             time.time(), os.urandom(size))
            for n in range(rows)
        ]  # fmt: skip
        began = time.monotonic()
        for start in range(0, rows, PLAIN_BATCH):
            with db:
                db.executemany(
                    "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    made[start : start + PLAIN_BATCH],
                )
        return rows / (time.monotonic() - began)
    finally:
        db.close()


def run(agents: int, per_agent: int, durable: bool, work: Path, backlog: bool) -> int:
    total = agents * per_agent
    area, logs = work / "area", work / "logs"
    logs.mkdir()
    make_area(area, 1, 1)  # its [fields] take the generators' target, linux/x86
    farm = Farm(area, logs)  # it stops the generators too, before the home
    try:
        try:
            home = farm.start_home(time.monotonic() + 60, durable)
        except BenchError as exc:
            print(f"the home did not start: {exc}")
            return 1
        home_dir = HomeDir(area)
        request, _ = home_dir.addresses()
        dbdir = home_dir.db_dir
        print(next(line for line in farm.log("home").splitlines() if "home ready" in line))
        mode = "backlog" if backlog else "live"
        print(
            f"agents: {agents}, {total:,} packets ({per_agent:,} each), durable: {durable}, {mode}"
        )
        go = ["--go-file" if backlog else "--start-file", str(work / "go")]
        with (logs / "generators.log").open("wb") as errors:  # each child keeps its own copy
            for index in range(agents):
                farm.processes[f"a{index:03d}"] = start(
                    [str(LOADGEN), "--spool", str(work / f"spool{index}.db"),
                     "--address", request, "--key-file", str(home_dir.secret_path),
                     "--name", f"a{index:03d}", "--count", str(per_agent),
                     "--chunk", "100", *go],
                    errors,
                )  # fmt: skip
        # Every generator first starts (and, with --backlog, spools everything), so that
        # interpreters starting up do not compete with the measured stream.
        for name, generator in farm.processes.items():
            if name != "home" and not wait_line(generator, b"spooled" if backlog else b"ready"):
                print(f"a generator ended before it was ready: see {logs / 'generators.log'}")
                return 1
        (work / "go").touch()
        cpu_before = cpu_seconds(home.pid)
        with contextlib.closing(HistoryReader(dbdir)) as reader:  # the home made main.db
            times = wait_committed(reader, total, timeout=600)
            if times is None:
                print(f"did not finish: {reader.head():,} of {total:,} committed")
                return 1
        memory = memory_kib(home.pid)
        home_cpu = cpu_seconds(home.pid) - cpu_before
        ok = report(dbdir, total, times[1] - times[0], memory)
        busy = home_cpu / (times[1] - times[0])
        print(f"home CPU: {home_cpu:.2f} s ({busy:.0%} of one core while committing)")
    finally:
        farm.stop_all()
    if backlog:  # with the home and generators stopped: the machine is as it was for them
        size = packet_size(dbdir)
        synchronous = "FULL" if durable else "NORMAL"
        limit = plain_inserts(work / "plain.db", total, size, synchronous)
        print(
            f"plain SQLite: {limit:,.0f} rows/s ({total:,} rows of {size} bytes,"
            f" {PLAIN_BATCH:,} a transaction, WAL, synchronous={synchronous}, 16-byte blob key)"
        )
        rate = total / (times[1] - times[0])
        print(f"mtpkt's share of plain SQLite: {rate / limit:.0%}")
        # Without waiting for the disk: how much of the limit above is the disk's.
        unsynced = plain_inserts(work / "plain-off.db", total, size, "OFF")
        print(f"plain SQLite, synchronous=OFF (not waiting for the disk): {unsynced:,.0f} rows/s")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20, help="load generators (default 20)")
    parser.add_argument("--per-agent", type=int, default=5000, help="packets each (default 5000)")
    parser.add_argument(
        "--not-durable", action="store_true", help="home with synchronous=NORMAL (mtpkt home's)"
    )
    parser.add_argument(
        "--backlog", action="store_true", help="spool everything first, then drain it all at once"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mtpkt-bench-") as work:
        return run(args.agents, args.per_agent, not args.not_durable, Path(work), args.backlog)


if __name__ == "__main__":
    raise SystemExit(main())
