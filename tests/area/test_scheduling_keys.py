"""Megatest's scheduling keys as a run's plan reads them: ``[skip]``, ``[jobgroups]`` and a
test's jobgroup, ``[setup] launch-delay``, ``reruns``, ``allow-auto-rerun`` and ``run-wait``.

How the home applies them is tested in tests/control/test_scheduling.py.
"""

import logging
import os
import textwrap
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, plan_run
from mtpkt.agents.area.config import ConfigError
from mtpkt.agents.area.scheduling import AutoRerun, Schedule, read_jobgroup, read_schedule
from mtpkt.agents.area.skip import Skip, hms_seconds, read_skip
from tests.area.test_fullrun import ENV, copy_of_fullrun
from tests.support.farm import write_area

MEGATEST = """
    [fields]
    OS TEXT

    [setup]
    linktree #{getenv MT_RUN_AREA_HOME}/links
"""


def area_with(tmp_path: Path, setup: str = "", **testconfigs: str) -> Area:
    """An area with ``setup`` added to its megatest.config and a test of each testconfig."""
    megatest = textwrap.dedent(MEGATEST) + textwrap.dedent(setup)
    files = {"megatest.config": megatest, "runconfigs.config": "[default]\n"}
    files |= {f"tests/{name}/testconfig": text for name, text in testconfigs.items()}
    return Area.load(write_area(tmp_path / "area", files), env={"PATH": os.environ["PATH"]})


def test_hms_strings_count_only_words_of_a_number_and_one_unit() -> None:
    """common.scm:1868-1890: each ``\\w+`` word must be digits and one of ``smhdwMy``; others
    count nothing (so ``rundelay 90`` is no delay at all, and ``1h30m`` neither)."""
    assert hms_seconds("10m 5s") == (605, [])
    assert hms_seconds("15m 15s") == (915, [])
    assert hms_seconds("1d 1h 1m 10s") == (90070, [])
    assert hms_seconds("1M 1y 1w") == (2628000 + 31536000 + 604800, [])
    assert hms_seconds("90") == (0, ["90"])
    assert hms_seconds("1h30m") == (0, ["1h30m"])


def test_skip_tries_only_its_first_key_in_megatests_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """runs.scm:1780-1802: one ``cond`` over prevrunning, fileexists, rundelay: the first key
    the section has is the only one tried, whatever its value (manual reference.txt:461-472:
    "with *any* value"); a key Megatest does not know is never read. mtpkt names both in a
    warning. A relative fileexists path is taken from the test's directory, the runner's
    working directory then (runs.scm:1720-1724)."""
    area = area_with(
        tmp_path,
        both="[ezsteps]\ns true\n[skip]\nrundelay 10m 5s\nfileexists stop.flag\nwhenever x\n",
        prev="[ezsteps]\ns true\n[skip]\nprevrunning #f\n",
        delay="[ezsteps]\ns true\n[skip]\nrundelay 90\n",
        none="[ezsteps]\ns true\n",
    )
    runconfig = area.runconfig("linux")
    env = area.base_env("linux", "r1")
    read = {name: area.testconfig(name, runconfig, env) for name in area.test_names()}
    with caplog.at_level(logging.WARNING):
        rules = {name: read_skip(test.config, env, test.directory) for name, test in read.items()}
    both = rules["both"]
    assert both is not None
    assert (both.key, both.value, both.path) == (
        "fileexists",
        "stop.flag",
        area.home / "tests" / "both" / "stop.flag",
    )
    assert both.origin.line == 5
    assert rules["prev"] == Skip("prevrunning", "#f", rules["prev"].origin)  # type: ignore[union-attr]
    assert rules["delay"] is not None
    assert (rules["delay"].key, rules["delay"].seconds) == ("rundelay", 0.0)
    assert rules["none"] is None
    text = caplog.text
    assert "testconfig:4: [skip] rundelay is not used: fileexists comes first" in text
    assert "testconfig:6: [skip] whenever is not used: not one of Megatest's" in text
    assert "[skip] rundelay '90': 90 count(s) nothing" in text


def test_the_scheduling_keys_of_megatest_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """launch.scm:1338-1345 (launch-delay, a number: configf.scm:512-520), runs.scm:203-231
    ([jobgroups]: a limit that is no number is no limit), runs.scm:338-354 (reruns can only
    lower the run count of 1), runs.scm:453-462 with db.scm:2798-2815 (allow-auto-rerun:
    STATE/STATUS split at "/", the state always compared, so ``/INCOMPLETE`` matches no
    record; a STATE alone matches any status), runs.scm:1579-1580 (run-wait)."""
    setup = """
        launch-delay 0. 5
        reruns 5
        run-wait yes
        allow-auto-rerun /INCOMPLETE KILLED COMPLETED/FAIL

        [jobgroups]
        sqlite3 6
        slow lots
    """
    area = area_with(tmp_path, setup)
    with caplog.at_level(logging.WARNING):
        schedule = read_schedule(area.config, area.env, area.home)
    assert schedule == Schedule(
        launch_delay=0.5,
        jobgroups={"sqlite3": 6.0},
        second_pass=True,
        auto_rerun=(
            AutoRerun("", "INCOMPLETE"),
            AutoRerun("KILLED", None),
            AutoRerun("COMPLETED", "FAIL"),
        ),
        run_wait=True,
    )
    assert not schedule.auto_reruns("INCOMPLETE", "INCOMPLETE")
    assert schedule.auto_reruns("KILLED", "KILLED")
    assert schedule.auto_reruns("COMPLETED", "FAIL")
    assert not schedule.auto_reruns("COMPLETED", "PASS")
    assert "[jobgroups] slow 'lots' is not a number: no limit" in caplog.text
    assert "allow-auto-rerun /INCOMPLETE matches no record (an empty state)" in caplog.text
    assert read_schedule(area_with(tmp_path / "b").config, {}, tmp_path) == Schedule()
    quiet = area_with(tmp_path / "c", "reruns 0\n")
    assert not read_schedule(quiet.config, {}, tmp_path).second_pass


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("launch-delay soon\n", r"megatest.config:6: launch-delay 'soon' is not a number"),
        (
            "[jobgroups]\nnone 0\n",
            r"megatest.config:7: \[jobgroups\] none 0: no test of the group could ever launch",
        ),
    ],
)
def test_a_delay_that_is_no_number_or_a_group_that_can_never_launch_is_refused(
    tmp_path: Path, setup: str, message: str
) -> None:
    """configf.scm:512-520: Megatest prints an error for a launch-delay that is no number
    and goes on with it; runs.scm:226-231: a limit of 0 never lets a test of the group start
    (Megatest waits for ever). Both are errors naming the line."""
    area = area_with(tmp_path, setup)
    with pytest.raises(ConfigError, match=message):
        read_schedule(area.config, area.env, area.home)


def test_a_tests_jobgroup_is_its_test_meta_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """runs.scm:1345: ``(config-lookup tconfig "test_meta" "jobgroup")`` (also the manual,
    howto.txt:91-106); a jobgroup under [requirements] is not read by Megatest: named in a
    warning."""
    area = area_with(
        tmp_path,
        meta="[ezsteps]\ns true\n[test_meta]\njobgroup sqlite3\n",
        req="[ezsteps]\ns true\n[requirements]\njobgroup sqlite3\n",
    )
    runconfig = area.runconfig("linux")
    env = area.base_env("linux", "r1")
    with caplog.at_level(logging.WARNING):
        groups = {
            name: read_jobgroup(area.testconfig(name, runconfig, env).config)
            for name in ("meta", "req")
        }
    assert groups == {"meta": "sqlite3", "req": ""}
    assert "req/testconfig:4: [requirements] jobgroup is not used" in caplog.text


def test_a_plan_carries_the_keys(tmp_path: Path) -> None:
    area = area_with(
        tmp_path,
        "launch-delay 2\n[jobgroups]\ng 1\n",
        a="[ezsteps]\ns true\n[skip]\nprevrunning x\n[test_meta]\njobgroup g\n",
    )
    plan = plan_run(area, "linux", "r1", "a")
    assert plan.schedule.launch_delay == 2.0
    assert plan.schedule.jobgroups == {"g": 1.0}
    assert plan.tests["a"].jobgroup == "g"
    skip = plan.tests["a"].skip
    assert skip is not None
    assert (skip.key, skip.value) == ("prevrunning", "x")


def test_fullruns_scheduling_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Megatest's fullrun area (megatest.config:52-107, 202-210): launch-delay 0, run-wait yes,
    ``allow-auto-rerun /INCOMPLETE /ZERO_ITEMS`` (an empty state each: they match no record
    in Megatest, db.scm:2802-2805), jobgroups sqlite3 6 and blockz 10 given by [test_meta]
    (priority_1 … priority_4, sqlitespeed; blocktestxz); priority_5 skips while it runs
    elsewhere, priority_7 for 10m 5s after a run."""
    fullrun = copy_of_fullrun(tmp_path)
    area = Area.load(fullrun, env=ENV)
    with caplog.at_level(logging.WARNING):
        schedule = read_schedule(area.config, area.env, area.home)
    assert schedule.launch_delay == 0.0
    assert schedule.run_wait
    assert schedule.second_pass
    assert dict(schedule.jobgroups) == {"sqlite3": 6.0, "blockz": 10.0}
    assert schedule.auto_rerun == (AutoRerun("", "INCOMPLETE"), AutoRerun("", "ZERO_ITEMS"))
    runconfig = area.runconfig("ubuntu/nfs/none", "r1")
    env = area.base_env("ubuntu/nfs/none", "r1")
    read = {name: area.testconfig(name, runconfig, env) for name in area.test_names()}
    groups = {name: read_jobgroup(test.config) for name, test in read.items()}
    assert {name for name, group in groups.items() if group == "sqlite3"} == {
        "priority_1", "priority_2", "priority_3", "priority_4", "sqlitespeed",
    }  # fmt: skip
    assert {name for name, group in groups.items() if group == "blockz"} == {"blocktestxz"}
    skips = {
        name: rule
        for name, test in read.items()
        if (rule := read_skip(test.config, env, test.directory)) is not None
    }
    assert {name: (rule.key, rule.seconds) for name, rule in skips.items()} == {
        "priority_5": ("prevrunning", 0.0),
        "priority_7": ("rundelay", 605.0),
    }
