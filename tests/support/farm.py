"""A farm for end-to-end tests: an area, its home and agents, all started from the CLI."""

import contextlib
import os
import signal
import subprocess
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from mtpkt.pkts.status import StatusPacket
from tests.support.cli import run_mtpkt, start_mtpkt
from tests.support.dbs import Value, rows, status_packet
from tests.support.procs import processes_with, wait_for

__all__ = [
    "FILES",
    "SLEEP",
    "TARGET",
    "Farm",
    "journal",
    "make_area",
    "running_farm",
    "send_and_finish",
    "write_area",
]

TARGET = "linux/x86"
SLEEP = f"3011.{os.getpid():07d}"
"""How the sleeper test's processes are found in /proc: this run's own, even while another
run of the suite (and its clean-up of what it left) goes on beside it."""

FILES = {
    "megatest.config": """
        [fields]
        OS TEXT
        ARCH TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/links
        max_concurrent_jobs 4
    """,
    "runconfigs.config": """
        [default]
        GREETING hello
    """,
    "tests/build/testconfig": """
        [ezsteps]
        compile echo compiling $MT_TEST_NAME
        link    echo linked

        [requirements]
        priority 5
    """,
    "tests/unit/testconfig": """
        [ezsteps]
        check echo "$GREETING A=$A" > out.txt; sleep 0.2

        [requirements]
        waiton build

        [items]
        A 1 2 3
    """,
    "tests/broken/testconfig": """
        [ezsteps]
        first  echo fine
        second echo about to fail; exit 3
    """,
    "tests/after_broken/testconfig": """
        [ezsteps]
        never touch ran.txt

        [requirements]
        waiton broken
    """,
    "tests/report/testconfig": """
        [ezsteps]
        summary echo report

        [requirements]
        waiton broken
        mode toplevel
    """,
    "tests/sleeper/testconfig": f"""
        [ezsteps]
        nap bash -c 'trap "" TERM; sleep {SLEEP}' & sleep {SLEEP} & wait
    """,
}


def write_area(root: Path, files: Mapping[str, str]) -> Path:
    """An area's ``files`` (path under ``root`` → text, indented as in the test that holds
    it) written under ``root``; ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def make_area(root: Path) -> Path:
    """The farm's area (:data:`FILES`) written under ``root``; ``root``."""
    return write_area(root, FILES)


class Farm:
    """A home and agents of one area, started from the CLI; every process stopped at the end."""

    def __init__(self, area: Path, logs: Path) -> None:
        self.area = area
        self.logs = logs
        self.env = {**os.environ, "MT_RUN_AREA_HOME": str(area), "PYTHONUNBUFFERED": "1"}
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.dbdir = area / ".mtpkt" / "db"
        """Where the home's databases are (``[setup] dbdir`` may put them elsewhere)."""

    def start(self, name: str, *args: str) -> "subprocess.Popen[str]":
        """``mtpkt ARGS…`` started in the area, its output in the log ``name``."""
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            process = start_mtpkt(
                *args, cwd=self.area, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def start_home(self, *args: str, name: str = "home") -> None:
        self.start(name, "home", "--area", str(self.area), *args)
        assert wait_for(lambda: "home ready" in self.log(name), 30), self.log(name)

    def start_agent(self, name: str, slots: int = 2, *, extra: Sequence[str] = ()) -> None:
        self.start(
            name, "agent", "--area", str(self.area), "--name", name, "--slots", str(slots),
            "--kill-grace", "1", *extra,
        )  # fmt: skip

    def send(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.command("send", *args, timeout=timeout)

    def command(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``mtpkt ARGS…`` in the area, run to its end."""
        return run_mtpkt(*args, cwd=self.area, env=self.env, timeout=timeout)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def stop_all(self) -> None:
        """Agents first (two signals: drain, then stop), then the homes."""
        for name in list(self.processes):
            if not name.startswith("home"):
                self.stop(name, signal.SIGINT)
                self.stop(name, signal.SIGINT)
        for name in list(self.processes):
            if name.startswith("home"):
                self.stop(name)

    def main_query(self, sql: str, params: Sequence[Value] = ()) -> list[tuple[object, ...]]:
        """Rows of a query on the home's ``main.db``."""
        return rows(self.dbdir / "main.db", sql, params)

    def journal_ids(self) -> list[bytes]:
        """The ids of the control packets in the home's journal, in its order."""
        found = []
        for (packet_id,) in self.main_query("SELECT id FROM journal"):
            assert isinstance(packet_id, bytes), packet_id
            found.append(packet_id)
        return found

    def run_db(self, runname: str) -> Path | None:
        """The run's database, if the run exists."""
        found = self.main_query("SELECT id FROM runs WHERE runname = ?", (runname,))
        return self.dbdir / f"{found[0][0]}.db" if found else None

    def query(self, runname: str, sql: str) -> list[tuple[object, ...]]:
        """Rows of a query on the run's database (none if the run does not exist)."""
        path = self.run_db(runname)
        return [] if path is None else rows(path, sql)

    def history(self, runname: str, where: str = "1") -> list[tuple[int, StatusPacket]]:
        """The run's committed status packets (those ``where`` picks), by stream seq."""
        found = []
        sql = f"SELECT seq, packet FROM history WHERE {where} ORDER BY seq"
        for seq, data in self.query(runname, sql):
            assert isinstance(seq, int), seq
            found.append((seq, status_packet(data)))
        return found

    def tests(self, runname: str) -> dict[tuple[str, str], tuple[str, str, str]]:
        """(test, item) → (state, status, host), read from the run's database."""
        rows = self.query(runname, "SELECT testname, item_path, state, status, host FROM tests")
        return {(str(t), str(i)): (str(s), str(st), str(h)) for t, i, s, st, h in rows}


@contextlib.contextmanager
def running_farm(
    root: Path, sleepers: Sequence[str] = (SLEEP,), *, files: Mapping[str, str] | None = None
) -> Iterator[Farm]:
    """A farm of a new area under ``root`` (the farm's :data:`FILES`, or ``files``); at the
    end every process it started is stopped, and what is left of steps whose command line
    holds one of ``sleepers`` (their own sleeps, which outlive an agent killed under them)
    is killed."""
    logs = root / "logs"
    logs.mkdir()
    farm = Farm(write_area(root / "area", FILES if files is None else files), logs)
    try:
        yield farm
    finally:
        farm.stop_all()
        for pid in [pid for token in sleepers for pid in processes_with(token)]:
            os.kill(pid, signal.SIGKILL)


def journal(farm: Farm, packet_id: str) -> tuple[str, str]:
    """(state, reason) of a control packet in the home's journal; empty if not there."""
    found = farm.main_query(
        "SELECT state, reason FROM journal WHERE id = ?", (bytes.fromhex(packet_id),)
    )
    return (str(found[0][0]), str(found[0][1])) if found else ("", "")


def send_and_finish(farm: Farm, *args: str) -> str:
    """Send a clean or archive packet and wait until the home has journaled it done."""
    sent = farm.send(*args)
    assert sent.returncode == 0, sent
    packet_id = sent.stdout.split()[0]
    assert wait_for(lambda: journal(farm, packet_id)[0] == "done", 30), journal(farm, packet_id)
    return journal(farm, packet_id)[1]
