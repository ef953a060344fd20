"""Selection errors through the command line: ``mtpkt send run`` against a real home."""

import pytest

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
