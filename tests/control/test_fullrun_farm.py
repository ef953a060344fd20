"""Megatest's own ``fullrun`` area run end to end by a home and two agents, from
``mtpkt send run -t ubuntu/nfs/none -r r1 --testpatt % --wait``: every test must end as
Megatest's release check requires (issue 18, acceptance 1; issue 17, acceptance 1).

The area is Megatest's, copied unmodified except for what the copy in ``../shared`` lost
(:func:`~tests.area.test_fullrun.copy_of_fullrun` restores ``tests/ez_pass_linked`` as the
link it is; ``test_mt_vars``'s scripts get their execute bits back, as
:mod:`tests.area.test_environment_fullrun` explains). Beside the area, where
``sqlitespeed``'s Ruby runscript looks for it (``$MT_RUN_AREA_HOME/../resources``), lies
mtpkt's own ``ruby/librunscript.rb`` (tests/support/resources): Megatest's examples do not
ship that library. Ruby and sqlite3 are installed when missing
(:mod:`tests.support.components`). Nothing is written for the run beforehand:
``test_mt_vars``'s ``[items]`` (``NUMNUM [system cat …/$PREDICTABLE]``) read the file
``runfirst`` writes, and are made when ``test_mt_vars`` comes up to run, as in Megatest
(configf.scm:384-411, runs.scm:750-778, :mod:`mtpkt.agents.area.deferred`).

What is checked: every row of ``tests/release/tests/fullrun/results.logpro`` — its pass,
fail, warn and PREQ_DISCARDED lists with their counts, its special cases and its catch-all —
as :mod:`tests.control.fullrun_verdicts` reads and applies them; and besides, the item paths
of the itemized tests, and the environment ``test_mt_vars``'s steps check.
"""

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.outcome import settled
from mtpkt.pkts.status import Step
from tests.area.test_environment_fullrun import ENVIRONMENT_STEPS
from tests.area.test_fullrun import EXAMPLES, copy_of_fullrun
from tests.control.fullrun_verdicts import problems, read_specs
from tests.support.components import need
from tests.support.farm import Farm

TARGET = "ubuntu/nfs/none"
RUNNAME = "r1"
USER = f"mtpkt-fullrun-{os.getpid()}"
"""``$USER``: in the path of the file runfirst writes and test_mt_vars reads, and in
megatest.config's ``dbdir`` (``/tmp/$USER/$MT_TESTSUITE_NAME/db``, megatest.config:37-39),
so one of this process's own: a run of another suite, or one left over, is not taken up."""
RESULTS = EXAMPLES / "tests" / "release" / "tests" / "fullrun" / "results.logpro"
RESOURCES = Path(__file__).resolve().parents[1] / "support" / "resources"
"""mtpkt's ``ruby/librunscript.rb`` for ``sqlitespeed``'s runscript (see the module doc)."""

SEASONS = ["summer", "winter", "fall", "spring"]
STATES = "UNKNOWN INCOMPLETE KILLED KILLREQ STUCK BOZZLEBLONKED STUCK/DEAD".split()
STATUSES = "PASS FAIL STUCK/DEAD SKIP".split()
ITEMS = {
    # results.logpro:23, 7 records: [items] SEASON and [itemstable] rows appended (items.scm)
    "runfirst": [*SEASONS, "a/1", "b/2"],
    # results.logpro:27, 10 records: [system (env > envfile.txt;echo aa … ai)]
    "sqlitespeed": [f"a{c}" for c in "abcdefghi"],
    # results.logpro:30, 6 records: the_ans, "1 2 3 4 5" (runfirst's main.sh)
    "test_mt_vars": ["1", "2", "3", "4", "5"],
    # results.logpro:72, 29 records: each THESTATE with each THESTATUS
    "blocktestxz": [f"{state}/{status}" for state in STATES for status in STATUSES],
}
"""Item paths of the itemized tests; each count plus the toplevel is results.logpro's."""


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    need({"ruby": "ruby", "sqlite3": "sqlite3"})
    area = copy_of_fullrun(tmp_path)
    (area.parent / "resources").symlink_to(RESOURCES)
    for script in (area / "tests" / "test_mt_vars").glob("*.sh"):
        script.chmod(0o755)  # lost by the export (tests.area.test_environment_fullrun)
    logs = tmp_path / "logs"
    logs.mkdir()
    farm = Farm(area, logs)
    farm.env["USER"] = USER
    # ezlog_warn's lookithome step lists $HOME and its logpro rule requires a line
    # (lookithome.logpro: "Must be some files in the dir"); a machine's HOME may be empty.
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("a file for ezlog_warn's `ls $HOME`\n")
    farm.env["HOME"] = str(home)
    farm.env.pop("MT_TESTSUITE_NAME", None)
    farm.dbdir = Path("/tmp") / USER / "db"
    try:
        yield farm
    finally:
        farm.stop_all()
        shutil.rmtree(farm.dbdir.parent, ignore_errors=True)


@pytest.mark.long
@pytest.mark.timeout(420)
def test_fullrun_ends_as_megatests_release_check_requires(farm: Farm) -> None:
    """results.logpro, every row (see the module's docstring); runs.scm:750-778 and
    configf.scm:384-411 (``[system …]`` items made when the test comes up to run);
    launch.scm:640-723 (the environment test_mt_vars's steps check)."""
    farm.start_home()
    farm.start_agent("alpha", slots=2)
    farm.start_agent("beta", slots=2)
    began = time.monotonic()
    sent = farm.send(
        "run", "-t", TARGET, "-r", RUNNAME, "--testpatt", "%", "--wait", timeout=360
    )  # fmt: skip
    took = time.monotonic() - began
    print(f"fullrun: send --wait exit {sent.returncode} after {took:.0f}s")
    # Some tests end FAIL, as Megatest's release check requires: exit 3, not 0 or 4.
    assert sent.returncode == 3, (sent, farm.log("home"))

    records = farm.tests(RUNNAME)
    states = {key: (state, status) for key, (state, status, _) in records.items()}
    print(f"fullrun: {len(records)} records")
    for (test, item), (state, status) in sorted(states.items()):
        print(f"  {test}/{item}: {state} {status}")
    unsettled = {k: v for k, v in states.items() if not settled(State(v[0]), Status(v[1]))}
    assert not unsettled
    assert not [k for k, (state, _) in states.items() if state in ("LAUNCHED", "RUNNING")]
    names = {test for test, _ in records}
    tests_dir = farm.area / "tests"
    assert names == {path.name for path in tests_dir.iterdir()}, "every test planned"

    for test, items in ITEMS.items():
        assert sorted(item for t, item in records if t == test and item) == sorted(items), test
    for n in range(1, 5):
        assert states[(f"wait_no_items{n}", "")] == ("NOT_STARTED", "PREQ_DISCARDED")
    assert problems(states, read_specs(RESULTS)) == []

    ends: dict[tuple[str, str], int | None] = {}
    for _, packet in farm.history(RUNNAME, "kind = 'step' AND testname = 'test_mt_vars'"):
        if isinstance(packet, Step) and packet.state is StepState.END:
            ends[(packet.item, packet.step)] = packet.exit_code
    for item in ITEMS["test_mt_vars"]:
        for step in ENVIRONMENT_STEPS:
            assert ends.get((item, step)) == 0, (item, step, ends.get((item, step)))
