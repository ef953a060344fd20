"""The control path end to end: ``mtpkt home``, two ``mtpkt agent``s and ``mtpkt send``.

Every process is a real subprocess started from the command line, on loopback.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from procs import processes_with, wait_for

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


def _readonly(path: Path) -> apsw.Connection:
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
                [sys.executable, "-m", "tools", *args],
                cwd=self.area,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def start_home(self) -> None:
        self.start("home", "home", "--area", str(self.area))
        assert wait_for(lambda: "home ready" in self.log("home"), 30), self.log("home")

    def start_agent(self, name: str, slots: int = 2) -> None:
        self.start(
            name, "agent", "--area", str(self.area), "--name", name, "--slots", str(slots),
            "--kill-grace", "1",
        )  # fmt: skip

    def send(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools", "send", *args],
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
        for name in list(self.processes):
            if name != "home":
                self.stop(name, signal.SIGINT)
                self.stop(name, signal.SIGINT)
        if "home" in self.processes:
            self.stop("home")

    def tests(self, runname: str) -> dict[tuple[str, str], tuple[str, str, str]]:
        """(test, item) → (state, status, host), read from the run's database."""
        main = apsw.Connection(
            str(self.area / ".mtpkt/db/main.db"), flags=apsw.SQLITE_OPEN_READONLY
        )
        try:
            row = main.execute("SELECT id FROM runs WHERE runname = ?", (runname,)).fetchone()
        finally:
            main.close()
        if row is None:
            return {}
        db = _readonly(self.area / f".mtpkt/db/{row[0]}.db")
        try:
            rows = db.execute("SELECT testname, item_path, state, status, host FROM tests")
            return {(t, i): (s, st, h) for t, i, s, st, h in rows}
        finally:
            db.close()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    logs = tmp_path / "logs"
    logs.mkdir()
    farm = Farm(make_area(tmp_path / "area"), logs)
    try:
        yield farm
    finally:
        farm.stop_all()
        for pid in processes_with("3011.5"):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(180)
def test_a_run_over_two_agents_then_a_kill_and_bad_requests(farm: Farm) -> None:
    farm.start_home()
    assert (farm.area / ".mtpkt/secret").stat().st_mode & 0o777 == 0o600
    farm.start_agent("alpha")
    farm.start_agent("beta")

    # (1) a run with items, waiton in both modes and a failing step, spread over both agents
    done = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "%,~sleeper", "--wait")
    assert done.returncode != 0, done  # broken FAILs, so --wait reports failure
    assert len(bytes.fromhex(done.stdout.split()[0])) == 16, done.stdout
    tests = farm.tests("nightly")
    expected = {
        ("build", ""): ("COMPLETED", "PASS"),
        ("unit", "1"): ("COMPLETED", "PASS"),
        ("unit", "2"): ("COMPLETED", "PASS"),
        ("unit", "3"): ("COMPLETED", "PASS"),
        ("unit", ""): ("COMPLETED", "PASS"),
        ("broken", ""): ("COMPLETED", "FAIL"),
        ("after_broken", ""): ("COMPLETED", "PREQ_FAIL"),
        ("report", ""): ("COMPLETED", "PASS"),
    }
    assert {key: value[:2] for key, value in tests.items()} == expected
    hosts = {host for key, (_, _, host) in tests.items() if key != ("after_broken", "")}
    assert {"alpha", "beta"} <= hosts, tests
    assert not list((farm.area / "links").glob("**/ran.txt"))  # after_broken never ran

    # (2) kill the long sleeper: KILLED within 5 s, no process of it left
    started = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "sleeper")
    assert started.returncode == 0, started
    assert wait_for(lambda: farm.tests("nightly")[("sleeper", "")][0] == "RUNNING", 30)
    assert wait_for(lambda: len(processes_with("3011.5")) >= 2, 10)
    began = time.monotonic()
    # One of its processes ignores SIGTERM: it goes at SIGKILL, after the 2 s grace.
    killed = farm.send(
        "kill", "-t", TARGET, "-r", "nightly", "--testpatt", "sleeper", "--grace", "2"
    )
    assert killed.returncode == 0, killed
    assert wait_for(lambda: farm.tests("nightly")[("sleeper", "")][0] == "KILLED", 5), farm.tests(
        "nightly"
    )
    assert time.monotonic() - began < 5
    assert wait_for(lambda: not processes_with("3011.5"), 5), processes_with("3011.5")

    # (5) bad requests: a clear error, nothing run, the home keeps serving
    unknown = farm.send("run", "-t", TARGET, "-r", "other", "--testpatt", "nosuch")
    assert unknown.returncode != 0, unknown
    assert "nosuch" in unknown.stderr, unknown
    wrong_target = farm.send("run", "-t", "linux", "-r", "other")
    assert wrong_target.returncode != 0, wrong_target
    assert "linux" in wrong_target.stderr, wrong_target
    (farm.area / "other.key").write_bytes(b"k" * 32)
    (farm.area / "other.key").chmod(0o600)
    forged = farm.send("run", "-t", TARGET, "-r", "other", "--key-file", "other.key")
    assert forged.returncode != 0, forged
    assert "other" not in {runname for runname in _runnames(farm)}
    assert farm.processes["home"].poll() is None
    again = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "build", "--wait")
    assert again.returncode == 0, again  # build is PASS already: nothing to rerun


def _runnames(farm: Farm) -> list[str]:
    main = _readonly(farm.area / ".mtpkt/db/main.db")
    try:
        return [str(row[0]) for row in main.execute("SELECT runname FROM runs")]
    finally:
        main.close()
