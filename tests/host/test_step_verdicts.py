"""Steps judged as launch.scm judges them: logpro in ezsteps, runscript exit codes, statuses set
from inside the test, and waivers. Real steps, real rule files, real run directories."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from mtpkt import pkts
from mtpkt.agents.area.job import InlineLogpro, StepSpec, TestJob, TestRef, Waiver
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.runner import Outcome, TestProcess
from mtpkt.agents.host.waivers import Previous
from mtpkt.pkts.status import StatusChange, StatusPacket, Step, TestData
from tests.support.procs import wait_until

State = pkts.State
Status = pkts.Status
START, END = pkts.StepState.START, pkts.StepState.END
REF = TestRef("ubuntu/x86_64", "nightly", "judged")

KIND_OF_CODE = {1: "error", 2: "warning", 3: "check", 4: "waive", 5: "abort", 6: "skip"}


def rule(kind: str, word: str = "BAD") -> str:
    return f'(expect:{kind} in "LogFileBody" = 0 "no {word}" #/{word}/)\n'


def summary(packets: list[StatusPacket]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for packet in packets:
        match packet:
            case StatusChange(state=state, status=status, comment=comment):
                rows.append((state, status, comment))
            case Step(step=name, state=state, status=status):
                rows.append((name, state, status))
            case TestData(variable=variable):
                rows.append(("data", variable))
    return rows


@pytest.fixture
def packets() -> list[StatusPacket]:
    return []


@pytest.fixture
def reporter(packets: list[StatusPacket]) -> Reporter:
    return Reporter("node1", packets.append)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "area" / "tests" / "judged"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def make_job(tmp_path: Path, source: Path) -> Callable[..., TestJob]:
    """A job of ``steps`` in a run directory of its own, the test's directory ``source``."""
    rundir = tmp_path / "runs" / "judged"
    base = TestJob(
        ref=REF, rundir=rundir, source_dir=source, steps=(), env={"PATH": "/usr/bin:/bin"}
    )

    def make(*steps: StepSpec, **changes: Any) -> TestJob:
        return attrs.evolve(base, steps=steps, **changes)

    return make


def ez(name: str, command: str, logpro: InlineLogpro | None = None) -> StepSpec:
    return StepSpec(name, command, ezstep=True, logpro=logpro)


# logpro in ezsteps


@pytest.mark.parametrize("code", range(7))
def test_each_logpro_code_is_the_steps_and_the_tests_status(
    code: int,
    source: Path,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    """launch.scm:197-265: the step's status is logpro's code, whatever the step's exit."""
    (source / "look.logpro").write_text(rule(KIND_OF_CODE[code]) if code else rule("error", "NO"))
    expected, comment = {
        0: (Status.PASS, ""),
        1: (Status.FAIL, "Failed at step look"),
        2: (Status.WARN, "Logpro warning found"),
        3: (Status.CHECK, "Logpro check found"),
        4: (Status.WAIVED, ""),
        5: (Status.ABORT, "Logpro abort found"),
        6: (Status.SKIP, "Logpro skip found"),
    }[code]

    outcome = TestProcess(make_job(ez("look", "echo fine; echo BAD")), reporter).run()

    assert outcome == Outcome(State.COMPLETED, expected, comment)
    (end,) = [p for p in packets if isinstance(p, Step) and p.state is END]
    assert (end.status, end.exit_code) == (expected, 0)
    assert end.comment == "PASS" if code == 0 else end.comment.startswith(f"{expected}: no ")
    final = [p for p in packets if isinstance(p, StatusChange)][-1]
    assert final.logfile == "look.html"
    rundir = make_job().rundir
    assert (rundir / "look.html").exists()
    assert f"exit-code {code}" in (rundir / "look.dat").read_text()


def test_a_warning_step_then_a_passing_step_ends_warn(
    source: Path, packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    (source / "first.logpro").write_text(rule("warning", "WARNING"))
    job = make_job(ez("first", "echo WARNING: odd"), ez("second", "echo ok"))

    outcome = TestProcess(job, reporter).run()

    assert outcome == Outcome(State.COMPLETED, Status.WARN, "Logpro warning found")
    assert summary(packets) == [
        (State.RUNNING, Status.NA, ""),
        ("first", START, Status.NA),
        ("first", END, Status.WARN),
        ("data", "final"),
        (State.RUNNING, Status.WARN, "Logpro warning found"),
        ("second", START, Status.NA),
        ("second", END, Status.PASS),
        (State.COMPLETED, Status.WARN, "Logpro warning found"),
    ]


def test_a_check_stops_the_steps_and_the_test_ends_check(
    source: Path, packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """Code 3 is not steprun-good? (launch.scm:45-47): the loop stops with the test RUNNING,
    and the end rule makes it COMPLETED/CHECK (launch.scm:778-794)."""
    (source / "first.logpro").write_text(rule("check"))
    job = make_job(ez("first", "echo BAD"), ez("never", "touch never-ran"))

    outcome = TestProcess(job, reporter).run()

    assert outcome == Outcome(State.COMPLETED, Status.CHECK, "Logpro check found")
    changes = [(s, st, c) for s, st, c in summary(packets)[-2:]]
    assert changes == [
        (State.RUNNING, Status.CHECK, "Logpro check found"),
        (State.COMPLETED, Status.CHECK, "Logpro check found"),
    ]
    assert not (job.rundir / "never-ran").exists()


def test_a_step_that_fails_with_a_passing_logpro_passes(
    source: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """The code logpro gives replaces the step's exit code (launch.scm:176-205)."""
    (source / "odd.logpro").write_text(rule("error"))
    job = make_job(ez("odd", "echo fine; exit 1"), ez("next", "true"))

    assert TestProcess(job, reporter).run() == Outcome(State.COMPLETED, Status.PASS)


def test_inline_logpro_rules_are_written_to_the_step_logpro_and_applied(
    tmp_path: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """launch.scm:100-114: a [logpro] entry is written to <step>.logpro when there is none."""
    text = ';;\n(expect:required in "LogFileBody" > 0 "never" #/never-printed/)'
    inline = InlineLogpro(text, str(tmp_path / "testconfig"), 12)
    job = make_job(ez("look", "ls /", inline))

    outcome = TestProcess(job, reporter).run()

    assert outcome == Outcome(State.COMPLETED, Status.FAIL, "Failed at step look")
    written = (job.rundir / "look.logpro").read_text()
    assert written.startswith(";; logpro file extracted from testconfig\n")
    assert text in written


def test_a_step_logpro_in_the_test_directory_wins_over_inline_rules(
    tmp_path: Path, source: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    (source / "look.logpro").write_text(rule("error", "NOT-THERE"))
    inline = InlineLogpro(rule("required", "NOT-THERE"), str(tmp_path / "testconfig"), 3)

    outcome = TestProcess(make_job(ez("look", "echo hi", inline)), reporter).run()

    assert outcome == Outcome(State.COMPLETED, Status.PASS)


def test_bad_inline_rules_fail_the_step_naming_the_testconfig_line(
    tmp_path: Path,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    inline = InlineLogpro("(expect:fail in)", str(tmp_path / "testconfig"), 12)

    outcome = TestProcess(make_job(ez("look", "true", inline)), reporter).run()

    assert outcome == Outcome(State.COMPLETED, Status.FAIL, "Failed at step look")
    (end,) = [p for p in packets if isinstance(p, Step) and p.state is END]
    assert end.status is Status.FAIL
    assert f"{tmp_path / 'testconfig'}:12:" in end.comment
    assert "\n" not in end.comment


def test_dat_values_become_test_data_and_the_steps_comment(
    source: Path, packets: list[StatusPacket], reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """db.scm:3319-3357 maps each .dat section to a row; launch.scm:62-79 makes the comment."""
    (source / "measure.logpro").write_text(
        '(expect:value in "LogFileBody" 1.9 0.1 "Output voltage" #/volts: (\\S+)/)\n'
        + rule("error")
    )

    outcome = TestProcess(make_job(ez("measure", "echo volts: 2.5")), reporter).run()

    assert outcome == Outcome(State.COMPLETED, Status.FAIL, "Failed at step measure")
    rows = [p for p in packets if isinstance(p, TestData)]
    assert [(r.category, r.variable) for r in rows] == [("measure", "rule-1"), ("measure", "final")]
    value, final = rows
    assert (value.value, value.expected, value.tol, value.units) == ("2.5", "1.9", "0.1", "n/a")
    assert (value.comment, value.status, value.type) == ("Output voltage", "FAIL", "1.9")
    assert (final.value, final.expected, final.tol, final.status, final.type) == (
        "1", "0", "0", "FAIL", "logpro",
    )  # fmt: skip
    (end,) = [p for p in packets if isinstance(p, Step) and p.state is END]
    assert end.comment.startswith("FAIL: ")


# Runscripts


@pytest.mark.parametrize(
    ("code", "status"),
    [
        *[(0, Status.PASS), (1, Status.FAIL), (2, Status.WARN), (3, Status.CHECK)],
        *[(4, Status.WAIVED), (5, Status.ABORT), (6, Status.SKIP), (9, Status.FAIL)],
    ],
)
def test_a_runscripts_exit_code_gives_the_tests_status(
    code: int,
    status: Status,
    packets: list[StatusPacket],
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    """launch.scm:279-289 (the exit code is the rollup) and :785-797 (its status)."""
    outcome = TestProcess(make_job(StepSpec("main.sh", f"exit {code}")), reporter).run()

    assert (outcome.state, outcome.status) == (State.COMPLETED, status)
    assert [(s, st) for s, st, _ in summary(packets) if isinstance(s, State)] == [
        (State.RUNNING, Status.NA),
        (State.COMPLETED, status),
    ]


# Statuses set from inside the test


def test_a_final_state_the_test_sets_itself_stays(
    source: Path, packets: list[StatusPacket], make_job: Callable[..., TestJob]
) -> None:
    """launch.scm:780: the runner sets the end only while the test is RUNNING."""
    flag = source / "go"
    wait = StepSpec("main", f"until [ -e {flag} ]; do sleep 0.02; done")
    process = TestProcess(make_job(wait), Reporter("node1", packets.append))
    result: list[Outcome] = []
    thread = threading.Thread(target=lambda: result.append(process.run()))
    thread.start()
    try:
        wait_until(lambda: any(isinstance(p, Step) for p in packets), timeout=10)
        assert process.set_status(State.COMPLETED, Status.FAIL, "the test said so")
        assert process.set_status(State.COMPLETED, Status.FAIL)  # "" keeps the comment
    finally:
        flag.touch()
        thread.join(timeout=20)
    assert result == [Outcome(State.COMPLETED, Status.FAIL, "the test said so")]
    assert [p.comment for p in packets if isinstance(p, StatusChange)][-1] == "the test said so"
    assert not process.set_status(State.RUNNING, Status.NA)


# Waivers


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    path = tmp_path / "runs-before" / "judged"
    path.mkdir(parents=True)
    (path / "out.txt").write_text("the same\n")
    return path


@pytest.mark.parametrize("same", [True, False])
def test_a_waiver_applies_when_the_files_compare_equal(
    same: bool,
    previous: Path,
    source: Path,
    reporter: Reporter,
    make_job: Callable[..., TestJob],
) -> None:
    """tests.scm:335-440: the previous run was COMPLETED/WAIVED and diff finds no change."""
    text = "the same" if same else "changed"
    job = make_job(
        ez("make", f"echo {text} > out.txt; exit 1"),
        waivers=(Waiver("same_output", "diff out.txt"),),
    )
    before = Previous("COMPLETED", "WAIVED", "known issue", str(previous))

    outcome = TestProcess(job, reporter, previous=before).run()

    waived = Status.WAIVED if same else Status.FAIL
    assert outcome == Outcome(State.COMPLETED, waived, "Failed at step make")


def test_a_waiver_needs_a_waived_previous_run(
    previous: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    job = make_job(ez("make", "echo the same > out.txt; exit 1"),
                   waivers=(Waiver("w", "diff out.txt"),))  # fmt: skip
    before = Previous("COMPLETED", "FAIL", "", str(previous))

    assert TestProcess(job, reporter, previous=before).run().status is Status.FAIL


def test_a_waiver_by_logpro_rule_and_a_named_rule(
    previous: Path, source: Path, reporter: Reporter, make_job: Callable[..., TestJob]
) -> None:
    """<name>.logpro judges the diff (tests.scm:347, 364-367); a [waiver_rules] entry wins."""
    (source / "by_logpro.logpro").write_text(rule("error", "^[<>] .*secret"))
    job = make_job(
        ez("make", "echo the same > out.txt; echo changed > other.txt; exit 1"),
        waivers=(Waiver("by_logpro", "logpro out.txt"), Waiver("named", "always other.txt")),
        waiver_rules={"always": "test -e %file1% && echo %waivername% > named.ran"},
    )
    before = Previous("COMPLETED", "WAIVED", "", str(previous))

    outcome = TestProcess(job, reporter, previous=before).run()

    assert outcome.status is Status.WAIVED
    assert (job.rundir / "by_logpro.html").exists()
    assert (job.rundir / "named.ran").read_text() == "named\n"
