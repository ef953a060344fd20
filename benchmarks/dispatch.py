"""End-to-end throughput of the control path: a 10,000-test run dispatched over 8 agents.

Usage: python benchmarks/dispatch.py [--tests 10000] [--agents 8] [--slots 3]
                                     [--items-per-test 100] [--acks 300] [--not-durable]
                                     [--step true] [--keep] [--dir DIR] [--timeout 900]

Builds an area in a temporary directory whose tests have one trivial step
(``true``) and ``[items]``, so that ``--tests`` instances come from
``--tests / --items-per-test`` tests (``--items-per-test 10000``: one test
with 10,000 items). Starts ``mtpkt home`` and ``--agents`` ``mtpkt agent``
processes from the command line (``python -m mtpkt.tools``), all on this machine
on ``tcp://127.0.0.1``, then ``mtpkt send run``, and polls the run's
database until every instance has settled. Measured:

* tests/s dispatched and completed, from the run's history (``received``,
  the home's clock when it committed a packet): LAUNCHED from the first to
  the last, and COMPLETED from the first LAUNCHED to the last COMPLETED;
* send→ack latency of control packets: ``kill`` packets for a small run
  that has ended (``probe-run``, run first: the home refuses a kill of a run
  that does not exist; this one it journals and marks done at once, as
  nothing of the run is running or waiting), sent in this process with
  ``mtpkt send``'s own function (:func:`mtpkt.tools.reach.ask_home`), on a
  new socket each (as ``mtpkt send`` does), first with the home idle, then
  while the run is dispatched;
* handed out → RUNNING: from the LAUNCHED commit to the ``ts`` of the
  agent's RUNNING packet (the agent's clock, the same machine's);
* the home's peak memory (VmHWM) and CPU time, the agents' CPU time (their
  own, and their steps'), and how busy the machine's cores were.

Every process it starts is stopped at the end, on Ctrl-C, on an error and
after ``--timeout`` seconds in all.

Targets (control path, acceptance point 6): at least 500 tests/s completed,
and send→ack p99 under 20 ms.
"""

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Final

import apsw
import attrs
from procstat import cpu_seconds, free_port, helpers_of, memory_kib

from mtpkt import pkts
from mtpkt.agents.homedir import HomeDir
from mtpkt.pkts import State
from mtpkt.pkts.control import Kill
from mtpkt.pkts.outcome import FINAL
from mtpkt.pkts.status import StatusChange
from mtpkt.tools.errors import CliError
from mtpkt.tools.reach import ask_home, home_address, load_key

TARGET: Final = "linux/x86"
RUNNAME: Final = "bench"
IDLE_RUN: Final = "probe-run"
"""The run the latency probes name: a small one that has ended, so a kill has nothing to do."""
TARGET_RATE: Final = 500.0
TARGET_P99: Final = 0.020
BUSY_GAP: Final = 0.05
"""Seconds between two latency probes while the run is dispatched."""


class BenchError(Exception):
    """The benchmark could not measure; the message says why."""


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


# -- the area ---------------------------------------------------------------------------------


def make_area(root: Path, tests: int, per_test: int, step: str = "true") -> list[str]:
    """Write an area of trivial tests with ``tests`` instances in all, each running the one
    command ``step``; the test names."""
    files = {
        "megatest.config": """
            [fields]
            OS TEXT
            ARCH TEXT

            [setup]
            linktree #{getenv MT_RUN_AREA_HOME}/links
        """,
        "runconfigs.config": """
            [default]
            BENCH yes
        """,
    }
    names = []
    for index, start in enumerate(range(0, tests, per_test)):
        count = min(per_test, tests - start)
        name = f"t{index:04d}"
        names.append(name)
        items = " ".join(f"{n:05d}" for n in range(count))
        files[f"tests/{name}/testconfig"] = f"\n[ezsteps]\nok {step}\n" + (
            f"\n[items]\nITEM {items}\n" if per_test > 1 else ""
        )
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return names


# -- the processes ----------------------------------------------------------------------------


@attrs.define
class Farm:
    """The home and agents of one area, started from the command line."""

    area: Path
    logs: Path
    processes: dict[str, "subprocess.Popen[bytes]"] = attrs.Factory(dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MT_RUN_AREA_HOME": str(self.area), "PYTHONUNBUFFERED": "1"}

    def start(self, name: str, *args: str) -> "subprocess.Popen[bytes]":
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "mtpkt.tools", *args],
                cwd=self.area,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this script only; it stops them in order
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, name: str, line: str, deadline: float) -> None:
        process = self.processes[name]
        while line not in self.log(name):
            if process.poll() is not None:
                tail = self.log(name).strip().splitlines()[-3:]
                raise BenchError(f"{name} exited with {process.returncode}: {' | '.join(tail)}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not ready in time (see {self.logs / name}.log)")
            time.sleep(0.05)

    def start_home(self, deadline: float, durable: bool) -> "subprocess.Popen[bytes]":
        listen = f"tcp://127.0.0.1:{free_port()}"
        publish = f"tcp://127.0.0.1:{free_port()}"
        flags = [] if durable else ["--not-durable"]
        home = self.start("home", "home", "--area", str(self.area), "--listen", listen,
                          "--publish", publish, *flags)  # fmt: skip
        self.wait_ready("home", "home ready", deadline)
        return home

    def start_agents(self, count: int, slots: int, deadline: float) -> None:
        names = [f"agent{index}" for index in range(count)]
        for name in names:
            self.start(name, "agent", "--area", str(self.area), "--name", name,
                       "--slots", str(slots))  # fmt: skip
        for name in names:
            self.wait_ready(name, f"agent {name} ready", deadline)

    def agent_pids(self) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name.startswith("agent")]

    def stop_all(self) -> None:
        """Agents first (SIGTERM: drain; they are idle by now), then the home; bounded."""
        agents = [p for name, p in self.processes.items() if name != "home"]
        home = [p for name, p in self.processes.items() if name == "home"]
        for group in (agents, home):
            for process in group:
                if process.poll() is None:
                    process.terminate()
            for process in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


# -- send→ack latency -------------------------------------------------------------------------


@attrs.define
class Probe:
    """Sends ``kill`` packets for a run that has ended and times each receipt."""

    key: bytes
    address: str
    test: str
    times: list[float] = attrs.Factory(list)
    failures: list[str] = attrs.Factory(list)

    def once(self) -> None:
        packet = Kill(target=TARGET, runname=IDLE_RUN, testpatt=self.test)
        began = time.perf_counter()
        try:
            ask_home(packet, self.key, self.address, 10.0, None)
        except CliError as exc:
            self.failures.append(str(exc))
            return
        self.times.append(time.perf_counter() - began)

    def many(self, count: int, gap: float = 0.0) -> None:
        for _ in range(count):
            self.once()
            time.sleep(gap)

    def summary(self) -> str:
        if not self.times:
            return f"no receipt ({len(self.failures)} failed: {self.failures[:1]})"
        p50, p99 = percentile(self.times, 0.5), percentile(self.times, 0.99)
        failed = f", {len(self.failures)} failed" if self.failures else ""
        return (
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(self.times) * 1000:.1f} ms"
            f" over {len(self.times)} packets{failed}"
        )


class Background:
    """Runs ``probe.once`` every ``gap`` seconds in a thread until stopped."""

    def __init__(self, probe: Probe, gap: float, limit: int) -> None:
        self._stop = threading.Event()
        self._probe, self._gap, self._limit = probe, gap, limit
        self._thread = threading.Thread(target=self._loop, name="probe", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._gap) and len(self._probe.times) < self._limit:
            self._probe.once()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


# -- the run's database -----------------------------------------------------------------------


def _readonly(path: Path) -> apsw.Connection:
    return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)


def _number(value: object) -> float:
    """A numeric column's value; a BenchError for anything else."""
    if isinstance(value, int | float):
        return float(value)
    raise BenchError(f"the run's database holds {value!r} where a number belongs")


def run_db(dbdir: Path, deadline: float) -> Path:
    """The run's database file, once main.db names the run."""
    while time.monotonic() < deadline:
        if (dbdir / "main.db").exists():
            main = _readonly(dbdir / "main.db")
            try:
                row = main.execute("SELECT id FROM runs WHERE runname = ?", (RUNNAME,)).fetchone()
            finally:
                main.close()
            if row is not None and (dbdir / f"{row[0]}.db").exists():
                return dbdir / f"{row[0]}.db"
        time.sleep(0.1)
    raise BenchError(f"run {RUNNAME} never appeared in {dbdir / 'main.db'}")


def wait_settled(path: Path, total: int, itemized: bool, deadline: float) -> None:
    """Poll the run's ``tests`` table (every 0.25 s, one reader) until every instance settled."""
    finals = ", ".join(f"'{state.value}'" for state in FINAL)
    where = "item_path != ''" if itemized else "1"
    sql = f"SELECT count(*) FROM tests WHERE {where} AND state IN ({finals})"
    db = _readonly(path)
    next_line = time.monotonic() + 5
    try:
        while True:
            row = db.execute(sql).fetchone()
            done = 0 if row is None else int(_number(row[0]))
            if done >= total:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"timed out: {done:,} of {total:,} instances settled")
            if time.monotonic() >= next_line:
                next_line += 5
                print(f"  … {done:,} of {total:,} settled", flush=True)
            time.sleep(0.25)
    finally:
        db.close()


@attrs.define
class Timeline:
    """When each instance was LAUNCHED, RUNNING and COMPLETED, from the run's history."""

    launched: dict[tuple[str, str], float] = attrs.Factory(dict)
    """Committed (``received``)."""
    running: dict[tuple[str, str], float] = attrs.Factory(dict)
    """Said by the agent (the packet's ``ts``)."""
    completed: dict[tuple[str, str], float] = attrs.Factory(dict)
    """Committed (``received``); the last one of each instance."""
    hosts: dict[str, int] = attrs.Factory(dict)
    """Instances per agent."""

    @classmethod
    def read(cls, path: Path) -> "Timeline":
        timeline = cls()
        db = _readonly(path)
        try:
            rows = db.execute(
                "SELECT received, packet FROM history WHERE kind = 'status_change' ORDER BY seq"
            ).fetchall()
            counts = db.execute("SELECT host, count(*) FROM tests GROUP BY host").fetchall()
        finally:
            db.close()
        for received, data in rows:
            if not isinstance(data, bytes):
                raise BenchError(f"the run's history holds {data!r} where a packet belongs")
            packet = pkts.unpack(data)
            assert isinstance(packet, StatusChange)
            key = (packet.test, packet.item)
            if packet.state is State.LAUNCHED:
                timeline.launched.setdefault(key, _number(received))
            elif packet.state is State.RUNNING:
                timeline.running.setdefault(key, packet.ts)
            elif packet.state is State.COMPLETED:
                timeline.completed[key] = _number(received)
        timeline.hosts = {str(host): int(_number(count)) for host, count in counts if host}
        return timeline


# -- the measurement --------------------------------------------------------------------------


@attrs.frozen
class Options:
    tests: int
    agents: int
    slots: int
    per_test: int
    acks: int
    timeout: float
    durable: bool
    step: str = "true"


@attrs.define
class Usage:
    """CPU and memory read from /proc around the run."""

    home_pid: int
    agent_pids: list[int]
    start: dict[str, float] = attrs.Factory(dict)
    guards: dict[int, list[int]] = attrs.Factory(dict)
    """Each agent's guard process (started with its first step): its CPU is the agent's."""

    def _agent(self, pid: int) -> float:
        if not self.guards.get(pid):
            self.guards[pid] = helpers_of(pid, "agents/host/guard.py")
        guards = 0.0
        for guard in self.guards[pid]:
            try:
                guards += cpu_seconds(guard)
            except OSError:  # it ended: its time is in the agent's children's now
                pass
        return cpu_seconds(pid) + guards

    def read(self) -> dict[str, float]:
        busy, total = machine_ticks()
        return {
            "home": cpu_seconds(self.home_pid),
            "agents": sum(self._agent(pid) for pid in self.agent_pids),
            "steps": sum(cpu_seconds(pid, children=True) for pid in self.agent_pids),
            "busy": busy,
            "total": total,
        }

    def begin(self) -> None:
        self.start = self.read()

    def since(self) -> dict[str, float]:
        now = self.read()
        return {name: now[name] - self.start[name] for name in now}


def send_run(farm: Farm, deadline: float, *extra: str, runname: str = RUNNAME) -> float:
    """``mtpkt send run`` as a subprocess; its wall time."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mtpkt.tools", "send", "run", "-t", TARGET, "-r", runname,
         "--timeout", "120", *extra],
        cwd=farm.area, env=farm.env, capture_output=True, text=True,
        timeout=max(1.0, deadline - time.monotonic()),
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"mtpkt send run failed ({done.returncode}): {done.stderr.strip()}")
    return time.monotonic() - began


def report(
    options: Options,
    timeline: Timeline,
    probes: tuple[Probe, Probe],
    usage: dict[str, float],
    memory: dict[str, int],
) -> bool:
    """Print the figures; whether both targets were met."""
    total = options.tests
    launched = sorted(timeline.launched.values())
    completed = sorted(t for k, t in timeline.completed.items() if k in timeline.launched)
    if len(launched) < total or len(completed) < total:
        raise BenchError(
            f"history holds {len(launched):,} LAUNCHED and {len(completed):,} COMPLETED"
            f" of {total:,} instances"
        )
    dispatch_span = launched[-1] - launched[0]
    run_span = completed[-1] - launched[0]
    dispatched = total / dispatch_span if dispatch_span > 0 else math.inf
    rate = total / run_span
    print(f"dispatched: {total:,} LAUNCHED in {dispatch_span:.2f} s: {dispatched:,.0f} tests/s")
    print(f"completed: {total:,} in {run_span:.2f} s from first LAUNCHED: {rate:,.0f} tests/s")
    to_running = [
        timeline.running[key] - launched_at
        for key, launched_at in timeline.launched.items()
        if key in timeline.running
    ]
    if to_running:
        print(
            f"LAUNCHED committed → RUNNING: p50 {percentile(to_running, 0.5) * 1000:.0f} ms,"
            f" p99 {percentile(to_running, 0.99) * 1000:.0f} ms ({len(to_running):,} instances)"
        )
    spread = sorted(timeline.hosts.values()) or [0]
    print(f"instances per agent: {spread[0]:,} to {spread[-1]:,}")
    idle, busy = probes
    print(f"send→ack, home idle: {idle.summary()}")
    print(f"send→ack, during the run: {busy.summary()}")
    cores = os.cpu_count() or 1
    load = usage["busy"] / usage["total"] * cores if usage["total"] else 0.0
    print(
        f"CPU while running: home {usage['home']:.1f} s, agents {usage['agents']:.1f} s"
        f" + their steps {usage['steps']:.1f} s; machine {load:.2f} of {cores} cores busy"
    )
    rss, peak = memory.get("VmRSS", 0) / 1024, memory.get("VmHWM", 0) / 1024
    print(f"home memory: {rss:.1f} MiB at the end, {peak:.1f} MiB peak")
    p99s = [percentile(p.times, 0.99) for p in probes if p.times]
    rate_met = rate >= TARGET_RATE
    ack_met = len(p99s) == 2 and max(p99s) < TARGET_P99 and not (idle.failures or busy.failures)
    print(f"target {TARGET_RATE:.0f}+ tests/s completed: {'met' if rate_met else 'NOT met'}")
    print(
        f"target send→ack p99 under {TARGET_P99 * 1000:.0f} ms (idle and during the run):"
        f" {'met' if ack_met else 'NOT met'}"
    )
    return rate_met and ack_met


def measure(options: Options, work: Path) -> bool:
    deadline = time.monotonic() + options.timeout
    area, logs = work / "area", work / "logs"
    logs.mkdir()
    names = make_area(area, options.tests, options.per_test, options.step)
    itemized = options.per_test > 1
    shape = (
        f"{len(names)} test(s) x {options.per_test:,} items" if itemized else f"{len(names)} tests"
    )
    print(
        f"{options.tests:,} instances ({shape}), one step `{options.step}` each;"
        f" {options.agents} agents x {options.slots} slots; home durable: {options.durable};"
        f" area {area}"
    )
    farm = Farm(area, logs)
    try:
        home = farm.start_home(deadline, options.durable)
        farm.start_agents(options.agents, options.slots, deadline)
        home_dir = HomeDir(area)
        key = load_key(home_dir, None)
        address = home_address(home_dir, None)
        # The probes kill a test of a small run that has ended: checked, journaled, done.
        send_run(farm, deadline, "--testpatt", names[0], "--wait", runname=IDLE_RUN)
        idle = Probe(key, address, names[0])
        idle.many(options.acks, gap=0.01)
        busy = Probe(key, address, names[0])
        usage = Usage(home.pid, farm.agent_pids())
        usage.begin()
        took = send_run(farm, deadline)
        print(f"mtpkt send run: receipt after {took:.2f} s (all instances NOT_STARTED by then)")
        background = Background(busy, BUSY_GAP, limit=max(options.acks, 1000))
        background.start()
        try:
            path = run_db(area / ".mtpkt" / "db", deadline)
            wait_settled(path, options.tests, itemized, deadline)
        finally:
            background.stop()
        spent = usage.since()
        memory = memory_kib(home.pid)
        return report(options, Timeline.read(path), (idle, busy), spent, memory)
    finally:
        farm.stop_all()


# -- the command ------------------------------------------------------------------------------


@contextmanager
def hard_timeout(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` (and SIGTERM at any time) unwinds like Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous: list[Callable[[int, FrameType | None], object] | int | None] = [
        signal.signal(signal.SIGALRM, interrupt),
        signal.signal(signal.SIGTERM, interrupt),
    ]
    signal.alarm(max(1, math.ceil(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000, help="test instances (10000)")
    parser.add_argument("--agents", type=int, default=8, help="mtpkt agent processes (8)")
    parser.add_argument("--slots", type=int, default=3, help="slots per agent (3)")
    parser.add_argument(
        "--items-per-test", type=int, default=100, help="items of each test; 1: no [items] (100)"
    )
    parser.add_argument("--acks", type=int, default=300, help="latency probes with the home idle")
    parser.add_argument(
        "--not-durable", action="store_true", help="home with synchronous=NORMAL (not the default)"
    )
    parser.add_argument(
        "--step",
        default="true",
        help="each test's one step (true); e.g. 'sleep 0.3' with 32 slots for a run that"
        " completes about 100 tests/s and leaves CPU free, for the latency under load",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--dir", type=Path, help=DIR_HELP)
    parser.add_argument("--timeout", type=float, default=900, help="seconds in all (900)")
    args = parser.parse_args()
    if min(args.tests, args.agents, args.slots, args.items_per_test, args.acks) < 1:
        parser.error("every count must be at least 1")
    options = Options(
        args.tests,
        args.agents,
        args.slots,
        args.items_per_test,
        args.acks,
        args.timeout,
        not args.not_durable,
        args.step,
    )
    return in_work_dir(
        "mtpkt-dispatch-",
        lambda work: measure(options, work),
        options.timeout,
        keep=args.keep,
        parent=args.dir,
    )


DIR_HELP: Final = (
    "where the temporary area and its run directories go (default: $TMPDIR or /tmp); each"
    " test makes its run directory and a few files there, so the file system's cost counts"
)


def in_work_dir(
    prefix: str,
    measure: Callable[[Path], bool],
    timeout: float,
    *,
    keep: bool,
    parent: Path | None = None,
) -> int:
    """``measure(work)`` in a new temporary directory (in ``parent``, else the system's),
    bounded by ``timeout`` (plus a minute to stop everything); the exit status. The
    directory goes unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    print(f"work directory: {work}")
    try:
        with hard_timeout(timeout + 60):
            return 0 if measure(work) else 1
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'SIGINT'}): every process stopped", file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"kept: {work} (logs in {work / 'logs'})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
