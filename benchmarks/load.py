"""Load: 200 simulated agents heartbeating, pulling and reporting against one home, sustained.

Usage: python benchmarks/load.py [--agents 200] [--workers 4] [--duration 120] [--rate 5]
                                 [--heartbeat 2] [--pull 0.2] [--not-durable] [--keep]

Makes an area in a temporary directory and starts one real ``mtpkt home``
(``synchronous=FULL``, as users run it) on ``tcp://127.0.0.1``, then
``--workers`` processes of ``benchmarks/loadgen.py --agents N``, which
share the agents between them. Each simulated agent is a real agent on the
wire, without running tests: its own name, its own durable spool (so its own
seqs) and :class:`bus.Sender`, a :class:`bus.Heartbeater` every
``--heartbeat`` seconds (a host agent's default is 2 s), a pull every
``--pull`` seconds (the default of a host agent, 0.2 s), and ``--rate``
status packets a second (steps and state changes of its own tests, in one
shared run) for ``--duration`` seconds, then it waits for the home's receipt
of the last one and goes ``offline``.

Checked and measured:

* every status packet committed exactly once: per agent, the run's history
  holds its seqs 1..N, each once (lost = 0 and doubled = 0 required);
* no agent ever marked lost: ``main.db``'s registry polled every second
  during the run, and the home's log (required);
* heartbeats and pulls sent and acknowledged, their round trips (p50/p99);
* status packet made → committed (the packet's ``ts``, the worker's clock, to
  the history's ``received``, the home's: the same machine);
* committed packets/s, first to last commit; the home's CPU (% of one core)
  and memory (at the start of the load, at the end, peak), the workers' CPU;
* ``main.db`` and the run's database, each with its WAL, at the end.

Prints a summary line; exits 1 if anything was lost, doubled or an agent was
marked lost. Every process it starts is stopped at the end, on Ctrl-C, on an
error and after the run's time plus ``--timeout`` seconds.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final, Self

import apsw
import attrs
from dispatch import BenchError, Farm, in_work_dir, machine_ticks, make_area, percentile
from procstat import cpu_seconds, memory_kib

from mtpkt import pkts
from mtpkt.agents.homedir import HomeDir
from mtpkt.tools.reach import home_address

TARGET: Final = "linux/x86"
RUNNAME: Final = "load"
SAMPLE: Final = 1.0
"""Seconds between looks at the registry and the home's memory during the run."""


@attrs.frozen
class Options:
    agents: int
    workers: int
    duration: float
    rate: float
    heartbeat: float
    pull: float
    durable: bool
    timeout: float

    @property
    def count(self) -> int:
        """Status packets each agent makes."""
        return max(1, round(self.duration * self.rate))


def _readonly(path: Path) -> apsw.Connection:
    return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


def _mib(path: Path) -> str:
    size = path.stat().st_size if path.exists() else 0
    return f"{size / 2**20:.1f} MiB"


# -- the processes ----------------------------------------------------------------------------


def start_workers(farm: Farm, work: Path, options: Options, address: str) -> list[str]:
    """Start the workers, the agents shared out between them; their names."""
    share, extra = divmod(options.agents, options.workers)
    names = []
    for index in range(options.workers):
        name = f"w{index + 1}"
        agents = share + (1 if index < extra else 0)
        args = [
            sys.executable, str(Path(__file__).with_name("loadgen.py")), "--agents", str(agents),
            "--spool", str(work / "spools" / name), "--address", address,
            "--key-file", str(farm.area / ".mtpkt" / "secret"), "--name", name,
            "--count", str(options.count), "--rate", str(options.rate),
            "--heartbeat", str(options.heartbeat), "--pull", str(options.pull),
            "--target", TARGET, "--runname", RUNNAME, "--start-file", str(work / "go"),
            "--report", str(work / f"{name}.json"), "--deadline", str(options.timeout),
        ]  # fmt: skip
        with (farm.logs / f"{name}.log").open("wb") as log:
            farm.processes[name] = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=farm.env, start_new_session=True,
            )  # fmt: skip
        names.append(name)
    return names


@attrs.define
class Watch:
    """What the run looked like from outside: the registry and the home's memory, every
    :data:`SAMPLE` seconds until the workers end."""

    main_db: Path
    home_pid: int
    lost: set[str] = attrs.Factory(set)
    """Agents seen ``lost`` in the registry."""
    online_max: int = 0
    """Most agents ``online`` at once."""
    rss: list[int] = attrs.Factory(list)
    """The home's VmRSS at each look, KiB."""

    def look(self) -> None:
        self.rss.append(memory_kib(self.home_pid).get("VmRSS", 0))
        db = _readonly(self.main_db)
        try:
            rows = db.execute("SELECT name, state FROM agents").fetchall()
        finally:
            db.close()
        self.lost.update(str(name) for name, state in rows if state == "lost")
        self.online_max = max(self.online_max, sum(1 for _, state in rows if state == "online"))

    def until_done(self, farm: Farm, workers: list[str], deadline: float) -> None:
        while any(farm.processes[name].poll() is None for name in workers):
            if time.monotonic() > deadline:
                raise BenchError(f"the workers did not finish in time\n{stuck(farm, workers)}")
            self.look()
            time.sleep(SAMPLE)
        self.look()


def stuck(farm: Farm, workers: list[str]) -> str:
    """The workers still running: each one's threads' stacks (it dumps them on SIGUSR1)
    and the end of its log."""
    running = [name for name in workers if farm.processes[name].poll() is None]
    for name in running:
        farm.processes[name].send_signal(signal.SIGUSR1)
    time.sleep(1.0)  # the dump is written by the worker's signal handler
    return "\n".join(
        f"--- {name}, still running; the end of its log:\n"
        + "\n".join(farm.log(name).strip().splitlines()[-60:])
        for name in running
    )


@attrs.define
class Usage:
    """CPU seconds of the home, of this script's waited-for children (the workers), of the
    machine's cores (busy and in all), and wall time."""

    home: float
    workers: float
    busy: int
    ticks: int
    wall: float

    @classmethod
    def read(cls, home_pid: int) -> "Usage":
        busy, ticks = machine_ticks()
        return cls(
            cpu_seconds(home_pid), cpu_seconds(os.getpid(), children=True), busy, ticks,
            time.monotonic(),
        )  # fmt: skip

    def __sub__(self, other: Self) -> "Usage":
        return Usage(
            self.home - other.home, self.workers - other.workers, self.busy - other.busy,
            self.ticks - other.ticks, self.wall - other.wall,
        )  # fmt: skip


# -- the books --------------------------------------------------------------------------------


@attrs.define
class History:
    """The run's history, per origin: its seqs, its packets' made → committed times."""

    rows: int = 0
    distinct: int = 0
    seqs: dict[str, list[int]] = attrs.Factory(dict)
    latencies: list[float] = attrs.Factory(list)
    first: float = 0.0
    last: float = 0.0

    @classmethod
    def read(cls, dbdir: Path) -> "History":
        main = _readonly(dbdir / "main.db")
        try:
            row = main.execute("SELECT id FROM runs WHERE runname = ?", (RUNNAME,)).fetchone()
        finally:
            main.close()
        if row is None:
            raise BenchError(f"run {RUNNAME} is not in {dbdir / 'main.db'}")
        history = cls()
        db = _readonly(dbdir / f"{row[0]}.db")
        try:
            ids: set[bytes] = set()
            for packet_id, origin, seq, received, data in db.execute(
                "SELECT packet_id, origin, origin_seq, received, packet FROM history"
            ):
                history.rows += 1
                ids.add(bytes(packet_id))
                history.seqs.setdefault(str(origin), []).append(int(seq))
                history.latencies.append(float(received) - pkts.unpack(bytes(data)).ts)
                history.first = min(history.first or received, received)
                history.last = max(history.last, received)
            history.distinct = len(ids)
        finally:
            db.close()
        return history

    def broken(self, names: list[str], count: int) -> list[str]:
        """Agents whose seqs in the history are not exactly 1..count, each once."""
        expected = list(range(1, count + 1))
        return [name for name in names if sorted(self.seqs.get(name, [])) != expected]


def read_books(work: Path, workers: list[str]) -> dict[str, Any]:
    """The workers' reports, merged: ``agents`` by name, ``beat_rtts``, ``pull_rtts``."""
    merged: dict[str, Any] = {"agents": {}, "beat_rtts": [], "pull_rtts": []}
    for name in workers:
        path = work / f"{name}.json"
        if not path.exists():
            raise BenchError(f"worker {name} wrote no report (see its log)")
        report = json.loads(path.read_text())
        merged["agents"].update(report["agents"])
        merged["beat_rtts"] += report["beat_rtts"]
        merged["pull_rtts"] += report["pull_rtts"]
    return merged


def total(books: dict[str, Any], field: str) -> int:
    return sum(int(agent[field]) for agent in books["agents"].values())


# -- the measurement --------------------------------------------------------------------------


def measure(options: Options, work: Path) -> bool:
    deadline = time.monotonic() + options.duration + options.timeout
    area, logs = work / "area", work / "logs"
    logs.mkdir()
    make_area(area, 1, 1)
    print(
        f"{options.agents} agents in {options.workers} worker processes, {options.duration:.0f} s:"
        f" {options.rate:g} status packets/s each ({options.count:,} each,"
        f" {options.agents * options.count:,} in all), a heartbeat every {options.heartbeat:g} s,"
        f" a pull every {options.pull:g} s; home durable: {options.durable}; {os.cpu_count()} cores"
    )
    farm = Farm(area, logs)
    try:
        home = farm.start_home(deadline, options.durable)
        address = home_address(HomeDir(area), None)
        workers = start_workers(farm, work, options, address)
        for name in workers:
            farm.wait_ready(name, "ready", deadline)
        watch = Watch(area / ".mtpkt" / "db" / "main.db", home.pid)
        # The workers' CPU is counted from here: their start-up (imports, spools) is not load.
        start_up = sum(cpu_seconds(farm.processes[name].pid) for name in workers)
        before = Usage.read(home.pid)
        (work / "go").touch()
        watch.until_done(farm, workers, deadline)
        usage = Usage.read(home.pid) - before
        usage.workers -= start_up  # every worker has been waited for: counted in children
        memory = memory_kib(home.pid)
        failed = [name for name in workers if farm.processes[name].returncode != 0]
        if failed:
            print(f"workers that did not get every packet acknowledged: {', '.join(failed)}")
        books = read_books(work, workers)
        history = History.read(area / ".mtpkt" / "db")
        ok = report(options, books, history, watch, usage, memory, farm.log("home"))
        print_sizes(area / ".mtpkt" / "db")
        return ok and not failed
    finally:
        farm.stop_all()


def report(
    options: Options,
    books: dict[str, Any],
    history: History,
    watch: Watch,
    usage: Usage,
    memory: dict[str, int],
    home_log: str,
) -> bool:
    """Print the figures; whether nothing was lost or doubled and no agent was marked lost."""
    names = sorted(books["agents"])
    expected = len(names) * options.count
    put, acked = total(books, "put"), total(books, "acknowledged")
    lost, doubled = expected - history.distinct, history.rows - history.distinct
    broken = history.broken(names, options.count)
    span = history.last - history.first
    print(
        f"status packets: {put:,} made and spooled, {acked:,} acknowledged,"
        f" {history.rows:,} committed ({history.distinct:,} distinct) of {expected:,}"
    )
    print(f"lost: {lost}, doubled: {doubled}, agents whose seqs are not exactly 1..N once:"
          f" {len(broken)}{' ' + ', '.join(broken[:5]) if broken else ''}")  # fmt: skip
    rate = history.rows / span if span > 0 else 0.0
    print(f"committed: {rate:,.0f} packets/s sustained over {span:.1f} s, first to last commit")
    print(f"status packet made → committed: {_ms(history.latencies)}")
    print(f"status frames: {total(books, 'frames'):,} sent, {total(books, 'retries'):,} retried")
    beats, failed = total(books, "beats_acked"), total(books, "beats_failed")
    print(f"heartbeats: {beats + failed:,} sent, {beats:,} acknowledged, {failed} without receipt")
    print(f"heartbeat round trip: {_ms(books['beat_rtts'])}")
    pulls, failed_pulls = total(books, "pulls_acked"), total(books, "pulls_failed")
    if pulls or failed_pulls:
        print(f"pulls: {pulls + failed_pulls:,} sent, {pulls:,} answered, {failed_pulls} not")
        print(f"pull round trip: {_ms(books['pull_rtts'])}")
    logged = sorted(set(re.findall(r"agent (\S+) is lost", home_log)))
    marked = sorted(watch.lost | set(logged))
    print(
        f"agents online at once, at most: {watch.online_max} of {len(names)};"
        f" ever marked lost: {len(marked)}{' ' + ', '.join(marked[:5]) if marked else ''}"
    )
    cores = os.cpu_count() or 1
    machine = usage.busy / usage.ticks * cores if usage.ticks else 0.0
    print(
        f"CPU over {usage.wall:.1f} s: home {usage.home:.1f} s ({usage.home / usage.wall:.0%} of a"
        f" core), workers {usage.workers:.1f} s ({usage.workers / usage.wall:.0%});"
        f" machine {machine:.2f} of {cores} cores busy"
    )
    rss = [kib / 1024 for kib in watch.rss] or [0.0]
    print(
        f"home memory: {rss[0]:.1f} MiB when the load began, {rss[-1]:.1f} MiB at the end,"
        f" {memory.get('VmHWM', 0) / 1024:.1f} MiB peak"
    )
    ok = lost == 0 and doubled == 0 and not broken and not marked and put == expected
    print(
        f"{'PASS' if ok else 'FAIL'}: {len(names)} agents, {history.distinct:,} of {expected:,}"
        f" packets committed once, {lost} lost, {doubled} doubled, {len(marked)} agents marked lost"
    )
    return ok


def print_sizes(dbdir: Path) -> None:
    for db in sorted(dbdir.glob("*.db")):
        print(f"{db.name}: {_mib(db)}, WAL {_mib(db.with_name(db.name + '-wal'))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200, help="simulated agents (200)")
    parser.add_argument("--workers", type=int, default=4, help="processes they run in (4)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (120)")
    parser.add_argument("--rate", type=float, default=5.0, help="status packets/s per agent (5)")
    parser.add_argument("--heartbeat", type=float, default=2.0, help="seconds between beats (2)")
    parser.add_argument("--pull", type=float, default=0.2, help="seconds between pulls; 0: none")
    parser.add_argument(
        "--not-durable", action="store_true", help="home with synchronous=NORMAL (not the default)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds allowed beyond --duration (120)"
    )
    args = parser.parse_args()
    if args.agents < 2 or not 1 <= args.workers <= args.agents // 2:
        parser.error("--agents must be at least 2, and at least twice --workers")
    if min(args.duration, args.rate, args.heartbeat) <= 0 or args.pull < 0:
        parser.error("--duration, --rate and --heartbeat must be above 0, --pull not below")
    options = Options(
        args.agents, args.workers, args.duration, args.rate, args.heartbeat, args.pull,
        not args.not_durable, args.timeout,
    )  # fmt: skip
    return in_work_dir(
        "mtpkt-load-",
        lambda work: measure(options, work),
        options.duration + options.timeout,
        keep=args.keep,
    )


if __name__ == "__main__":
    raise SystemExit(main())
