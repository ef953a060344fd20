"""``mtpkt send run`` against a real home: selection errors and what a plain run reruns."""

import pytest

from mtpkt.pkts import State
from mtpkt.pkts.status import StatusChange
from mtpkt.tools.exitcodes import ExitCode
from tests.support.farm import TARGET, Farm
from tests.support.procs import wait_for


@pytest.mark.timeout(90)
def test_an_item_that_is_no_item_of_the_test_is_refused_with_the_items(farm: Farm) -> None:
    """Megatest would mark ``unit`` NOT_STARTED/ZERO_ITEMS and run only ``build``
    (runs.scm:1491-1500); mtpkt refuses the run, with the items there are, and runs
    nothing."""
    farm.start_home()
    sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "unit/9", "--wait")
    assert sent.returncode == ExitCode.REFUSED, sent
    assert sent.stderr.splitlines() == [
        "mtpkt send: error: the home refused the run: testpatt 'unit/9' matches no item of"
        " the tests it names (unit: 1, 2, 3)"
    ]
    assert sent.stdout == ""
    assert farm.main_query("SELECT runname FROM runs") == []


@pytest.mark.timeout(90)
def test_a_target_without_its_runconfigs_section_runs_with_a_warning_in_the_homes_log(
    farm: Farm,
) -> None:
    """Megatest takes ``[default]`` alone (runs.scm:2349-2350); mtpkt does too, and the
    home's log names the sections there are. The sender's receipt carries only the packet
    ids or an error, so ``mtpkt send`` cannot show the warning."""
    with (farm.area / "runconfigs.config").open("a") as config:
        config.write("\n[linux/arm]\nGREETING hi\n")
    farm.start_home()
    farm.start_agent("alpha")
    sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "build", "--wait")
    assert sent.returncode == 0, sent
    warning = (
        f"home WARNING {farm.area}/runconfigs.config: target {TARGET} matches no section"
        " (sections: linux/arm): only [default] applies"
    )
    assert wait_for(lambda: warning in farm.log("home"), 10), farm.log("home")


@pytest.mark.timeout(120)
def test_a_plain_run_leaves_a_completed_test_alone_whatever_its_status(farm: Farm) -> None:
    """runs.scm:1739-1747: without -rerun, a COMPLETED test is not run again, FAIL or not
    ("use -rerun ... to override"); -rerun FAIL runs it again (:1748-1755)."""
    farm.start_home()
    farm.start_agent("alpha")

    def runs_of_broken() -> int:
        history = farm.history("r1", "kind = 'status_change' AND testname = 'broken'")
        return sum(
            1 for _, p in history if isinstance(p, StatusChange) and p.state is State.COMPLETED
        )

    args = ("run", "-t", TARGET, "-r", "r1", "--testpatt", "broken", "--wait")
    first = farm.send(*args)
    assert first.returncode == 3, first  # broken FAILs
    again = farm.send(*args)
    assert again.returncode == 3, again  # still FAIL: its record, left alone
    assert runs_of_broken() == 1
    rerun = farm.send(*args, "--rerun", "FAIL")
    assert rerun.returncode == 3, rerun
    assert runs_of_broken() == 2
