"""``kill -9`` of the home and of agents at random points, over several runs.

Nothing is flushed and nobody says goodbye. After each kill the process is
started again (an agent of the same name, on the same spool). At the end every
test has settled (COMPLETED: PASS, FAIL and the rest where the area says so,
NOT_STARTED/PREQ_FAIL for the test whose prerequisite fails, DEAD where an agent died
under it), no step started twice, every `mtpkt send`
that exited 0 is in the journal once, and the books of status packets show
nothing lost or doubled. Each run has a test that runs until it is killed: one
whose agent was killed under it must not live on as an orphan, and the others
are stopped with `mtpkt send kill` at the end.
"""

import os
import random
import textwrap
import time

import pytest

from tests.support.farm import TARGET, Farm
from tests.support.ledger import books, record, tracebacks
from tests.support.procs import processes_with, wait_for

SLOW = """
    [ezsteps]
    nap   sleep 0.29
    done  echo done

    [items]
    N 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
"""
LINGERS = """
    [ezsteps]
    wait sleep 3022.5
"""
RUNS = ("night1", "night2", "night3")
INSTANCES = 26  # build, unit + 3 items, broken, after_broken, report, slow + 16 items, lingers
KILLS = 7
SEED = int(os.environ.get("MTPKT_FAULT_SEED", "0")) or random.randrange(1, 10**6)


class Killer:
    """Kills a process of the farm and starts it again under a new log name."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.current = {"home": "home", "alpha": "alpha", "beta": "beta"}
        self.kills: list[str] = []

    def kill(self, role: str) -> None:
        process = self.farm.processes[self.current[role]]
        process.kill()  # SIGKILL
        process.wait(timeout=10)
        self.kills.append(role)

    def restart(self, role: str) -> None:
        name = f"{role}-{len(self.kills)}"
        self.current[role] = name
        if role == "home":
            self.farm.start_home(name=name)
        else:
            self.farm.start(
                name, "agent", "--area", str(self.farm.area), "--name", role, "--slots", "3",
                "--kill-grace", "1",
            )  # fmt: skip


def _states(farm: Farm) -> list[str]:
    return [state for runname in RUNS for state, _, _ in farm.tests(runname).values()]


@pytest.mark.timeout(240)
def test_kill_9_of_the_home_and_agents_at_random_points(farm: Farm) -> None:
    print(f"seed {SEED} (MTPKT_FAULT_SEED={SEED} repeats this schedule)")
    chance = random.Random(SEED)
    (farm.area / "tests/slow").mkdir()
    (farm.area / "tests/slow/testconfig").write_text(textwrap.dedent(SLOW).lstrip())
    (farm.area / "tests/lingers").mkdir()  # runs until killed: an orphan of it would show
    (farm.area / "tests/lingers/testconfig").write_text(textwrap.dedent(LINGERS).lstrip())
    farm.start_home("--agent-grace", "2")
    farm.start_agent("alpha", slots=3)
    farm.start_agent("beta", slots=3)
    killer = Killer(farm)
    # Each of them at least once, the home at least twice, the rest by chance.
    victims = ["home", "home", "alpha", "beta"]
    victims += chance.choices(("home", "alpha", "beta"), k=KILLS - len(victims))
    chance.shuffle(victims)
    journaled = []
    for runname in RUNS:
        sent = farm.send("run", "-t", TARGET, "-r", runname, "--testpatt", "%,~sleeper")
        if sent.returncode == 0:  # a send may meet the home dead: it says so and exits non-zero
            journaled.append(sent.stdout.split()[-1])
        else:
            assert "home" in sent.stderr, sent
        for _ in range(KILLS // len(RUNS) + 1):
            if len(killer.kills) == KILLS:
                break
            time.sleep(chance.uniform(0.3, 2.0))  # a random point in the run
            role = victims.pop()
            killer.kill(role)
            time.sleep(chance.uniform(0.0, 1.5))  # down for a while; the others go on
            killer.restart(role)

    def settled(but: str = "") -> bool:
        records = [
            (test, state, status)
            for runname in RUNS
            for (test, _), (state, status, _) in farm.tests(runname).items()
        ]
        return len(records) == INSTANCES * len(journaled) and all(
            state in ("COMPLETED", "KILLED")
            or (state, status) == ("NOT_STARTED", "PREQ_FAIL")
            or test == but
            for test, state, status in records
        )

    assert wait_for(lambda: settled(but="lingers"), 90), {r: farm.tests(r) for r in RUNS}
    for runname in RUNS:  # what lingers on an agent that was never killed under it
        if farm.tests(runname)[("lingers", "")][0] == "RUNNING":
            stopped = farm.send("kill", "-t", TARGET, "-r", runname, "--testpatt", "lingers")
            assert stopped.returncode == 0, stopped
    assert wait_for(settled, 30), {runname: farm.tests(runname) for runname in RUNS}
    assert not processes_with("sleep 3022.5"), "orphans of agents killed with -9"
    farm.stop_all()
    assert wait_for(lambda: not processes_with("sleep 0.29"), 10), "orphan step processes"

    statuses: dict[str, int] = {}
    for runname in RUNS:
        for _, status, _ in farm.tests(runname).values():
            statuses[status] = statuses.get(status, 0) + 1
        starts = farm.query(
            runname,
            "SELECT t.testname, t.item_path, s.stepname, count(*) FROM test_steps s"
            " JOIN tests t ON t.id = s.test_id WHERE s.state = 'start'"
            " GROUP BY t.testname, t.item_path, s.stepname HAVING count(*) > 1",
        )
        assert not starts, (runname, starts)  # no step of an instance ran twice
    ids = [packet_id.hex() for packet_id in farm.journal_ids()]
    assert sorted(ids) == sorted(set(ids))
    assert set(journaled) <= set(ids), (journaled, ids)

    kills = ", ".join(f"{killer.kills.count(r)} of {r}" for r in ("home", "alpha", "beta"))
    assert not tracebacks(farm.logs), tracebacks(farm.logs)
    record(
        books(
            f"kill -9 at random points over {len(RUNS)} runs (seed {SEED}: {kills})",
            farm.area,
            ["alpha", "beta"],
            detail=f"{len(journaled)} runs journaled once, {INSTANCES * len(journaled)} "
            f"instances settled ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}),"
            " no step started twice, no orphan",
        )
    )
