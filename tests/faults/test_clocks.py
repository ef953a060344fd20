"""Clock skew between agents and the home: one agent an hour ahead, one an hour behind.

The home judges liveness by its own clock (when it received a heartbeat), so
neither agent is marked lost and no test becomes DEAD; it warns that each
agent's clock differs from its own; durations are measured on one clock, so
they stay true; and every status packet lands once.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.farm import TARGET, Farm
from tests.support.ledger import books, record, tracebacks
from tests.support.procs import processes_with, wait_for

SKEWED = str(Path(__file__).parents[1] / "support" / "skewed.py")
HOUR = 3600.0


@pytest.mark.timeout(90)
def test_agents_an_hour_ahead_and_behind_the_home(farm: Farm) -> None:
    farm.start_home("--agent-grace", "1")
    for name, skew in (("ahead", HOUR), ("behind", -HOUR)):
        with (farm.logs / f"{name}.log").open("wb") as log:
            farm.processes[name] = subprocess.Popen(
                [
                    sys.executable, SKEWED, str(skew), "agent", "--area", str(farm.area),
                    "--name", name, "--slots", "1", "--kill-grace", "1",
                ],
                cwd=farm.area, env=farm.env, stdout=log, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
    assert wait_for(lambda: all("ready" in farm.log(n) for n in ("ahead", "behind")), 30)
    sent = farm.send("run", "-t", TARGET, "-r", "skew", "--testpatt", "%,~sleeper", "--wait")
    assert sent.returncode == 3, sent  # broken fails, as the area says: exit 3, not an error
    tests = farm.tests("skew")
    assert len(tests) == 8
    # after_broken never runs: NOT_STARTED/PREQ_FAIL, as the area says
    assert {state for state, _, _ in tests.values()} == {"COMPLETED", "NOT_STARTED"}
    assert tests[("after_broken", "")][:2] == ("NOT_STARTED", "PREQ_FAIL")
    assert {host for _, _, host in tests.values()} >= {"ahead", "behind"}, tests
    durations = farm.query("skew", "SELECT testname, item_path, run_duration FROM tests")
    assert all(0 <= float(str(d)) < 60 for _, _, d in durations), durations
    home = farm.log("home")
    assert "agent ahead: clock differs from the home's by -3600" in home, home
    assert "agent behind: clock differs from the home's by 3600" in home, home
    assert "is lost" not in home
    assert "DEAD" not in home

    farm.stop_all()
    assert wait_for(lambda: not processes_with(SKEWED), 10)
    assert not tracebacks(farm.logs), tracebacks(farm.logs)
    record(
        books(
            "agent clocks an hour ahead of and behind the home's",
            farm.area,
            ["ahead", "behind"],
            detail="8 tests settled as the area says, durations 0-60 s, drift warned for both,"
            " no agent lost, none DEAD",
        )
    )
