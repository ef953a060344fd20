"""What the home does around a run as Megatest's ``megatest -run`` does: the runs' pre-hook and
post-hook, ``[triggers]`` on state changes, and one warning for a launcher it cannot honour."""

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.pkts.status import StatusChange
from tests.support.farm import FILES, TARGET, Farm, write_area
from tests.support.procs import wait_for

EXTRA = """
    [setup]
    run-wait yes

    [runs]
    pre-hook bash -c 'echo pre $MT_RUNNAME $GREETING; sleep 1; touch $MT_RUN_AREA_HOME/pre.done'
    post-hook echo post $MT_RUNNAME

    [jobtools]
    launcher remrun night

    [triggers]
    COMPLETED/ echo area-trigger
"""
AREA = {
    "megatest.config": textwrap.dedent(FILES["megatest.config"]) + textwrap.dedent(EXTRA),
    "runconfigs.config": "[default]\nGREETING hello\n",
    "tests/first/testconfig": """
        [ezsteps]
        check test -f $MT_RUN_AREA_HOME/pre.done

        [triggers]
        RUNNING/ echo test-trigger $MT_TEST_NAME
    """,
}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    logs = tmp_path / "logs"
    logs.mkdir()
    farm = Farm(write_area(tmp_path / "area", AREA), logs)
    try:
        yield farm
    finally:
        farm.stop_all()


@pytest.mark.timeout(180)
def test_hooks_triggers_and_the_launcher_warning(farm: Farm) -> None:
    """runs.scm:235-272 and 469: the pre-hook runs before any test of a run that has no tests
    yet, ``<hook> >> logs/pre-hook-<target>-<run>.log 2>&1`` (so a list of commands must be
    one command, as in Megatest), and not for a run that has
    some; runs.scm:274-311 and 1597: the post-hook at the end of every ``-run`` (run-wait yes:
    once every test has ended). mt.scm:168-225: triggers ``STATE/STATUS``, ``STATE/``,
    ``/STATUS``, testconfig's then megatest.config's, called with test-id, rundir, trigger,
    test, item, state, status and event time, output in ``<rundir>/<tconfig|mtconfig>-last-
    trigger-<trigger>.log``. common.scm:2322-2353: ``[jobtools] launcher remrun`` is the
    launcher of every test: one warning line per run, the test runs on an agent."""
    farm.start_home()
    farm.start_agent("alpha", slots=2)
    first = farm.send("run", "-t", TARGET, "-r", "r1", "--wait")
    assert first.returncode == 0, first
    area = farm.area
    logs = area / "logs"
    pre_log = logs / "pre-hook-linux-x86-r1.log"
    post_log = logs / "post-hook-linux-x86-r1.log"
    assert pre_log.read_text() == "pre r1 hello\n"
    assert wait_for(lambda: post_log.is_file() and post_log.read_text() == "post r1\n", 30)

    rundir = area / "links" / TARGET / "r1" / "first"
    running = rundir / "tconfig-last-trigger-RUNNING-.log"
    completed = rundir / "mtconfig-last-trigger-COMPLETED-.log"
    assert wait_for(lambda: running.is_file() and completed.is_file(), 30)
    words = running.read_text().split()
    assert words[:3] == ["test-trigger", "first", words[2]]
    assert words[2].isdigit()
    assert words[3:] == [str(rundir), "RUNNING/", "first", "RUNNING", "n/a", words[-1]]
    assert completed.read_text().split()[4:8] == ["first", "COMPLETED", "PASS", words[-1]][:4]

    warnings = [
        packet.comment
        for _, packet in farm.history("r1")
        if isinstance(packet, StatusChange) and packet.comment.startswith("warning:")
    ]
    assert len(warnings) == 1, warnings
    assert "launcher 'remrun night'" in warnings[0], warnings
    assert farm.log("home").count("launcher 'remrun night'") == 1

    again = farm.send("run", "-t", TARGET, "-r", "r1", "--wait")
    assert again.returncode == 0, again
    assert wait_for(lambda: post_log.read_text() == "post r1\npost r1\n", 30)
    assert pre_log.read_text() == "pre r1 hello\n"  # the run has tests: no pre-hook


@pytest.mark.timeout(180)
def test_a_test_added_just_before_its_run_has_its_triggers_run(farm: Farm) -> None:
    """The home keeps its list of the area's tests for a few seconds; a test it does not find
    there has them listed again, so a test written just before its run is not taken for one
    without ``[triggers]``."""
    farm.start_home()
    farm.start_agent("alpha", slots=2)
    first = farm.send("run", "-t", TARGET, "-r", "r1", "--wait")  # the home lists the tests
    assert first.returncode == 0, first
    later = farm.area / "tests" / "later"
    later.mkdir()
    (later / "testconfig").write_text("[ezsteps]\nok true\n\n[triggers]\nRUNNING/ echo later\n")
    second = farm.send("run", "-t", TARGET, "-r", "r2", "--testpatt", "later", "--wait")
    assert second.returncode == 0, second
    log = farm.area / "links" / TARGET / "r2" / "later" / "tconfig-last-trigger-RUNNING-.log"
    assert wait_for(lambda: log.is_file() and log.read_text().startswith("later "), 30)
