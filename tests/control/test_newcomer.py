"""What a newcomer tripped over, end to end (issue 21): each a reproduction that failed
before its fix."""

import pytest

from tests.support.farm import TARGET, Farm


@pytest.mark.timeout(120)
def test_a_run_pinned_to_an_unknown_agent_says_why_its_tests_wait(farm: Farm) -> None:
    """With ``--host hostZ`` (no such agent) the tests showed NOT_STARTED with an empty comment,
    and ``send --wait`` said nothing of why (issue 21, item 5)."""
    farm.start_home()
    waited = farm.send(
        "run", "-t", TARGET, "-r", "p1", "--testpatt", "build", "--host", "hostZ",
        "--wait", "--wait-timeout", "6",
    )  # fmt: skip
    assert waited.returncode == 8, waited  # not settled in time: no such agent
    reason = "waiting for agent hostZ, which the home does not know"
    assert waited.stderr.splitlines().count(reason) == 1, waited.stderr
    listed = farm.command("tests", "-t", TARGET, "-r", "p1", "--json")
    assert listed.returncode == 0, listed
    assert f'"comment": "{reason}"' in listed.stdout
    farm.start_agent("hostZ")  # once it comes, the test runs and the reason is gone
    done = farm.send("run", "-t", TARGET, "-r", "p1", "--testpatt", "build", "--wait")
    assert done.returncode == 0, done
    assert farm.tests("p1")[("build", "")][:2] == ("COMPLETED", "PASS")


@pytest.mark.timeout(120)
def test_tail_until_done_names_what_its_selection_misses_and_can_give_up(farm: Farm) -> None:
    """``tail -r nightlly --until-done`` (misspelt) or ``--testpatt unti`` said "waiting for
    a selected run to start" and waited for ever (issue 21, item 2)."""
    farm.start_home()
    farm.start_agent("alpha")
    done = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "build", "--wait")
    assert done.returncode == 0, done
    misspelt = farm.command("tail", "-r", "nightlly", "--until-done", "--wait-timeout", "2")
    assert misspelt.returncode == 8, misspelt
    lines = misspelt.stderr.splitlines()
    assert lines[0] == "mtpkt tail: no run 'nightlly' yet (runs there: nightly); waiting for it"
    assert lines[-1] == (
        "mtpkt tail: error: not every selected test had settled after 2s (the runs go on)"
    )
    pattern = farm.command(
        "tail", "-r", "nightly", "--testpatt", "unti", "--until-done", "--wait-timeout", "2"
    )
    assert pattern.returncode == 8, pattern
    assert pattern.stderr.splitlines()[0] == (
        "mtpkt tail: no test of the selected runs matches --testpatt 'unti' (tests: build)"
    )
    alone = farm.command("tail", "-r", "nightly", "--wait-timeout", "2")
    assert alone.returncode == 2
    assert "--wait-timeout needs --until-done" in alone.stderr
