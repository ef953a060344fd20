"""SIGSTOP of the home for longer than its agents wait for it, then SIGCONT.

While the home is stopped its agents' requests time out, they retry, and their
tests go on and spool what they report. When the home wakes, it has heard
nothing for longer than it would allow an agent; it must not take its own sleep
for the agents' silence: nobody is marked lost, no test becomes DEAD, the run
finishes, and every status packet lands once.
"""

import signal
import textwrap
import time

import pytest

from tests.support.farm import TARGET, Farm
from tests.support.ledger import books, record, tracebacks
from tests.support.procs import processes_with, wait_for

STEADY = """
    [ezsteps]
    nap   sleep 0.37
    done  echo done

    [items]
    N 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20
"""
STOPPED_FOR = 9.0  # > 2 heartbeats of 2 s + the grace of 1 s, and > the agents' 5 s timeouts


def _states(farm: Farm, runname: str) -> list[str]:
    return [state for state, _, _ in farm.tests(runname).values()]


@pytest.mark.timeout(120)
def test_a_home_stopped_longer_than_its_agents_wait_blames_nobody(farm: Farm) -> None:
    (farm.area / "tests/steady").mkdir()
    (farm.area / "tests/steady/testconfig").write_text(textwrap.dedent(STEADY).lstrip())
    farm.start_home("--agent-grace", "1")
    farm.start_agent("alpha")
    farm.start_agent("beta")
    sent = farm.send("run", "-t", TARGET, "-r", "stall", "--testpatt", "steady")
    assert sent.returncode == 0, sent
    assert wait_for(lambda: _states(farm, "stall").count("COMPLETED") >= 3, 30)

    home = farm.processes["home"]
    home.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        time.sleep(STOPPED_FOR)  # the fault itself: nothing to poll for while the home sleeps
    finally:
        home.send_signal(signal.SIGCONT)
    slept = time.monotonic() - stopped

    def settled() -> bool:
        states = _states(farm, "stall")
        return len(states) == 21 and set(states) == {"COMPLETED"}

    assert wait_for(settled, 60), farm.tests("stall")
    statuses = {status for _, status, _ in farm.tests("stall").values()}
    assert statuses == {"PASS"}, farm.tests("stall")
    assert "is lost" not in farm.log("home"), farm.log("home")
    assert "DEAD" not in farm.log("home"), farm.log("home")
    assert home.poll() is None

    farm.stop_all()
    assert wait_for(lambda: not processes_with("sleep 0.37"), 10)
    assert not tracebacks(farm.logs), tracebacks(farm.logs)
    record(
        books(
            f"home SIGSTOP for {slept:.1f} s mid-run, then SIGCONT",
            farm.area,
            ["alpha", "beta"],
            detail="21 tests, all COMPLETED/PASS; no agent marked lost, none DEAD",
        )
    )
