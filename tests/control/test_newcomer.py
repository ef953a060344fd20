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
