"""``megatest``'s query options (tools/mt_lists.py, tools/mt_listruns.py) run as a script runs
them: the installed ``megatest`` in the area, over real SQLite files a Store wrote."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mtpkt.agents.area.logpro import judge, load_rules
from mtpkt.store import Store
from mtpkt.store.rows import StepRow
from mtpkt.tools.mt_listruns import step_rows
from tests.support.dbs import rows
from tests.support.farm import TARGET as FARM_TARGET
from tests.support.farm import running_farm, write_area
from tests.support.storekit import END, FIELDS, START, TARGET, Sender, State, Status

pytestmark = pytest.mark.timeout(120)

MEGATEST = Path(sys.executable).parent / "megatest"
RELEASE = Path("/work/shared/megatest-examples/tests/release/tests")
"""Megatest's release checks: their logpro files judge ``-list-runs`` output."""

AREA = {
    "megatest.config": """
        [fields]
        os TEXT
        arch TEXT

        [setup]
        max_concurrent_jobs 4
    """,
    "runconfigs.config": """
        [default]
        GREETING hello

        [ubuntu/x86_64]
        CC gcc

        [ubuntu/arm]
        CC clang

        [%/arm]
        FLAGS -mneon
    """,
    "tests/runfirst/testconfig": "[ezsteps]\nfirst echo first\n",
}


def megatest(area: Path, *args: str, **env: str) -> "subprocess.CompletedProcess[str]":
    """The installed ``megatest ARGS…`` run in ``area`` as a script runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MT_")}
    return subprocess.run(
        [str(MEGATEST), *args],
        cwd=area,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def record(store: Store, sender: Sender, test: str, item: str, end: Status, at: float) -> None:
    """A test instance run from ``at`` for 12 s to COMPLETED/``end``, with two steps."""
    status = Status.PASS if end is not Status.FAIL else Status.FAIL
    store.apply(
        [
            sender.change(test, item, State.RUNNING, host="node1", ts=at),
            sender.step(test, item, "build", START, ts=at + 1),
            sender.step(test, item, "build", END, Status.PASS, ts=at + 5),
            sender.step(test, item, "check", START, ts=at + 6),
            sender.step(test, item, "check", END, status, ts=at + 11),
            sender.change(test, item, State.COMPLETED, end, host="node1", ts=at + 12),
        ]
    )


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An area with two runs of ubuntu/x86_64 and one of ubuntu/arm in its databases."""
    home = write_area(tmp_path_factory.mktemp("lists"), AREA)
    with Store(home / ".mtpkt" / "db", FIELDS, durable=False) as store:
        nightly = Sender("node1", runname="nightly")
        record(store, nightly, "runfirst", "", Status.PASS, 1000)
        record(store, nightly, "runfirst", "a/1", Status.PASS, 1000)
        record(store, nightly, "runfirst", "a/2", Status.PASS, 1020)
        record(store, nightly, "broken", "", Status.FAIL, 1040)
        store.apply([nightly.change("after", "", State.NOT_STARTED, Status.PREQ_FAIL, ts=1060)])
        store.set_rundirs(TARGET, "nightly", [("broken", "", "/lt/ubuntu/x86_64/nightly/broken")])
        record(store, Sender("node2", runname="nightly2"), "runfirst", "", Status.PASS, 2000)
        weekly = Sender("node3", target="ubuntu/arm", runname="weekly")
        record(store, weekly, "runfirst", "", Status.WARN, 3000)
    return home


def event_times(area: Path) -> dict[str, int]:
    found = rows(area / ".mtpkt" / "db" / "main.db", "SELECT runname, event_time FROM runs")
    return {str(name): int(float(str(when))) for name, when in found}


def test_list_runs_prints_megatests_layout_line_for_line(area: Path) -> None:
    """megatest.scm:1351-1436: the run line with its fields (fail_count and pass_count are
    not selected: #f), records by test name and item path reversed (db.scm:2694), details
    and steps for one that did not end PASS, WARN or NOT_STARTED."""
    done = megatest(area, "-list-runs", "nightly", "-target", TARGET)
    assert (done.returncode, done.stderr) == (0, "")
    when = event_times(area)["nightly"]
    tail = "Host: node1     "
    assert done.stdout.split("\n") == [
        f"Run: ubuntu/x86_64/nightly os: ubuntu arch: x86_64 id: 1 runname: nightly"
        f" state: COMPLETED status: PREQ_FAIL owner:  event_time: {when} comment: "
        " fail_count: #f pass_count: #f ",
        "  Test: runfirst(a/2)             State: COMPLETED       Status: PASS           "
        f" Runtime:    12s Time: 1032                   {tail}",
        "  Test: runfirst(a/1)             State: COMPLETED       Status: PASS           "
        f" Runtime:    12s Time: 1012                   {tail}",
        "  Test: runfirst                  State: COMPLETED       Status: PASS           "
        f" Runtime:    12s Time: 1012                   {tail}",
        "  Test: broken                    State: COMPLETED       Status: FAIL           "
        f" Runtime:    12s Time: 1052                   {tail}",
        "         cpuload:  -1.0",
        "         diskfree: -1",
        "         uname:    n/a",
        "         rundir:   /lt/ubuntu/x86_64/nightly/broken",
        "    Step: build                State: start      Status: n/a        Time 1041" + " " * 18,
        "    Step: build                State: end        Status: PASS       Time 1045" + " " * 18,
        "    Step: check                State: start      Status: n/a        Time 1046" + " " * 18,
        "    Step: check                State: end        Status: FAIL       Time 1051" + " " * 18,
        "  Test: after                     State: NOT_STARTED     Status: PREQ_FAIL      "
        " Runtime:     0s Time: 1060                   Host: n/a       ",
        "",
    ]


def test_megatests_release_rules_judge_the_output(area: Path) -> None:
    """tests/release/tests/test2/results.logpro (two runfirst records PASS, no other test)
    passes the output that has just those, and fails the whole run's."""
    rules = load_rules(RELEASE / "test2" / "results.logpro")
    only = megatest(area, "-list-runs", "nightly", "-target", TARGET,
                    "-testpatt", "runfirst/,runfirst/a/1")  # fmt: skip
    assert only.returncode == 0, only.stderr
    assert judge(rules, only.stdout.splitlines()).code == 0, only.stdout
    whole = megatest(area, "-list-runs", "nightly", "-target", TARGET)
    assert judge(rules, whole.stdout.splitlines()).code != 0


def run_lines(done: "subprocess.CompletedProcess[str]") -> list[str]:
    assert done.returncode == 0, done.stderr
    return [line.split(" os: ")[0] for line in done.stdout.splitlines() if line.startswith("Run:")]


def test_run_names_and_targets_are_like_patterns_with_percent_else_globs(area: Path) -> None:
    """db.scm:2405-2420: LIKE where the pattern holds %, else GLOB; runs by event_time."""
    both = ["Run: ubuntu/x86_64/nightly", "Run: ubuntu/x86_64/nightly2"]
    assert run_lines(megatest(area, "-list-runs", "night%")) == both
    assert run_lines(megatest(area, "-list-runs", "night*", "-target", TARGET)) == both
    assert run_lines(megatest(area, "-list-runs", "nightly")) == both[:1]
    assert run_lines(megatest(area, "-list-runs", "NIGHTLY")) == []  # GLOB minds case
    assert run_lines(megatest(area, "-list-runs", "%", "-target", "%/arm")) == [
        "Run: ubuntu/arm/weekly"
    ]
    # a step of a test names its own target through $MT_TARGET (common.scm:1057)
    within = megatest(area, "-list-runs", "%", MT_TARGET="ubuntu/arm")
    assert run_lines(within) == ["Run: ubuntu/arm/weekly"]


def test_state_and_status_lists_and_testpatt_choose_the_records(area: Path) -> None:
    def names(*args: str) -> list[str]:
        done = megatest(area, "-list-runs", "nightly", *args)
        assert done.returncode == 0, done.stderr
        return [line.split()[1] for line in done.stdout.splitlines() if "Test:" in line]

    assert names("-status", "FAIL,PREQ_FAIL") == ["broken", "after"]
    assert names("-state", "NOT_STARTED") == ["after"]
    assert names("-state", "COMPLETED", "-status", "FAIL") == ["broken"]
    assert names("-testpatt", "runfirst/a/%") == ["runfirst(a/2)", "runfirst(a/1)"]
    # -sort FIELD (megatest.scm:1437-1447), ties in the default order
    assert names("-sort", "event_time") == [
        "runfirst(a/1)", "runfirst", "runfirst(a/2)", "broken", "after"
    ]  # fmt: skip
    assert names("-sort", "testname") == [
        "after", "broken", "runfirst(a/2)", "runfirst(a/1)", "runfirst"
    ]  # fmt: skip


def test_list_runs_as_json(area: Path) -> None:
    done = megatest(area, "-list-runs", "nightly", "-dumpmode", "json")
    assert done.returncode == 0, done.stderr
    tree = json.loads(done.stdout)
    run = tree[TARGET]["nightly"]
    assert run["meta"]["runname"] == "nightly"
    assert run["meta"]["os"] == "ubuntu"
    assert sorted(test["testname"] for test in run["data"].values()) == [
        "after", "broken", "runfirst", "runfirst", "runfirst"
    ]  # fmt: skip


def test_list_db_targets_and_list_targets(area: Path) -> None:
    done = megatest(area, "-list-db-targets")
    assert (done.returncode, done.stdout) == (0, "ubuntu/x86_64\nubuntu/arm\n")
    done = megatest(area, "-list-db-targets", "-dumpmode", "json")
    assert json.loads(done.stdout) == {"targets": ["ubuntu/arm", "ubuntu/x86_64"]}
    for nothing in (["-list-db-targets", "-target", "debian/%"], ["-list-runs", "none%"]):
        done = megatest(area, *nothing)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # runconfigs.config's sections, sorted; the wildcard section applied, not listed
    done = megatest(area, "-list-targets")
    assert (done.returncode, done.stdout) == (0, "default\nubuntu/arm\nubuntu/x86_64\n")
    done = megatest(area, "-list-targets", "-target", "%/arm,default")
    assert (done.returncode, done.stdout) == (0, "default\nubuntu/arm\n")
    done = megatest(area, "-list-targets", "-dumpmode", "json")
    assert json.loads(done.stdout) == ["default", "ubuntu/arm", "ubuntu/x86_64"]


def test_show_keys_goes_to_stderr_as_megatests_debug_print(area: Path) -> None:
    for option in ("-show-keys", "-showkeys"):
        done = megatest(area, option)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "Keys: os, arch\n")


def test_show_runconfig_and_show_config(area: Path) -> None:
    done = megatest(area, "-show-runconfig", "-target", "ubuntu/arm")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "\n[default]\nGREETING hello\n\n[ubuntu/arm]\nCC clang\nFLAGS -mneon\n"
    value = megatest(area, "-show-runconfig", "-reqtarg", "ubuntu/arm", "-section", "ubuntu/arm",
                     "-var", "GREETING")  # fmt: skip
    assert value.stdout == "hello\n"  # from [default], as megatest.scm:966-967
    json_mode = megatest(area, "-show-runconfig", "-target", TARGET, "-dumpmode", "json")
    assert json.loads(json_mode.stdout) == {"default": {"GREETING": "hello"}, TARGET: {"CC": "gcc"}}

    value = megatest(area, "-show-config", "-section", "setup", "-var", "max_concurrent_jobs")
    assert (value.returncode, value.stdout) == (0, "4\n")
    ini = megatest(area, "-show-config", "-dumpmode", "ini")
    assert ini.stdout == "\n[fields]\nos TEXT\narch TEXT\n\n[setup]\nmax_concurrent_jobs 4\n"
    sexp = megatest(area, "-show-config")
    assert sexp.stdout == (
        '(("fields" ("os" "TEXT") ("arch" "TEXT"))\n ("setup" ("max_concurrent_jobs" "4")))\n'
    )


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["-server", "-"], "-server"),
        (["-list-servers"], "-list-servers"),
        (["-kill-servers"], "-kill-servers"),
        (["-clean-cache"], "-clean-cache"),
        (["-no-cache", "-transport", "http", "-debug", "2"], "-no-cache"),
    ],
)
def test_options_without_meaning_say_what_replaces_them(
    tmp_path: Path, args: list[str], word: str
) -> None:
    done = megatest(tmp_path, *args)  # no area needed
    assert (done.returncode, done.stderr) == (0, "")
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"megatest: {word}: mtpkt ")


def test_an_area_without_runs_lists_nothing(tmp_path: Path) -> None:
    home = write_area(tmp_path, AREA)
    for args in (["-list-runs", "%"], ["-list-db-targets"]):
        done = megatest(home, *args)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize(
    "args",
    [
        ["-list-runs"],  # no value
        ["-show-runconfig"],  # no target
        ["-list-runs", "%", "-target", "ubuntu"],  # one part for two keys
        ["-show-runconfig", "-target", "ubuntu/x86_64/extra"],
        ["-list-targets", "-dumpmode", "yaml"],
        ["-list-runs", "%", "-frobnicate"],
        ["-list-runs", "%", "-sort", "cpu"],
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(area: Path, args: list[str]) -> None:
    done = megatest(area, *args)
    assert done.returncode != 0
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("megatest: ")


def test_outside_an_area_is_one_line(tmp_path: Path) -> None:
    done = megatest(tmp_path, "-list-runs", "%")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"megatest: {tmp_path} is not a Megatest area (no megatest.config):"
        " cd into the area or set MT_RUN_AREA_HOME\n"
    )


def test_step_rows_are_kept_as_megatests_insert_or_replace_keeps_them() -> None:
    """db.scm:3185 and 1310: one row per test, step name and state; a row written again
    replaces the old one and takes a new id (so it comes last); DELETED rows are left out."""

    def row(number: int, test: int, name: str, state: str, status: str = "n/a") -> StepRow:
        return StepRow(id=number, test_id=test, testname="t", item_path="", stepname=name,
                       state=state, status=status, event_time=float(number), comment="",
                       logfile="")  # fmt: skip

    first = [row(1, 7, "build", "start"), row(2, 7, "build", "end", "PASS")]
    first += [row(3, 7, "check", "start"), row(4, 7, "check", "end", "FAIL")]
    again = [row(5, 7, "build", "start"), row(6, 7, "build", "end", "FAIL")]
    other = [row(8, 9, "x", "start", "DELETED")]
    kept = step_rows([*first, *again, *other])
    assert [(r.stepname, r.state, r.status) for r in kept[7]] == [
        ("check", "start", "n/a"),
        ("check", "end", "FAIL"),
        ("build", "start", "n/a"),
        ("build", "end", "FAIL"),
    ]
    assert 9 not in kept


@pytest.mark.timeout(180)
def test_a_run_of_a_real_farm_listed_as_megatest_lists_it(tmp_path: Path) -> None:
    """A run the home and an agent made: the records, their order, the details and steps of
    the one that failed, and a release rule file's check of a test's line."""
    with running_farm(tmp_path) as farm:
        farm.start_home()
        farm.start_agent("a1")
        sent = farm.send("run", "-t", FARM_TARGET, "-r", "r1", "--testpatt", "%,~sleeper", "--wait")
        assert sent.returncode == 3, sent.stderr  # `broken` fails
        done = megatest(farm.area, "-list-runs", "r1", "-target", FARM_TARGET)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Run: {FARM_TARGET}/r1 OS: linux ARCH: x86 id: 1 runname: r1 ")
    tests = [line.split()[1] for line in lines if line.startswith("  Test: ")]
    assert tests == [
        "unit(3)", "unit(2)", "unit(1)", "unit", "report", "build", "broken", "after_broken"
    ]  # fmt: skip
    at = lines.index(next(line for line in lines if line.startswith("  Test: broken ")))
    assert lines[at + 1 : at + 4] == [
        "         cpuload:  -1.0",
        "         diskfree: -1",
        "         uname:    n/a",
    ]
    assert lines[at + 4].startswith("         rundir:   /")
    steps = [line.split()[1:7:2] for line in lines[at + 5 : at + 9]]
    assert steps == [
        ["first", "start", "n/a"],
        ["first", "end", "PASS"],
        ["second", "start", "n/a"],
        ["second", "end", "FAIL"],
    ]
    # Megatest's release rule for a test that passed (release/tests/*/*.logpro)
    rule = r"^\s+Test: build(\(.*|\s+)\s+State: COMPLETED\s+Status: PASS\s+Runtime:\s+(\d+)s"
    assert sum(bool(re.search(rule, line)) for line in lines) == 1
