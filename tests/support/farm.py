"""A farm for end-to-end tests: an area, its home and agents, all started from the CLI."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import apsw

from tests.support.procs import processes_with, wait_for

TARGET = "linux/x86"

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
    "tests/sleeper/testconfig": """
        [ezsteps]
        nap bash -c 'trap "" TERM; sleep 3011.5' & sleep 3011.5 & wait
    """,
}


def make_area(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def readonly(path: Path) -> apsw.Connection:
    return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)


class Farm:
    """A home and agents of one area, started from the CLI; every process stopped at the end."""

    def __init__(self, area: Path, logs: Path) -> None:
        self.area = area
        self.logs = logs
        self.env = {**os.environ, "MT_RUN_AREA_HOME": str(area), "PYTHONUNBUFFERED": "1"}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "mtpkt.tools", *args],
                cwd=self.area,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
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
        return subprocess.run(
            [sys.executable, "-m", "mtpkt.tools", *args],
            cwd=self.area,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

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

    def run_db(self, runname: str) -> Path | None:
        """The run's database, if the run exists."""
        main = readonly(self.area / ".mtpkt/db/main.db")
        try:
            row = main.execute("SELECT id FROM runs WHERE runname = ?", (runname,)).fetchone()
        finally:
            main.close()
        return None if row is None else self.area / f".mtpkt/db/{row[0]}.db"

    def query(self, runname: str, sql: str) -> list[tuple[object, ...]]:
        """Rows of a query on the run's database (none if the run does not exist)."""
        path = self.run_db(runname)
        if path is None:
            return []
        db = readonly(path)
        try:
            return [tuple(row) for row in db.execute(sql)]
        finally:
            db.close()

    def tests(self, runname: str) -> dict[tuple[str, str], tuple[str, str, str]]:
        """(test, item) → (state, status, host), read from the run's database."""
        rows = self.query(runname, "SELECT testname, item_path, state, status, host FROM tests")
        return {(str(t), str(i)): (str(s), str(st), str(h)) for t, i, s, st, h in rows}


@contextlib.contextmanager
def running_farm(root: Path, sleepers: Sequence[str] = ("3011.5",)) -> Iterator[Farm]:
    """A farm of a new area under ``root``; at the end every process it started is
    stopped, and what is left of steps whose command line holds one of ``sleepers``
    (their own sleeps, which outlive an agent killed under them) is killed."""
    logs = root / "logs"
    logs.mkdir()
    farm = Farm(make_area(root / "area"), logs)
    try:
        yield farm
    finally:
        farm.stop_all()
        for pid in [pid for token in sleepers for pid in processes_with(token)]:
            os.kill(pid, signal.SIGKILL)


def journal(farm: Farm, packet_id: str) -> tuple[str, str]:
    db = readonly(farm.area / ".mtpkt/db/main.db")
    try:
        row = db.execute(
            "SELECT state, reason FROM journal WHERE id = ?", (bytes.fromhex(packet_id),)
        ).fetchone()
    finally:
        db.close()
    return ("", "") if row is None else (str(row[0]), str(row[1]))


def send_and_finish(farm: Farm, *args: str) -> str:
    """Send a clean or archive packet and wait until the home has journaled it done."""
    sent = farm.send(*args)
    assert sent.returncode == 0, sent
    packet_id = sent.stdout.split()[0]
    assert wait_for(lambda: journal(farm, packet_id)[0] == "done", 30), journal(farm, packet_id)
    return journal(farm, packet_id)[1]
