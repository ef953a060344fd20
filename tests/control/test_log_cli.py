"""``mtpkt log``: a step's log read from the run directory, a test's steps listed, a log
followed until its test ends, and one line for each thing that cannot be found (issue 21)."""

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import start_mtpkt
from tests.support.farm import FILES, TARGET, Farm, running_farm
from tests.support.procs import stop_process, wait_for

pytestmark = pytest.mark.timeout(150)

DRIP = """
    [ezsteps]
    drip for i in 1 2 3 4 5 6; do echo drip$i; sleep 0.5; done
"""
"""A step whose log grows for three seconds."""

TESTS = "broken, build, noted, unit"
"""The tests of run r1."""

NOTED = """
    [ezsteps]
    note echo noting; echo the summary > summary.txt; $MT_MEGATEST -setlog summary.txt
"""
"""A test that names its main log, as Megatest's -setlog does."""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A farm whose run r1 ran build, unit (items 1, 2, 3), broken and noted on agent alpha."""
    root = tmp_path_factory.mktemp("log")
    files = {**FILES, "tests/drip/testconfig": DRIP, "tests/noted/testconfig": NOTED}
    with running_farm(root, files=files) as farm:
        farm.start_home()
        farm.start_agent("alpha")
        done = farm.send(
            "run", "-t", TARGET, "-r", "r1", "--testpatt", "build,unit,broken,noted", "--wait"
        )
        assert done.returncode == 3, done  # broken fails
        yield farm


def log(farm: Farm, *args: str) -> "subprocess.CompletedProcess[str]":
    return farm.command("log", "-t", TARGET, "-r", "r1", *args)


def rundir(farm: Farm, *parts: str) -> Path:
    return farm.area.joinpath("links", TARGET, *parts)


def test_a_steps_log_is_printed_as_the_step_wrote_it(ran: Farm) -> None:
    shown = log(ran, "build", "compile")
    assert shown.returncode == 0, shown
    assert shown.stdout == "compiling build\n"
    assert shown.stdout == rundir(ran, "r1", "build", "compile.log").read_text()
    failed = log(ran, "broken", "second")
    assert (failed.returncode, failed.stdout) == (0, "about to fail\n"), failed


def test_without_a_step_the_tests_steps_and_their_logs_are_listed(ran: Farm) -> None:
    listed = log(ran, "build")
    assert listed.returncode == 0, listed
    lines = listed.stdout.splitlines()
    assert lines[0] == f"build: COMPLETED/PASS on alpha, in {rundir(ran, 'r1', 'build')}"
    assert lines[1].split() == ["compile", "PASS", "compile.log"]
    assert lines[2].split() == ["link", "PASS", "link.log"]
    broken = log(ran, "broken")
    assert broken.stdout.splitlines()[2].split() == ["second", "FAIL", "second.log"], broken


def test_main_prints_the_log_the_test_named_as_its_main_one(ran: Farm) -> None:
    listed = log(ran, "noted")
    assert listed.stdout.splitlines()[-2] == "main log: summary.txt (--main prints it)", listed
    shown = log(ran, "noted", "--main")
    assert (shown.returncode, shown.stdout) == (0, "the summary\n"), shown
    none = log(ran, "build", "--main")
    assert none.returncode == 1
    assert none.stderr == (
        "mtpkt log: error: build has no main log (a step names one: megatest -setlog)\n"
    )
    both = log(ran, "build", "compile", "--main")
    assert both.returncode == 2
    assert "give a STEP or --main, not both" in both.stderr


def test_an_item_is_named_test_slash_item_and_a_test_with_items_needs_one(ran: Farm) -> None:
    item = log(ran, "unit/2")
    assert item.returncode == 0, item
    assert item.stdout.splitlines()[1].split() == ["check", "PASS", "check.log"]
    assert log(ran, "unit/2", "check").returncode == 0
    bare = log(ran, "unit", "check")
    assert bare.returncode == 2
    assert bare.stderr == (
        "mtpkt log: error: test unit has items: name one as unit/ITEM (its items: 1, 2, 3)\n"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("-r", "r9", "build"), f"target {TARGET} has no run 'r9'; its runs: r1"),
        (("nosuch",), f"run {TARGET}/r1 has no test 'nosuch' (its tests: {TESTS})"),
        (("unit/9", "check"), f"test unit of run {TARGET}/r1 has no item '9' (its items: 1, 2, 3)"),
        (("build", "nope"), "build has no step 'nope' (its steps: compile, link)"),
    ],
)
def test_what_does_not_exist_is_one_line_naming_what_does(
    ran: Farm, args: tuple[str, ...], line: str
) -> None:
    found = ran.command("log", "-t", TARGET, "-r", "r1", *args)
    assert (found.returncode, found.stdout) == (1, ""), found
    assert found.stderr == f"mtpkt log: error: {line}\n"


def test_bad_option_combinations_are_refused(ran: Farm) -> None:
    follow = log(ran, "build", "--follow")
    assert follow.returncode == 2
    assert "--follow needs a STEP" in follow.stderr
    timeout = log(ran, "build", "compile", "--wait-timeout", "3")
    assert timeout.returncode == 2
    assert "--wait-timeout is for --follow" in timeout.stderr


def test_a_log_this_host_cannot_see_names_the_host_that_ran_it_and_the_path(ran: Farm) -> None:
    links = ran.area / "links"
    away = ran.area / "links.away"  # as from a host that does not mount the run tree
    links.rename(away)
    try:
        hidden = log(ran, "build", "compile")
    finally:
        away.rename(links)
    assert hidden.returncode == 1
    path = rundir(ran, "r1", "build", "compile.log")
    assert hidden.stderr.startswith("mtpkt log: error: the log of build is not visible from ")
    assert f": {path} (it ran on alpha;" in hidden.stderr


def _started(farm: Farm, runname: str) -> bool:
    steps = farm.query(runname, "SELECT count(*) FROM test_steps WHERE stepname = 'drip'")
    return bool(steps and steps[0][0])


def _follow(farm: Farm, runname: str, *extra: str) -> "subprocess.Popen[str]":
    assert wait_for(lambda: _started(farm, runname), 30), farm.log("alpha")
    assert farm.tests(runname)[("drip", "")][0] == "RUNNING"  # the step runs three seconds
    return start_mtpkt(
        "log", "-t", TARGET, "-r", runname, "drip", "drip", "--follow", *extra,
        cwd=farm.area, env=farm.env,
    )  # fmt: skip


def test_follow_prints_what_the_step_adds_until_the_test_has_ended(ran: Farm) -> None:
    sent = ran.send("run", "-t", TARGET, "-r", "f1", "--testpatt", "drip")
    assert sent.returncode == 0, sent
    follower = _follow(ran, "f1")
    try:
        out, err = follower.communicate(timeout=60)
    finally:
        stop_process(follower)
    assert follower.returncode == 0, err
    assert out == "".join(f"drip{i}\n" for i in range(1, 7))
    assert ran.tests("f1")[("drip", "")][:2] == ("COMPLETED", "PASS")


def test_follow_gives_up_after_its_timeout_and_ctrl_c_exits_130(ran: Farm) -> None:
    sent = ran.send("run", "-t", TARGET, "-r", "f2", "--testpatt", "drip")
    assert sent.returncode == 0, sent
    timed = _follow(ran, "f2", "--wait-timeout", "0.5")
    try:
        out, err = timed.communicate(timeout=30)
    finally:
        stop_process(timed)
    assert timed.returncode == 8, err
    assert "".join(f"drip{i}\n" for i in range(1, 7)).startswith(out)  # what was there by then
    assert err == "mtpkt log: drip still runs after 0.5 s\n"
    sent = ran.send("run", "-t", TARGET, "-r", "f3", "--testpatt", "drip")
    assert sent.returncode == 0, sent
    stopped = _follow(ran, "f3")
    try:
        assert stopped.stdout is not None
        assert stopped.stdout.readline() == "drip1\n"
        stopped.send_signal(signal.SIGINT)
        out, err = stopped.communicate(timeout=30)
    finally:
        stop_process(stopped)
    assert stopped.returncode == 130, err
    assert err == "mtpkt log: interrupted\n"
