"""STALE: a later ``run`` or ``rerunclean`` of a run whose configs resolve differently.

The seed roadmap's config caching, mtpkt's own (Megatest has no STALE state;
it keeps resolved configs in the run's directory too, launch.scm:884-907,
:1006-1015, but reads them back instead of comparing): the home keeps the run's
resolved configs in ``$MT_RUNPATH`` and, when a later plan of the run resolves
them differently, records every COMPLETED test of the run STALE. A plain run
runs STALE tests again, as it runs every test that is not COMPLETED
(runs.scm:1731-1760, :1817-1833); ``rerunclean`` runs again only those that
ended badly.

The dispatcher runs in process over a real store (tests.control.test_dispatcher's
InlineCollector); an agent's reports are played as status packets.
"""

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from rich.console import Console

from mtpkt.agents.area import Area
from mtpkt.agents.area.configcache import CACHE_NAME
from mtpkt.agents.rundirs import remove_test_dir
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.control import RerunClean, Run
from mtpkt.pkts.link import Pull
from mtpkt.pkts.status import StatusChange, StatusPacket
from mtpkt.store import HistoryReader, Store
from mtpkt.tools.live import LiveModel, render
from tests.control.test_config_reread import run_to_its_end, started
from tests.control.test_dispatcher import InlineCollector, records
from tests.support.farm import FILES as FARM_FILES
from tests.support.farm import TARGET, write_area

FILES = {
    **{name: text for name, text in FARM_FILES.items() if not name.startswith("tests/")},
    "tests/build/testconfig": FARM_FILES["tests/build/testconfig"],
    "tests/unit/testconfig": FARM_FILES["tests/unit/testconfig"],
    "tests/other/testconfig": "[ezsteps]\nother echo other\n",
}
"""The farm's area: build, unit (items 1 2 3, waits on build), and other."""


@pytest.fixture
def area(tmp_path: Path) -> Area:
    return Area.load(write_area(tmp_path / "area", FILES))


@pytest.fixture
def home(area: Area) -> Iterator[InlineCollector]:
    with Store(area.dbdir, area.fields, durable=False) as store:
        yield InlineCollector(area, store)


class Agent:
    """Agent ``a1``: runs what it is handed, each instance ending as ``ends`` says."""

    def __init__(self, home: InlineCollector) -> None:
        self.home = home
        self.seq = 0
        self.ran: list[str] = []

    def run_all(self, ends: Mapping[str, Status] | None = None) -> None:
        """Take tasks until none are left (at most 50 rounds)."""
        dispatcher = self.home.dispatcher
        acks: tuple[bytes, ...] = ()
        for _ in range(50):
            tasks = dispatcher.pull(Pull(origin="a1", slots=8, free=8, acks=acks))
            acks = tuple(task.id for task in tasks)
            runs = [task for task in tasks if task.action is Action.RUN]
            for task in runs:
                name = "/".join(filter(None, (task.test, task.item)))
                self.ran.append(name)
                self.seq += 1
                status = (ends or {}).get(name, Status.PASS)
                self.home.report(
                    StatusChange(
                        origin="a1", seq=self.seq, target=TARGET, runname=task.runname,
                        test=task.test, item=task.item, state=State.COMPLETED, status=status,
                        host="a1",
                    )
                )  # fmt: skip
            dispatcher.tick()
            if not tasks:
                return
        raise AssertionError("the run did not end in 50 rounds")


def changes_to(state: State, history: Iterable[tuple[int, StatusPacket]]) -> list[StatusChange]:
    """The records of ``state`` among committed packets (seq, packet)."""
    return [p for _, p in history if isinstance(p, StatusChange) and p.state is state]


def stale_changes(store: Store) -> list[StatusChange]:
    reader = HistoryReader(store.dbdir)
    try:
        return changes_to(State.STALE, reader.history(after=0, limit=10_000))
    finally:
        reader.close()


def edit(area: Area, name: str, old: str, new: str) -> None:
    path = area.home / name
    path.write_text(path.read_text().replace(old, new))


def run(home: InlineCollector, testpatt: str = "%") -> None:
    home.dispatcher.control(Run(target=TARGET, runname="r1", testpatt=testpatt))


def test_a_run_with_the_same_configs_marks_nothing_stale(home: InlineCollector) -> None:
    agent = Agent(home)
    run(home)
    agent.run_all()
    assert sorted(agent.ran) == ["build", "other", "unit/1", "unit/2", "unit/3"]
    run(home)
    agent.run_all()
    assert sorted(agent.ran) == ["build", "other", "unit/1", "unit/2", "unit/3"]  # none again
    assert stale_changes(home.store) == []
    assert {state for state, _, _ in records(home.store, "r1").values()} == {"COMPLETED"}


def test_changed_configs_make_the_runs_completed_tests_stale_and_a_run_runs_them_again(
    area: Area, home: InlineCollector
) -> None:
    agent = Agent(home)
    run(home)
    agent.run_all()
    edit(area, "runconfigs.config", "GREETING hello", "GREETING howdy")
    agent.ran.clear()
    run(home, "unit")  # its prerequisite build comes too, other does not

    comment = "configs changed: runconfigs.config [default] GREETING"
    stale = {"/".join(filter(None, (p.test, p.item))): p for p in stale_changes(home.store)}
    assert sorted(stale) == ["build", "other", "unit/1", "unit/2", "unit/3"]  # not unit's roll-up
    assert {(p.status, p.comment, p.host) for p in stale.values()} == {(Status.PASS, comment, "a1")}
    states = records(home.store, "r1")
    assert states["other"] == ("STALE", "PASS", "a1")  # not in this run: stays STALE
    assert states["build"][:2] == ("NOT_STARTED", "n/a")  # runs again
    agent.run_all()
    assert sorted(agent.ran) == ["build", "unit/1", "unit/2", "unit/3"]

    cache = json.loads((area.linktree / TARGET / "r1" / CACHE_NAME).read_text())
    assert cache["configs"]["runconfigs.config"]["default"]["GREETING"] == "howdy"
    assert "tests/other/testconfig" in cache["configs"]  # kept from the first run
    run(home)  # other is STALE: a plain run runs it again, nothing goes STALE
    agent.run_all()
    assert sorted(agent.ran) == ["build", "other", "unit/1", "unit/2", "unit/3"]
    assert len(stale_changes(home.store)) == 5


def test_rerunclean_reruns_what_ended_badly_and_leaves_the_rest_stale(
    area: Area, home: InlineCollector
) -> None:
    """The dependents it reruns may run after a STALE prerequisite that passed: STALE
    counts as COMPLETED among Megatest's ended states (common.scm:553)."""
    agent = Agent(home)
    run(home)
    agent.run_all({"unit/1": Status.FAIL})
    edit(area, "tests/build/testconfig", "echo linked", "echo linked again")
    agent.ran.clear()
    home.dispatcher.control(RerunClean(target=TARGET, runname="r1", testpatt="%"))
    agent.run_all()
    assert agent.ran == ["unit/1"]
    states = records(home.store, "r1")
    assert states["build"][:2] == states["other"][:2] == ("STALE", "PASS")
    assert states["unit/1"][:2] == ("COMPLETED", "PASS")
    stale = stale_changes(home.store)
    assert {p.comment for p in stale} == {"configs changed: tests/build/testconfig [ezsteps] link"}
    assert {p.test + p.item for p in stale} == {"build", "other", "unit1", "unit2", "unit3"}
    assert {p.status for p in stale if p.item == "1"} == {Status.FAIL}


# -- end to end: a home, an agent and the command line -----------------------------------------


def test_edited_runconfigs_make_completed_tests_stale_and_they_run_again(tmp_path: Path) -> None:
    with started(tmp_path, FILES) as farm:
        out = farm.area / "links" / TARGET / "r1" / "unit" / "1" / "out.txt"
        run_to_its_end(farm, "r1")
        run_to_its_end(farm, "r1")  # the same configs: nothing runs again, nothing is STALE
        assert out.read_text() == "hello A=1\n"
        assert len(changes_to(State.LAUNCHED, farm.history("r1"))) == 5
        assert changes_to(State.STALE, farm.history("r1")) == []

        config = farm.area / "runconfigs.config"
        config.write_text(config.read_text().replace("hello", "howdy"))
        done = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "unit", "--wait")
        assert done.returncode == 0, (done.stderr, farm.log("home"), farm.log("a1"))
        assert out.read_text() == "howdy A=1\n"  # ran again, with the new value
        assert {(p.test, p.item) for p in changes_to(State.STALE, farm.history("r1"))} == {
            ("build", ""), ("unit", "1"), ("unit", "2"), ("unit", "3"), ("other", "")
        }  # fmt: skip
        tests = farm.tests("r1")
        assert tests[("other", "")][:2] == ("STALE", "PASS")
        assert {tests[key][:2] for key in tests if key[0] != "other"} == {("COMPLETED", "PASS")}

        listed = farm.command("tests", "-t", TARGET, "-r", "r1", "--testpatt", "other", "--json")
        assert listed.returncode == 0, listed.stderr
        (record,) = json.loads(listed.stdout)
        assert (record["state"], record["status"]) == ("STALE", "PASS")
        assert record["comment"] == "configs changed: runconfigs.config [default] GREETING"

        report = tmp_path / "r1.xml"
        made = farm.command("report", "-t", TARGET, "-r", "r1", "--junit", str(report))
        assert made.returncode == 0, made.stderr
        case = ET.parse(report).getroot().find(".//testcase[@name='other']")
        assert case is not None
        skipped = case.find("skipped")
        assert skipped is not None
        assert skipped.get("message", "").startswith("STALE/PASS: configs changed:")


def test_the_cache_goes_with_the_runs_last_test_directory(tmp_path: Path) -> None:
    """So a ``clean`` of the whole run leaves no run directory behind; while other tests'
    directories remain, the cache stays."""
    linktree = tmp_path / "links"
    runpath = linktree / TARGET / "r1"
    for test in ("build", "other"):
        (runpath / test).mkdir(parents=True)
    (runpath / CACHE_NAME).write_text("{}")
    assert remove_test_dir(linktree, TARGET, "r1", "build")
    assert (runpath / CACHE_NAME).exists()
    assert remove_test_dir(linktree, TARGET, "r1", "other")
    assert not (linktree / TARGET).exists()


def test_the_live_view_counts_stale_tests_as_settled_and_not_bad() -> None:
    """A STALE test has settled (the run is done) and is bad only with a bad status."""
    model = LiveModel()
    for seq, (test, state, status) in enumerate(
        [
            ("build", State.COMPLETED, Status.PASS),
            ("build", State.STALE, Status.PASS),
            ("other", State.STALE, Status.FAIL),
        ],
        1,
    ):
        model.add(
            [
                StatusChange(
                    origin="home", seq=seq, target=TARGET, runname="r1", test=test,
                    state=state, status=status, comment="configs changed: x",
                )
            ]
        )  # fmt: skip
    (view,) = model.runs.values()
    assert dict(view.counts) == {"STALE/PASS": 1, "STALE/FAIL": 1}
    assert (view.settled, list(view.bad)) == (2, [("other", "")])
    out = io.StringIO()
    Console(file=out, width=100, height=20, color_system=None).print(
        render(model, width=100, height=19, now=0.0)
    )
    assert "2/2" in out.getvalue()
    assert "1 STALE/PASS" in out.getvalue()
