"""The test runner: real steps as real processes, logs on disk, and kills that leave nothing."""

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.agents.area.job import StepSpec, TestJob, TestRef
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.runner import Outcome, TestProcess
from mtpkt.pkts.status import StatusChange, StatusPacket, Step, TestIdentity
from tests.support.procs import processes_with, wait_until

REF = TestRef("ubuntu/x86_64", "nightly", "smoke", "a/1")
ENV = {"PATH": os.environ["PATH"]}
HOST = "node7"

State = pkts.State
Status = pkts.Status
START = pkts.StepState.START
END = pkts.StepState.END


# Helpers


def pgid_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2 :].split()[2])


def summary(packets: list[StatusPacket]) -> list[tuple[object, ...]]:
    """The packets as short tuples, to compare sequences at a glance."""
    rows: list[tuple[object, ...]] = []
    for packet in packets:
        match packet:
            case StatusChange(state=state, status=status):
                rows.append((state, status))
            case Step(step=name, state=state, status=status):
                rows.append((name, state, status))
            case _:
                rows.append((packet,))
    return rows


def ends(packets: list[StatusPacket]) -> dict[str, Step]:
    return {p.step: p for p in packets if isinstance(p, Step) and p.state is END}


def changes(packets: list[StatusPacket]) -> list[StatusChange]:
    return [p for p in packets if isinstance(p, StatusChange)]


def about_tests(packets: list[StatusPacket]) -> list[TestIdentity]:
    return [p for p in packets if isinstance(p, TestIdentity)]


class InThread:
    """Runs a :class:`TestProcess` in a thread of its own, as the host agent does."""

    def __init__(self, process: TestProcess) -> None:
        self.outcome: Outcome | None = None
        self._process = process
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.outcome = self._process.run()

    def join(self, timeout: float) -> Outcome:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"run() still running after {timeout}s"
        assert self.outcome is not None, "run() raised"
        return self.outcome


# Fixtures


@pytest.fixture
def packets() -> list[StatusPacket]:
    return []


@pytest.fixture
def reporter(packets: list[StatusPacket]) -> Reporter:
    return Reporter(HOST, packets.append)


@pytest.fixture
def token() -> Iterator[str]:
    """A unique duration for long sleeps, to find their processes by; none may outlive the test."""
    value = f"3001.{secrets.randbelow(10**9):09d}"
    yield value
    left = processes_with(value)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"


@pytest.fixture
def make_job(tmp_path: Path) -> Callable[..., TestJob]:
    def make(*steps: StepSpec, **changes: object) -> TestJob:
        fields: dict[str, object] = {
            "ref": REF,
            "rundir": tmp_path / "links" / "run",
            "source_dir": None,
            "steps": steps,
            "env": ENV,
        }
        fields.update(changes)
        return TestJob(**fields)  # type: ignore[arg-type]

    return make


# Steps that end by themselves


def test_passing_steps_report_in_order_with_logs_env_and_source(
    tmp_path: Path,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "area" / "tests" / "smoke"
    (source / "data").mkdir(parents=True)
    (source / "main.sh").write_text('echo "main sees $GREETING in $(basename "$PWD")"\n')
    (source / "data" / "input.txt").write_text("input data\n")
    monkeypatch.setenv("MTPKT_RUNNER_LEAK", "leaked")  # the runner's own env must not reach steps
    job = make_job(
        StepSpec("setup", "echo to-stdout; echo to-stderr >&2"),
        StepSpec("main", "bash ./main.sh"),
        StepSpec("check", 'cat data/input.txt; echo "leak=${MTPKT_RUNNER_LEAK-unset}"'),
        source_dir=source,
        env={**ENV, "GREETING": "hello"},
    )
    process = TestProcess(job, reporter, host=HOST)

    assert process.pgid is None
    assert process.run() == Outcome(State.COMPLETED, Status.PASS)

    assert summary(packets) == [
        (State.RUNNING, Status.NA),
        ("setup", START, Status.NA),
        ("setup", END, Status.PASS),
        ("main", START, Status.NA),
        ("main", END, Status.PASS),
        ("check", START, Status.NA),
        ("check", END, Status.PASS),
        (State.COMPLETED, Status.PASS),
    ]
    assert [p.seq for p in packets] == list(range(1, 9))
    assert {(p.target, p.runname, p.test, p.item, p.origin) for p in about_tests(packets)} == {
        ("ubuntu/x86_64", "nightly", "smoke", "a/1", HOST)
    }
    assert len(about_tests(packets)) == len(packets)
    assert all(change.host == HOST for change in changes(packets))
    for name, end in ends(packets).items():
        assert (end.exit_code, end.logfile) == (0, f"{name}.log")
        assert end.duration is not None
        assert 0 <= end.duration < 10
    rundir = job.rundir
    assert (rundir / "setup.log").read_text().splitlines() == ["to-stdout", "to-stderr"]
    assert (rundir / "main.log").read_text() == "main sees hello in run\n"
    assert (rundir / "check.log").read_text() == "input data\nleak=unset\n"
    assert (rundir / "data" / "input.txt").exists()
    assert process.pgid is None


def test_zero_steps_pass(
    packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    job = make_job()

    assert TestProcess(job, reporter).run() == Outcome(State.COMPLETED, Status.PASS)

    assert summary(packets) == [(State.RUNNING, Status.NA), (State.COMPLETED, Status.PASS)]
    assert job.rundir.is_dir()


def test_a_failing_step_stops_the_rest(
    packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """An ezstep that exits non-zero without logpro: COMPLETED/FAIL "Failed at step NAME" at
    once, and no further step (launch.scm:197-205, 259-262, steprun-good? :45-47)."""
    job = make_job(
        StepSpec("first", "echo first", ezstep=True),
        StepSpec("broken", "echo about to fail; exit 3", ezstep=True),
        StepSpec("never", "touch never-ran", ezstep=True),
    )

    outcome = TestProcess(job, reporter).run()

    assert (outcome.state, outcome.status) == (State.COMPLETED, Status.FAIL)
    assert outcome.comment == "Failed at step broken"
    assert summary(packets) == [
        (State.RUNNING, Status.NA),
        ("first", START, Status.NA),
        ("first", END, Status.PASS),
        (State.RUNNING, Status.PASS),
        ("broken", START, Status.NA),
        ("broken", END, Status.FAIL),
        (State.COMPLETED, Status.FAIL),
    ]
    assert ends(packets)["broken"].exit_code == 3
    assert changes(packets)[-1].comment == outcome.comment
    assert (job.rundir / "broken.log").read_text() == "about to fail\n"
    assert not (job.rundir / "never-ran").exists()
    assert not (job.rundir / "never.log").exists()


def test_a_missing_command_fails_with_127(
    packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    job = make_job(StepSpec("run", "no-such-command-for-mtpkt --help"))

    outcome = TestProcess(job, reporter).run()

    assert (outcome.state, outcome.status) == (State.COMPLETED, Status.FAIL)
    end = ends(packets)["run"]
    assert (end.status, end.exit_code) == (Status.FAIL, 127)
    assert "not found" in (job.rundir / "run.log").read_text()


def test_a_background_process_left_by_a_step_is_stopped(
    token: str,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    job = make_job(
        StepSpec("leaky", f"sleep {token} & echo $! > bg.pid; exit 0"),
        # Passes only if the leftover sleep is already gone when the next step starts.
        StepSpec("after", f"! grep -q {token} /proc/$(cat bg.pid)/cmdline 2>/dev/null"),
    )

    outcome = TestProcess(job, reporter, kill_grace=5.0).run()

    assert outcome == Outcome(State.COMPLETED, Status.PASS)
    assert [(e.status, e.exit_code) for e in ends(packets).values()] == [(Status.PASS, 0)] * 2
    assert processes_with(token) == []
    log = (job.rundir / "leaky.log").read_text()
    assert "left processes" in log
    assert "stopped with SIGTERM" in log


# Stopping steps


@pytest.mark.timeout(30)
def test_runtimelim_stops_the_step_and_its_grandchildren(
    token: str,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    job = make_job(
        StepSpec("quick", "true"),
        StepSpec("slow", f"sleep {token} & sleep {token} & wait"),
        StepSpec("never", "touch never-ran"),
        runtimelim=0.5,
    )
    started = time.monotonic()

    outcome = TestProcess(job, reporter, host=HOST, kill_grace=2.0).run()

    assert time.monotonic() - started < 0.5 + 2.0 + 3.0
    assert outcome == Outcome(State.KILLED, Status.KILLED, "runtimelim of 0.5s exceeded")
    assert summary(packets)[-3:] == [
        ("slow", START, Status.NA),
        ("slow", END, Status.KILLED),
        (State.KILLED, Status.KILLED),
    ]
    assert ends(packets)["slow"].exit_code is None  # bash died of SIGTERM
    assert changes(packets)[-1].comment == "runtimelim of 0.5s exceeded"
    assert changes(packets)[-1].host == HOST
    assert processes_with(token) == []
    assert not (job.rundir / "never-ran").exists()
    assert "runtimelim of 0.5s exceeded" in (job.rundir / "slow.log").read_text()


@pytest.mark.timeout(30)
def test_kill_from_another_thread_stops_even_what_ignores_sigterm(
    token: str,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = make_job(
        StepSpec("stubborn", f"sleep {token} & bash -c \"trap '' TERM; sleep {token}\" & wait"),
        StepSpec("never", "touch never-ran"),
    )
    process = TestProcess(job, reporter, host=HOST, kill_grace=30.0)
    running = InThread(process)
    # Both sleeps running means the trap is set: the second sleep starts after it.
    wait_until(lambda: len(processes_with(token, "sleep")) == 2)
    pgid = process.pgid
    assert pgid is not None
    assert pgid != os.getpgid(0)
    assert {pgid_of(pid) for pid in processes_with(token, "sleep")} == {pgid}
    started = time.monotonic()

    process.kill("operator said stop", grace=0.5)

    assert summary(packets)[-1] == (State.KILLREQ, Status.NA)  # reported by kill() itself
    assert changes(packets)[-1].comment == "operator said stop"
    outcome = running.join(timeout=10.0)
    assert time.monotonic() - started < 0.5 + 3.0
    assert outcome == Outcome(State.KILLED, Status.KILLED, "operator said stop")
    assert summary(packets)[-4:] == [
        ("stubborn", START, Status.NA),
        (State.KILLREQ, Status.NA),
        ("stubborn", END, Status.KILLED),
        (State.KILLED, Status.KILLED),
    ]
    assert ends(packets)["stubborn"].exit_code is None
    assert changes(packets)[-1].comment == "operator said stop"
    assert processes_with(token) == []
    assert process.pgid is None
    assert "SIGKILL" in (job.rundir / "stubborn.log").read_text()
    assert any("SIGKILL" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert not (job.rundir / "never-ran").exists()

    count = len(packets)
    process.kill("too late")  # after the end: nothing happens
    assert len(packets) == count


def test_kill_before_run_starts_nothing(
    packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    job = make_job(StepSpec("never", "touch never-ran"))
    process = TestProcess(job, reporter, host=HOST)

    process.kill("not tonight")
    process.kill("again")  # only the first kill reports
    outcome = process.run()

    assert outcome == Outcome(State.KILLED, Status.KILLED, "not tonight")
    assert summary(packets) == [(State.KILLREQ, Status.NA), (State.KILLED, Status.KILLED)]
    assert [c.comment for c in changes(packets)] == ["not tonight"] * 2
    assert not job.rundir.exists()
    with pytest.raises(RuntimeError, match="once"):
        process.run()


# Bad input and broken directories


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".", "..", "nul\0byte"])
def test_an_unsafe_step_name_fails_without_writing_outside_rundir(
    name: str,
    tmp_path: Path,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    job = make_job(StepSpec(name, "echo ran > ran.txt"), StepSpec("never", "true"))
    job.rundir.mkdir(parents=True)
    before = set(tmp_path.rglob("*"))

    outcome = TestProcess(job, reporter).run()

    assert (outcome.state, outcome.status) == (State.COMPLETED, Status.FAIL)
    assert repr(name) in outcome.comment
    assert "safe file name" in outcome.comment
    assert "\n" not in outcome.comment
    end = ends(packets)[name]
    assert (end.status, end.exit_code, end.logfile) == (Status.FAIL, None, "")
    assert "never" not in ends(packets)
    env_files = {job.rundir / "megatest.sh", job.rundir / "megatest.csh"}
    assert set(tmp_path.rglob("*")) == before | env_files  # no log anywhere, the step never ran


def test_a_log_symlink_from_the_source_is_not_followed(
    tmp_path: Path,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "step.log").symlink_to(outside)
    job = make_job(StepSpec("step", "echo overwritten"), source_dir=source)

    outcome = TestProcess(job, reporter).run()

    assert (outcome.state, outcome.status) == (State.COMPLETED, Status.FAIL)
    assert "step.log" in outcome.comment
    assert ends(packets)["step"].status is Status.FAIL
    assert outside.read_text() == "keep me\n"


def test_megatest_sh_and_csh_hold_the_environment_before_the_first_step(
    tmp_path: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """launch.scm:719-723 writes megatest.sh/.csh into the run directory before the steps
    (common.scm:1747-1789 for their lines); a link of that name copied in from the test's
    source is replaced, never written through."""
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "megatest.sh").symlink_to(outside)
    env = {**ENV, "GREETING": "hello world", "PROMPT": "$ "}
    job = make_job(
        StepSpec("first", 'cat megatest.sh; source ./megatest.sh; echo "$GREETING"'),
        source_dir=source,
        env=env,
        blacklistvars=("PROMPT",),
    )

    assert TestProcess(job, reporter).run() == Outcome(State.COMPLETED, Status.PASS)

    sh = f'export PATH={ENV["PATH"]}\nexport GREETING="hello world"\n# export PROMPT="$ "\n'
    assert (job.rundir / "megatest.sh").read_text() == sh
    assert not (job.rundir / "megatest.sh").is_symlink()
    assert outside.read_text() == "keep me\n"
    assert (job.rundir / "megatest.csh").read_text() == (
        f'setenv PATH {ENV["PATH"]}\nsetenv GREETING "hello world"\n# setenv PROMPT "$ "\n'
    )
    assert (job.rundir / "first.log").read_text() == sh + "hello world\n"


@pytest.mark.parametrize("ezstep", [True, False])
def test_only_an_ezstep_finds_scripts_through_dot_on_path(
    ezstep: bool, tmp_path: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """launch.scm:134-135: an ezstep runs with "." last on PATH, so `hello hello.sh` runs
    the test's own script; megatest.sh (written before) and a runscript do not get it."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "hello.sh").write_text('#!/bin/bash\necho "hello, PATH=$PATH"\n')
    (source / "hello.sh").chmod(0o755)
    job = make_job(StepSpec("hello", "hello.sh", ezstep=ezstep), source_dir=source)

    outcome = TestProcess(job, reporter).run()

    log = (job.rundir / "hello.log").read_text()
    if ezstep:
        assert outcome == Outcome(State.COMPLETED, Status.PASS)
        assert log == f"hello, PATH={ENV['PATH']}:.\n"
    else:
        assert (outcome.state, outcome.status) == (State.COMPLETED, Status.FAIL)
        assert "hello.sh: command not found" in log
    assert f"export PATH={ENV['PATH']}\n" in (job.rundir / "megatest.sh").read_text()


@pytest.mark.parametrize("broken", ["rundir under a file", "missing source"])
def test_an_impossible_rundir_is_incomplete(
    broken: str,
    tmp_path: Path,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    (tmp_path / "a-file").write_text("")
    if broken == "rundir under a file":  # works as root too, unlike a read-only directory
        job = make_job(StepSpec("never", "true"), rundir=tmp_path / "a-file" / "run")
    else:
        job = make_job(StepSpec("never", "true"), source_dir=tmp_path / "no-such-test")

    outcome = TestProcess(job, reporter, host=HOST).run()

    assert (outcome.state, outcome.status) == (State.INCOMPLETE, Status.ABORT)
    assert str(job.rundir) in outcome.comment
    assert "\n" not in outcome.comment
    assert summary(packets) == [(State.INCOMPLETE, Status.ABORT)]
    assert changes(packets)[0].comment == outcome.comment


# The runner dying


RUNNER_SCRIPT = """
import os
from pathlib import Path
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.area.job import StepSpec, TestJob
from mtpkt.agents.host.runner import TestProcess

job = TestJob(
    ref=TestRef("t", "r", "x"),
    rundir=Path(os.environ["RUNDIR"]),
    source_dir=None,
    steps=(StepSpec("s", os.environ["STEP"]),),
    env={"PATH": os.environ["PATH"]},
)
TestProcess(job, Reporter("o", lambda packet: None)).run()
"""


@pytest.mark.parametrize(
    ("step", "sleeps"),
    [("exec sleep {token}", 1), ("sleep {token} & sleep {token}; wait", 2)],
    ids=["the step", "its children"],
)
@pytest.mark.timeout(30)
def test_a_step_dies_with_its_runner(token: str, tmp_path: Path, step: str, sleeps: int) -> None:
    env = {
        **os.environ,
        "RUNDIR": str(tmp_path / "run"),
        "STEP": step.format(token=token),
    }
    runner = subprocess.Popen([sys.executable, "-c", RUNNER_SCRIPT], env=env)
    try:
        wait_until(lambda: len(processes_with(token, "sleep")) == sleeps, timeout=15.0)
    finally:
        runner.kill()
        runner.wait(timeout=10.0)

    wait_until(lambda: not processes_with(token), timeout=5.0)
