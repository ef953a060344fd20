"""Megatest's own ``fullrun`` area (in ../shared) read as real-world input.

The expectations below are what the files say, read by eye from them. The
area is read from a copy: the shared folder is read-only, and the copy
restores the one symbolic link its git export stores as a plain file.
"""

import os
import shutil
from pathlib import Path

import pytest

from mtpkt.agents.area.config import ConfigError, read_config
from mtpkt.agents.area.model import Area, RunConfig, TestConfig

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "megatest-examples"
SHARED = EXAMPLES / "tests" / "fullrun"
"""The real folder; ``megatest-examples/fullrun`` at the top is a link to it."""
LINKED = Path("tests") / "ez_pass_linked"
"""A symbolic link in Megatest's area, a plain file holding its text in a git export."""
TARGET = "ubuntu/nfs/none"
ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}

TOPLEVEL_WAITON = (
    "exit_0 exit_1 ez_exit2_fail ez_fail ez_pass ezlog_fail ezlog_fail_then_pass ezlog_pass "
    "ezlog_warn lineitem_fail lineitem_pass logpro_required_fail manual_example neverrun "
    "priority_1 priority_10 priority_10_waiton_1 priority_3 priority_4 priority_5 priority_6 "
    "priority_7 priority_8 priority_9 runfirst singletest singletest2 sqlitespeed test_mt_vars "
    "ez_fail_quick test1 test2"
).split()

STEPS = {
    "all_toplevel": ["calcresults", "check_triggers"],
    "db_sync": ["calcresults", "showdiff"],
    "dynamic_waiton": ["listfiles"],
    "ez_exit2_fail": ["exit2", "lookithome"],
    "ez_fail": ["lookittmp", "lookithome", "lookitnada", "lookitusr"],
    "ez_fail_quick": ["lookitnada"],
    "ez_pass": ["lookittmp", "lookithome", "isrunname1", "isrunname2"],
    "ez_pass_linked": ["lookittmp", "lookithome"],  # read through the link
    "ezlog_fail": ["lookittmp", "lookithome"],
    "ezlog_fail_then_pass": ["firststep"],
    "ezlog_pass": ["lookittmp", "lookithome"],
    "ezlog_warn": ["lookittmp", "lookithome"],
    "logpro_required_fail": ["lookittmp"],
    "manual_example": ["setup"],
    "neverrun": ["idontexist"],
    "no_items": ["listfiles"],
    "special": [],
    "sqlitespeed": ["runscript.rb"],
    "test_mt_vars": [
        "lookittmp", "lookithome", "currentisblah", "bogousnotset", "altvarnotset", "empty_var",
        "vackyvar", "test-path", "varwithdollar", "emptyvars", "emptyvar_withspace",
        "emptyvar_megatest.sh",
    ],
    "testxz": ["listfiles"],
    **{f"wait_no_items{n}": ["listfiles"] for n in range(1, 5)},
}  # fmt: skip
RUNSCRIPT_TESTS = [
    "blocktestxz", "exit_0", "exit_1", "lineitem_fail", "lineitem_pass", "runfirst",
    "singletest", "singletest2", *(f"priority_{n}" for n in range(1, 11)), "priority_10_waiton_1",
]  # fmt: skip

WAITON = {
    "all_toplevel": TOPLEVEL_WAITON,
    "db_sync": TOPLEVEL_WAITON,
    "blocktestxz": ["sqlitespeed"],
    "priority_10_waiton_1": ["priority_1"],
    "singletest2": ["singletest"],
    "special": ["priority_4", "test_mt_vars"],  # #{rget TESTSTORUN}, from nfs.config
    "sqlitespeed": ["runfirst"],
    "test_mt_vars": ["runfirst"],
    "testxz": ["blocktestxz"],
    "wait_no_items1": ["no_items"],
    "wait_no_items2": ["wait_no_items1"],
    "wait_no_items3": ["wait_no_items2"],
    "wait_no_items4": ["wait_no_items3"],
}
PRIORITY = {
    "exit_1": 9, "ez_fail": 10, "ez_fail_quick": 10, "priority_10_waiton_1": 10,
    **{f"priority_{n}": n for n in range(1, 11)},
}  # fmt: skip
TOPLEVEL_MODE = {"all_toplevel", "db_sync", "special"}


def copy_of_fullrun(where: Path) -> Path:
    """The shared fullrun area copied to ``where``, writable, its linked test a link again."""
    if not (SHARED / "megatest.config").is_file():
        pytest.fail(
            f"{SHARED} is missing: the suite needs Megatest's examples in ../shared beside the"
            " checkout (see its README.md)"
        )
    copy = Path(shutil.copytree(SHARED, where / "fullrun", symlinks=True))
    for path in [copy, *copy.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)  # copied read-only, as the shared folder is
    linked = copy / LINKED
    if not linked.is_symlink():
        text = linked.read_text().strip()
        linked.unlink()
        linked.symlink_to(text)
    assert linked.resolve() == (copy / "ez_pass_linked").resolve(), linked
    return copy


@pytest.fixture(scope="module")
def fullrun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_fullrun(tmp_path_factory.mktemp("megatest"))


@pytest.fixture(scope="module")
def area(fullrun: Path) -> Area:
    return Area.load(fullrun, env=ENV)


@pytest.fixture(scope="module")
def runconfig(area: Area) -> RunConfig:
    return area.runconfig(TARGET, "nightly")


@pytest.fixture(scope="module")
def tests(area: Area, runconfig: RunConfig) -> dict[str, TestConfig]:
    env = area.base_env(TARGET, "nightly")
    return {name: area.testconfig(name, runconfig, env) for name in area.test_names()}


def scheme_uses(fullrun: Path) -> set[tuple[str, int]]:
    """Every (file, line) that uses #{scheme}, found with a plain text search."""
    found = set()
    for path in fullrun.rglob("*"):
        if path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if "#{scheme" in line and not line.lstrip().startswith("#"):
                    found.add((str(path), number))
    return found


def test_the_test_list_is_the_tests_directory(area: Area, fullrun: Path) -> None:
    assert area.test_names() == sorted(p.name for p in (fullrun / "tests").iterdir())
    assert len(area.test_names()) == 43  # ez_pass_linked among them: a link to a folder


def test_megatest_config(area: Area, fullrun: Path) -> None:
    assert area.fields == ["sysname", "fsname", "datapath"]
    assert area.max_concurrent_jobs == 250  # from configs/mt_include_1.config
    assert area.linktree == fullrun / "tmp" / "mt_links"
    assert area.runtimelim == 20 * 60
    assert area.deadtime == 600
    assert area.archive == {"useflavors": "plain", "targsize": "2G", "minspace": "10"}
    assert area.config.get("test", "VAL2") == "==>FooBar<== no spaces between Foo and Bar to pass"
    assert area.env["WRAPPEDVAR"] == "This var should have the work blah thrice: blah blah"


def test_runconfig_of_a_target(runconfig: RunConfig) -> None:
    assert runconfig.get("CURRENT") == "/tmp/nada"  # the target's section beats [default/…]
    assert runconfig.get("SOMEVAR3") == "This should show up in SOMEVAR3"
    assert runconfig.get("SOMEVAR4") == (
        "This should show up in SOMEVAR4 if the target is ubuntu/nfs/none"
    )
    assert runconfig.get("BIGBOB") == "not a useful value/bobby"
    assert runconfig.get("FREDDY") == "ubuntu/nfs"
    assert runconfig.get("VARWITHDOLLARSIGNS") == "Theann/signs/should/be/replaced/with/variable"
    assert runconfig.get("BOGOUS") is None
    assert runconfig.get("TESTSTORUN") == "priority_4 test_mt_vars"


@pytest.mark.parametrize("name", sorted(STEPS))
def test_ezsteps(tests: dict[str, TestConfig], name: str) -> None:
    assert [step.name for step in tests[name].steps()] == STEPS[name]


@pytest.mark.parametrize("name", RUNSCRIPT_TESTS)
def test_runscript_is_the_one_step(tests: dict[str, TestConfig], name: str) -> None:
    (step,) = tests[name].steps()
    assert step.name == "main.sh"
    assert step.command == "./main.sh"  # the test's own script, as Megatest runs it


def test_step_commands_are_the_rest_of_the_line(tests: dict[str, TestConfig]) -> None:
    commands = {step.name: step.command for step in tests["ez_fail"].steps()}
    assert commands["lookitnada"] == "sleep 3;ls /nada"
    # A runscript found in the test's folder runs from there (launch.scm: fullrunscript).
    assert [step.command for step in tests["sqlitespeed"].steps()] == ["./runscript.rb"]
    emptyvars = {s.name: s.command for s in tests["test_mt_vars"].steps()}["emptyvars"]
    assert emptyvars.startswith('bash -c \'if [[ $VARNOVAL == "" ]];then')


@pytest.mark.parametrize("name", sorted(set(STEPS) | set(RUNSCRIPT_TESTS)))
def test_waiton_mode_and_priority(tests: dict[str, TestConfig], name: str) -> None:
    test = tests[name]
    if name == "dynamic_waiton":  # without a run, -testpatt is #f: "" selects no test
        assert test.waiton() == []
        return
    assert test.waiton() == WAITON.get(name, [])
    assert test.mode() == {"toplevel" if name in TOPLEVEL_MODE else "normal"}
    assert test.priority() == PRIORITY.get(name, 0)


def test_items(area: Area, fullrun: Path, tests: dict[str, TestConfig], tmp_path: Path) -> None:
    env = {**area.base_env(TARGET, "nightly"), "PATH": os.environ["PATH"]}
    runfirst = tests["runfirst"].items(env, tmp_path)
    # [itemstable] rows are appended to the [items] combinations (items.scm:139-142)
    assert [item.path for item in runfirst] == ["summer", "winter", "fall", "spring", "a/1", "b/2"]
    assert runfirst[0].variables == (("SEASON", "summer"),)
    assert runfirst[-1].variables == (("BLOCK", "b"), ("TOCK", "2"))
    blocktestxz = tests["blocktestxz"].items(env, tmp_path)
    assert len(blocktestxz) == 7 * 4
    assert blocktestxz[-1].path == "STUCK/DEAD/SKIP"
    sqlitespeed = tests["sqlitespeed"].items(env, tmp_path)
    assert [item.path for item in sqlitespeed] == [f"a{c}" for c in "abcdefghi"]
    assert (tmp_path / "envfile.txt").exists()  # the [system] command ran in the run's dir
    assert tests["no_items"].items(env, tmp_path) == []  # FOO has no values
    for name in ("wait_no_items1", "dynamic_waiton", "ez_pass"):  # empty [items] or none
        assert [item.path for item in tests[name].items(env, tmp_path)] == [""]
    numnum = next(
        n
        for n, line in enumerate(
            (fullrun / "tests/test_mt_vars/testconfig").read_text().splitlines(), 1
        )
        if line.startswith("NUMNUM")
    )
    with pytest.raises(ConfigError, match=rf"test_mt_vars/testconfig:{numnum}: \[system cat "):
        tests["test_mt_vars"].items(env, tmp_path)


def test_every_scheme_use_is_evaluated(
    area: Area, fullrun: Path, runconfig: RunConfig, tests: dict[str, TestConfig]
) -> None:
    configs = [area.config, runconfig.config, *(test.config for test in tests.values())]
    assert scheme_uses(fullrun)  # there are some, and none of them failed
    assert not [origin for config in configs for origin in config.failed_uses()]
    assert area.env["WACKYVAR4"] == "18"  # (+ 5 6 7), megatest.config line 139


@pytest.mark.parametrize(
    "name", ["afs.config", "nfs.config", "common_runconfigs.config", "ez_pass_linked/testconfig"]
)
def test_other_files_load_on_their_own(fullrun: Path, name: str) -> None:
    config, _ = read_config(fullrun / name, env=ENV)
    assert config.sections
    assert not config.failed_uses()
    for path in (fullrun / "configs").iterdir():
        read_config(path, env=ENV)


def test_create_directory_makes_the_directory_and_gives_its_path(area: Area, fullrun: Path) -> None:
    """megatest.config line 38 and configs/mt_include_2.config line 2; Chicken's
    create-directory returns its path (common.scm lines 904-905 rely on it)."""
    assert area.config.get("setup", "dbdirmkdir") == "/tmp/ann//db"
    assert area.disks["disk0"] == f"{fullrun}/tmp/mt_runs"
    assert (fullrun / "tmp" / "mt_runs").is_dir()
