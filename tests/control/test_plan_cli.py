"""``mtpkt plan``, ``mtpkt targets`` and ``mtpkt tests --defined``: what an area would run,
and what it defines, read from its files with no home; and the plan held against what a
real home records for the same run (the demo's area and Megatest's fullrun)."""

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.tools.demo_area import AREA_FILES
from tests.area.test_fullrun import copy_of_fullrun
from tests.support.cli import clean_env, run_mtpkt
from tests.support.farm import FILES, Farm, running_farm, write_area
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(180)

Instances = set[tuple[str, str]]


def mtpkt(area: Path, *args: str, **env: str) -> tuple[int, str, str]:
    result = run_mtpkt(*args, cwd=area, env=clean_env(COLUMNS="200", **env))
    return result.returncode, result.stdout, result.stderr


def as_json(area: Path, *args: str, **env: str) -> list[dict[str, object]]:
    code, out, err = mtpkt(area, *args, "--json", **env)
    assert code == 0, err
    records = json.loads(out)
    assert isinstance(records, list)
    return records


def planned(tests: list[dict[str, object]]) -> Instances:
    """The records a plan makes: each instance, or a test's toplevel when it has none."""
    found: Instances = set()
    for test in tests:
        items = test["items"]
        assert isinstance(items, list)
        found |= {(str(test["test"]), str(item)) for item in items or [""]}
    return found


def recorded(farm: Farm, runname: str, tests: list[dict[str, object]]) -> Instances:
    """The home's records of the run, less the toplevels of itemized tests (roll-ups)."""
    itemized = {str(test["test"]) for test in tests if test["items"] not in ([], [""])}
    return {key for key in farm.tests(runname) if not (key[1] == "" and key[0] in itemized)}


def agrees(farm: Farm, runname: str, testpatt: str) -> None:
    """``plan --json`` before the run, and the records the home makes when sent it."""
    tests = as_json(farm.area, "plan", "-t", TARGET_OF[farm.area], "-r", runname,
                    "--testpatt", testpatt, **ENV_OF.get(farm.area, {}))  # fmt: skip
    sent = farm.send("run", "-t", TARGET_OF[farm.area], "-r", runname, "--testpatt", testpatt)
    assert sent.returncode == 0, sent.stderr
    want = planned(tests)
    assert wait_for(lambda: recorded(farm, runname, tests) == want, 30), (
        recorded(farm, runname, tests) ^ want
    )


TARGET_OF: dict[Path, str] = {}
ENV_OF: dict[Path, dict[str, str]] = {}


# -- against a real home ----------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, files=AREA_FILES) as farm:
        TARGET_OF[farm.area] = "demo/x86_64"
        farm.start_home()
        yield farm


def test_the_plan_is_what_the_home_records_on_the_demo_area(demo: Farm) -> None:
    for n, testpatt in enumerate(["%", "package", "unit/parser,lint", "%,~unit"]):
        agrees(demo, f"r{n}", testpatt)
    # no run directory is left behind by planning alone
    assert not (demo.area / "links" / "demo" / "x86_64" / "plan").exists()


def test_an_existing_run_shows_what_send_run_keeps(demo: Farm) -> None:
    demo.start_agent("a1")
    sent = demo.send("run", "-t", "demo/x86_64", "-r", "kept", "--testpatt", "setup,lint",
                     "--wait", "--wait-timeout", "60")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    tests = {str(t["test"]): t for t in as_json(demo.area, "plan", "-t", "demo/x86_64",
                                                "-r", "kept")}  # fmt: skip
    assert tests["setup"]["done"] == {"": "COMPLETED/PASS"}
    assert tests["lint"]["done"] == {"": "COMPLETED/PASS"}
    assert tests["compile"]["done"] == {}
    code, out, _ = mtpkt(demo.area, "plan", "-t", "demo/x86_64", "-r", "kept")
    assert code == 0
    assert "run demo/x86_64 kept exists: `send run` keeps 2 done" in out
    code, out, _ = mtpkt(demo.area, "plan", "-t", "demo/x86_64", "-r", "other")
    assert "no run demo/x86_64 other yet: every instance would run" in out
    # changed configs make COMPLETED tests STALE: a run runs them again
    (demo.area / "runconfigs.config").write_text("[default]\nGREETING changed\n")
    tests = {str(t["test"]): t for t in as_json(demo.area, "plan", "-t", "demo/x86_64",
                                                "-r", "kept")}  # fmt: skip
    assert tests["setup"]["done"] == {}
    code, out, _ = mtpkt(demo.area, "plan", "-t", "demo/x86_64", "-r", "kept")
    assert "keeps 0 done; its configs changed: COMPLETED tests run again (STALE)" in out


@pytest.fixture
def fullrun(tmp_path: Path) -> Iterator[Farm]:
    """Megatest's fullrun (a copy) and its home; its dbdir is /tmp/$USER/…, so $USER is
    this test's own."""
    user = f"mtpkt-plan-{os.getpid()}"
    area = copy_of_fullrun(tmp_path)
    (tmp_path / "logs").mkdir()
    farm = Farm(area, tmp_path / "logs")
    farm.env.update(USER=user)
    farm.env.pop("MT_TESTSUITE_NAME", None)
    farm.dbdir = Path("/tmp") / user / "db"
    TARGET_OF[area] = "ubuntu/nfs/none"
    ENV_OF[area] = {"USER": user}
    try:
        farm.start_home()
        yield farm
    finally:
        farm.stop_all()
        shutil.rmtree(Path("/tmp") / user, ignore_errors=True)


def test_the_plan_is_what_the_home_records_on_fullrun(fullrun: Farm) -> None:
    # waits (priority_10_waiton_1), items named (runfirst/winter), deferred items (test_mt_vars)
    for n, testpatt in enumerate(["priority_10_waiton_1,runfirst/winter", "test_mt_vars", "%"]):
        agrees(fullrun, f"p{n}", testpatt)
    tests = {str(t["test"]): t for t in as_json(fullrun.area, "plan", "-t", "ubuntu/nfs/none",
                                                "--testpatt", "test_mt_vars",
                                                **ENV_OF[fullrun.area])}  # fmt: skip
    assert tests["test_mt_vars"]["deferred"] is True
    assert tests["test_mt_vars"]["level"] == 2
    assert tests["runfirst"]["named"] is False
    assert len(tests["runfirst"]["items"]) == 6  # type: ignore[arg-type]


# -- the area alone -----------------------------------------------------------------------


@pytest.fixture
def area(tmp_path: Path) -> Path:
    files = {
        **FILES,
        "runconfigs.config": """
            [default]
            GREETING hello

            [linux/x86]
            TESTPATT build,unit/2
            EXTRA yes

            [linux]
            ONE part
        """,
        "tests/unit/testconfig": FILES["tests/unit/testconfig"]
        + "\n        [test_meta]\n        tags quick,unit\n        description the units\n",
    }
    return write_area(tmp_path / "area", files)


def test_plan_prints_levels_items_and_order(area: Path) -> None:
    code, out, err = mtpkt(area, "plan", "-t", "linux/x86", "--testpatt", "unit,report")
    assert code == 0, err
    assert "testpatt unit,report: 4 tests, 6 instances in 2 levels" in out
    lines = {line.split()[1]: line for line in out.splitlines()[3:] if line.strip()}
    assert lines["build"].split()[0] == "1"
    assert "waited on" in lines["build"]
    assert lines["unit"].split()[0] == "2"
    assert "3: 1, 2, 3" in lines["unit"]
    assert "broken" in lines["report"]
    assert not (area / "links").exists()  # planning leaves no run directory


def test_modepatt_takes_the_runconfigs_testpatt(area: Path) -> None:
    code, out, err = mtpkt(area, "plan", "-t", "linux/x86")
    assert code == 0, err
    assert "testpatt %: 6 tests" in out
    assert "runconfigs.config sets TESTPATT build,unit/2 for linux/x86: `send run` does" in out
    code, out, err = mtpkt(area, "plan", "-t", "linux/x86", "--modepatt", "TESTPATT")
    assert "testpatt build,unit/2 from runconfigs TESTPATT" in out
    tests = as_json(area, "plan", "-t", "linux/x86", "--modepatt", "TESTPATT")
    assert planned(tests) == {("build", ""), ("unit", "2")}
    code, _, err = mtpkt(area, "plan", "-t", "linux/x86", "--modepatt", "NOPATT")
    assert (code, err.strip()) == (
        2, "mtpkt plan: error: --modepatt NOPATT: runconfigs.config sets no NOPATT for linux/x86"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["-t", "linux"], 2, "target 'linux' does not match the area's keys OS/ARCH"),
        (["-t", "linux/x86", "--testpatt", "nosuch"], 2, "testpatt 'nosuch' matches no test"),
        (["-t", "linux/x86", "--testpatt", "unit/9"], 2, "matches no item of the tests"),
        (["-t", "linux/x86", "--testpatt", "a,", "--modepatt", "X"], 2, "not both"),
    ],
)
def test_plan_refuses_with_one_line(area: Path, args: list[str], code: int, says: str) -> None:
    got, out, err = mtpkt(area, "plan", *args)
    assert got == code, err
    assert says in err
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_plan_refuses_a_cycle_and_a_bad_config(area: Path) -> None:
    (area / "tests/build/testconfig").write_text("[ezsteps]\na true\n[requirements]\nwaiton unit\n")
    code, _, err = mtpkt(area, "plan", "-t", "linux/x86")
    assert code == 7, err
    assert "waiton forms a cycle" in err
    (area / "tests/build/testconfig").write_text("[ezsteps]\na true\n[requirements]\npriority x\n")
    code, _, err = mtpkt(area, "plan", "-t", "linux/x86")
    assert code == 7, err
    assert "testconfig:4" in err


def test_targets_lists_the_runconfigs_sections(area: Path) -> None:
    assert as_json(area, "targets") == [
        {"target": "linux", "variables": 1, "testpatt": "", "fits": False},
        {"target": "linux/x86", "variables": 2, "testpatt": "build,unit/2", "fits": True},
    ]
    code, out, err = mtpkt(area, "targets")
    assert code == 0, err
    assert "2 targets, keys OS/ARCH" in out
    assert "linux (does not fit the keys)" in out


def test_tests_defined_lists_the_area_without_a_run(area: Path) -> None:
    tests = {str(t["test"]): t for t in as_json(area, "tests", "--defined")}
    assert sorted(tests) == ["after_broken", "broken", "build", "report", "sleeper", "unit"]
    assert tests["unit"] == {
        "test": "unit", "items": 3, "itemized": True, "waiton": ["build"], "priority": 0,
        "tags": ["quick", "unit"], "description": "the units",
    }  # fmt: skip
    assert tests["build"]["items"] == 1
    assert tests["build"]["itemized"] is False
    assert tests["build"]["priority"] == 5
    code, out, err = mtpkt(area, "tests", "--defined", "--testpatt", "u%")
    assert code == 0, err
    assert "1 test defined in" in out
    assert "quick,unit" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give -t and -r (a run's records), or --defined"),
        (["--defined", "-r", "x"], "--defined lists what the area defines: it takes no -r"),
        (["--defined", "--testpatt", "zz"], "testpatt 'zz' matches no test"),
    ],
)
def test_tests_refuses_with_one_line(area: Path, args: list[str], says: str) -> None:
    code, _, err = mtpkt(area, "tests", *args)
    assert code == 2, err
    assert says in err


def test_targets_of_an_area_without_target_sections_name_the_default_section(
    tmp_path: Path,
) -> None:
    """Names and paths are printed as they are: ``[default]`` is not read as markup."""
    bare = write_area(tmp_path / "bare", FILES)
    code, out, err = mtpkt(bare, "targets")
    assert code == 0, err
    assert out.splitlines()[1] == "(any target of the keys OS/ARCH runs with [default] alone)"


def test_send_run_dry_run_prints_the_plan_and_sends_nothing(area: Path) -> None:
    """``send run --dry-run`` is ``mtpkt plan`` of that run: no home is asked (none runs)."""
    args = ("-t", "linux/x86", "-r", "dry", "--testpatt", "unit")
    code, out, err = mtpkt(area, "send", "run", *args, "--dry-run")
    assert code == 0, err
    assert out == mtpkt(area, "plan", *args)[1]
    assert "no run linux/x86 dry yet: every instance would run" in out
    assert not (area / ".mtpkt").exists()
    code, _, err = mtpkt(area, "send", "run", *args, "--dry-run", "--wait")
    assert (code, err.strip()) == (
        2, "mtpkt send: error: --dry-run sends nothing, so there is nothing to --wait for"
    )  # fmt: skip
