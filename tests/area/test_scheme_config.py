"""``#{scheme …}`` in configs as Megatest evaluates it, and configs read anew for each run.

Megatest evaluates ``#{scheme code}`` as ``((lambda (ht) code) config)``
(``configf.scm`` lines 100 and 130) and writes the value into the line with
``conc`` (line 138): a string as it is, a number in decimal, ``#t``/``#f``,
a list as ``display`` writes it. Every use in Megatest's ``fullrun`` area is
evaluated here as Megatest would; the expectations are read from its source.
"""

import os
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, ConfigError, plan_run
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.area.scheme import RunArgs, SchemeContext, SchemeError, evaluate_config
from mtpkt.agents.area.scheme.context import filter_test_names
from mtpkt.agents.home.books import make_task
from mtpkt.agents.host.plans import PlanCache
from mtpkt.pkts import Action
from tests.area.test_fullrun import ENV, TARGET, copy_of_fullrun
from tests.support.farm import write_area

RUN = RunArgs(TARGET, "r1", "%")


@pytest.fixture(scope="module")
def fullrun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_fullrun(tmp_path_factory.mktemp("scheme"))


def scheme(code: str, cwd: Path = Path("/"), **env: str) -> str:
    return evaluate_config(code, SchemeContext(), env=env, where=("t.config", 1), effects_in=cwd)


# -- each use in fullrun ------------------------------------------------------------------------


def test_a_sum_is_written_in_decimal(fullrun: Path) -> None:
    """megatest.config line 139: ``WACKYVAR4 #{scheme (+ 5 6 7)}``."""
    assert Area.load(fullrun, env=ENV).env["WACKYVAR4"] == "18"


def test_args_get_arg_gives_the_runs_target_and_f_without_a_run(fullrun: Path) -> None:
    """megatest.config line 141 and runconfigs.config line 17: ``(args:get-arg "-target")``
    is the run's ``-target``; a Megatest command without one gets #f, which ``conc``
    writes as ``#f``."""
    area = Area.load(fullrun, env=ENV)
    assert area.env["WACKYVAR6"] == "#f"
    assert area.runconfig(TARGET, "r1").get("WACKYVAR1") == "#f"
    in_run = area.for_run(RUN)
    assert in_run.env["WACKYVAR6"] == TARGET
    assert in_run.runconfig(TARGET, "r1").get("WACKYVAR1") == TARGET


@pytest.mark.parametrize(
    ("datapath", "launcher", "ltest"),
    [
        (None, "nbfake", "sleeprunner"),  # unset: (conc #f) is "#f", the else branch
        ("none", "nbfake", "nbfake"),
        ("sleeprunner", "sleeprunner", "sleeprunner"),
        ("other", "nbfake", "sleeprunner"),
    ],
)
def test_case_on_a_symbol_of_an_environment_variable(
    fullrun: Path, datapath: str | None, launcher: str, ltest: str
) -> None:
    """megatest.config lines 249 and 273: ``(case (string->symbol (conc (getenv
    "datapath"))) ((none) "nbfake") …)``, continued over lines with ``\\``."""
    env = ENV if datapath is None else {**ENV, "datapath": datapath}
    area = Area.load(fullrun, env=env)
    assert area.config.get("jobtools", "launcher") == launcher
    assert area.config.get("test", "ltest") == ltest


def test_case_with_openlava_gives_the_bsub_line(fullrun: Path) -> None:
    area = Area.load(fullrun, env={**ENV, "datapath": "openlava"})
    expected = "bsub -o $MT_LINKTREE/$MT_TARGET/$MT_RUNNAME.$MT_TESTNAME-$MT_ITEM_PATH.log"
    assert area.config.get("jobtools", "launcher") == expected
    assert area.config.get("test", "ltest") == expected


def test_create_directory_with_parents_makes_the_path_and_returns_it(
    fullrun: Path, tmp_path: Path
) -> None:
    """configs/mt_include_2.config line 2 and megatest.config line 38:
    ``(create-directory "…" #t)`` returns its path (``common.scm`` lines 904-905 use it)."""
    area = Area.load(fullrun, env=ENV)
    assert area.disks["disk0"] == f"{fullrun}/tmp/mt_runs"
    made = tmp_path / "a" / "b"
    assert scheme(f'(create-directory "{made}" #t)') == str(made)
    assert scheme(f'(create-directory "{made}" #t)') == str(made)  # again: no error
    with pytest.raises(SchemeError, match=r"cannot create directory .*: File exists"):
        scheme(f'(create-directory "{made}")')  # without parents, as Chicken 4's mkdir
    with pytest.raises(SchemeError, match="not allowed here"):
        evaluate_config(
            f'(create-directory "{tmp_path}/c")', SchemeContext(), env={},
            where=("t.config", 1), effects_in=None,
        )  # fmt: skip
    assert not (tmp_path / "c").exists()
    assert scheme('(create-directory "rel/dir" #t)', cwd=tmp_path) == "rel/dir"
    assert (tmp_path / "rel" / "dir").is_dir()  # where the read runs its commands


def test_dynamic_waiton_is_the_tests_the_runs_testpatt_selects(fullrun: Path) -> None:
    """tests/dynamic_waiton/testconfig line 5: the area's tests (``tests:get-all``)
    filtered by ``-runtests`` or ``-testpatt`` (``tests.scm`` line 87), joined by spaces."""
    area = Area.load(fullrun, env=ENV)
    names = area.test_names()

    def waiton(testpatt: str) -> list[str]:
        run = area.for_run(RunArgs(TARGET, "r1", testpatt))
        runconfig = run.runconfig(TARGET, "r1")
        test = run.testconfig("dynamic_waiton", runconfig, run.base_env(TARGET, "r1"))
        return sorted(test.waiton())

    assert waiton("%") == names
    assert waiton("EZ_%,test_mt_vars/%") == sorted(
        [n for n in names if n.startswith("ez_")] + ["test_mt_vars"]
    )
    run = area.testconfig("dynamic_waiton", area.runconfig(TARGET, "r1"), area.env)
    assert run.waiton() == []  # no run: (or #f #f "") is "", which selects no test


def test_db_dbfile_path_is_the_areas_database_directory(fullrun: Path) -> None:
    """tests/db_sync/testconfig line 3: ``(db:dbfile-path #f)``. Megatest gives its
    per-user cache (``common.scm`` line 665); mtpkt the area's ``[setup] dbdir``."""
    area = Area.load(fullrun, env=ENV).for_run(RUN)
    test = area.testconfig("db_sync", area.runconfig(TARGET, "r1"), area.env)
    assert test.pre_launch_env()["MT_DBDIR"] == str(area.dbdir) == "/tmp/ann/db"


def test_fullruns_configs_read_without_error_for_a_run(fullrun: Path) -> None:
    area = Area.load(fullrun, env=ENV).for_run(RUN)
    runconfig = area.runconfig(TARGET, "r1")
    env = {**area.base_env(TARGET, "r1"), **runconfig.exported(area.env, fullrun)}
    for name in area.test_names():
        config = area.testconfig(name, runconfig, env).config
        assert not config.failed_uses(), name


# -- Megatest's testpatt match ------------------------------------------------------------------

NAMES = ["ez_pass", "ez_fail", "EZ_upper", "test_mt_vars", "runfirst", "ezXpass"]


@pytest.mark.parametrize(
    ("testpatt", "chosen"),
    [
        ("%", NAMES),
        ("", []),  # tests.scm line 284: no pattern, no match
        ("ez_%", ["ez_pass", "ez_fail", "EZ_upper"]),  # with %: case-insensitive
        ("ez_pass", ["ez_pass"]),
        ("EZ_PASS", []),  # without %: case-sensitive
        ("ez*", ["ez_pass", "ez_fail", "ezXpass"]),  # * is a wildcard when there is no %
        ("ez.pass", ["ez_pass", "ezXpass"]),  # the rest is a regular expression
        ("~ez%", ["test_mt_vars", "runfirst"]),  # ~ negates one pattern
        ("runfirst/winter/%,,test_mt_vars", ["test_mt_vars", "runfirst"]),  # the test part
        ("%ez%,%vars", [*NAMES[:4], "ezXpass"]),
    ],
)
def test_filter_test_names_matches_as_megatest(testpatt: str, chosen: list[str]) -> None:
    """``tests:filter-test-names`` (tests.scm line 87) with ``tests:match`` (line 281) and
    ``tests:glob-like-match`` (line 267): ``string-substitute … #f`` replaces every ``%``
    (Chicken's regex unit: a non-numeric mode substitutes all matches)."""
    assert filter_test_names(NAMES, testpatt) == [n for n in NAMES if n in chosen]


def test_a_testpatt_that_is_no_regular_expression_is_an_error() -> None:
    with pytest.raises(SchemeError, match=r"testpatt 'ez\[' is not a valid pattern"):
        scheme('(tests:filter-test-names (list "a") "ez[")')


# -- read per run -------------------------------------------------------------------------------

AREA = {
    "megatest.config": """
        [fields]
        OS TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/links
    """,
    "tests/a1/testconfig": "[ezsteps]\nstep true\n",
    "tests/a2/testconfig": "[ezsteps]\nstep true\n",
    "tests/b/testconfig": "[ezsteps]\nstep true\n",
    "tests/dyn/testconfig": """
        [ezsteps]
        step true

        [requirements]
        waiton #{scheme (string-intersperse \\
                  (filter (lambda (n) (not (string=? n "dyn"))) \\
                    (tests:filter-test-names (hash-table-keys (tests:get-all)) \\
                                             (args:get-arg "-testpatt"))))}

        [items]
        SCOPE #{scheme (if (string=? (args:get-arg "-testpatt") "%") "all" "some")}
    """,
}


@pytest.fixture
def small(tmp_path: Path) -> Area:
    root = write_area(tmp_path / "area", AREA)
    return Area.load(root, env={"PATH": os.environ["PATH"]})


def test_a_plan_reads_megatest_config_as_it_is_now(small: Area) -> None:
    config = small.home / "megatest.config"
    config.write_text(config.read_text().replace("/links", "/elsewhere"))
    plan = plan_run(small, "linux", "r1", "b")
    assert plan.run_root == small.home / "elsewhere" / "linux" / "r1"
    text = config.read_text() + "[env-override]\nX #{scheme (car '())}\n"
    config.write_text(text)
    line = len(text.splitlines())
    with pytest.raises(ConfigError, match=rf"^{config}:{line}: #\{{scheme\}}: car of the empty"):
        plan_run(small, "linux", "r1", "b")


def test_home_and_agent_read_a_test_with_the_runs_testpatt(small: Area) -> None:
    """The home plans with the run's testpatt; an agent plans the one test it was given,
    with the run's testpatt from the task, and finds the same instances."""
    home = plan_run(small, "linux", "r1", "a%,dyn")
    assert home.tests["dyn"].waiton == ("a1", "a2")
    assert [i.ref.item for i in home.tests["dyn"].instances] == ["some"]
    ref = TestRef("linux", "r1", "dyn", "some")
    task = make_task(Action.RUN, ref, b"L" * 16, testpatt="a%,dyn")
    found = PlanCache(small, agent="a1").instance(task, ref)
    assert not isinstance(found, str), found
    assert found.job == home.tests["dyn"].instances[0].job
    everything = plan_run(small, "linux", "r2", "%")
    assert everything.tests["dyn"].waiton == ("a1", "a2", "b")
    assert [i.ref.item for i in everything.tests["dyn"].instances] == ["all"]
