"""Keys mtpkt does not apply are named in a run's warning line, ``[subrun] runwait`` refused
(:mod:`mtpkt.agents.area.unapplied`; docs/area.md "Every Megatest config key").

How the line reaches ``send run --wait`` is the launcher warning's way, tested in
tests/control (the home puts it in the first NOT_STARTED record's comment).
"""

from pathlib import Path

import pytest

from mtpkt.agents.area import plan_run
from mtpkt.agents.area.config import ConfigError
from mtpkt.agents.area.unapplied import UNAPPLIED, key_warning, run_warning
from tests.area.test_scheduling_keys import area_with


def test_a_plain_area_gets_no_warning(tmp_path: Path) -> None:
    """Nothing to say when the configs set none of the keys."""
    area = area_with(tmp_path, a="[ezsteps]\ns true\n")
    plan = plan_run(area, "linux", "r1")
    assert key_warning(plan.configs, area.home) == ""
    assert run_warning(area.config, plan, area.home) == ""


def test_each_unapplied_key_is_named_once_with_where_it_is_written(tmp_path: Path) -> None:
    """launch.scm:1126-1137 (``testcopycmd`` copies the test directory), tests.scm:167 with
    runs.scm:485-559 (``waitor`` brings tests into the run): mtpkt does neither, and says so
    in one line naming the file and line of each, a key set by several testconfigs named
    once with how many more."""
    area = area_with(
        tmp_path,
        "testcopycmd cp -r TEST_SRC_PATH/. TEST_TARG_PATH/.\n",
        a="[requirements]\nwaitor c\n[ezsteps]\ns true\n",
        b="[ezsteps]\ns true\n",
        c="[requirements]\nwaitor b\n[ezsteps]\ns true\n",
    )
    line = run_warning(area.config, plan_run(area, "linux", "r1"), area.home)
    assert line.startswith("warning: ")
    assert "\n" not in line
    assert "megatest.config:6 [setup] testcopycmd: mtpkt copies the test directory" in line
    assert "tests/a/testconfig:2 [requirements] waitor (and 1 more): the tests it names" in line
    assert line.count("waitor") == 1


def test_logpro_and_waivers_are_applied_so_not_named(tmp_path: Path) -> None:
    """``[logpro]``, ``[waivers]`` and ``[waiver_rules]`` are applied (agents/host/steplogpro,
    agents/host/waivers): no warning for them."""
    area = area_with(
        tmp_path,
        a='[ezsteps]\ns true\n[logpro]\ns (expect:required in "LogFileBody" > 0 "x" #/x/)\n',
        b="[ezsteps]\ns true\n[waivers]\nw1 logpro s.log\n[waiver_rules]\nr diff %file1% %file2%\n",
    )
    assert run_warning(area.config, plan_run(area, "linux", "r1"), area.home) == ""


def test_only_the_tests_of_the_run_count(tmp_path: Path) -> None:
    """A testconfig the run does not read (a test it does not select) says nothing."""
    area = area_with(
        tmp_path, a="[ezsteps]\ns true\n", b="[requirements]\nwaitor a\n[ezsteps]\ns true\n"
    )
    assert run_warning(area.config, plan_run(area, "linux", "r1", "a"), area.home) == ""
    assert "waitor" in run_warning(area.config, plan_run(area, "linux", "r2"), area.home)


def test_a_launcher_warning_and_the_keys_share_the_line(tmp_path: Path) -> None:
    """The launcher mtpkt cannot honour (agents/area/launchers.py) and the keys: one line."""
    area = area_with(
        tmp_path,
        "[jobtools]\nlauncher remrun x\n[validvalues]\ncleanrerun-states KILLED\n",
        a="[ezsteps]\ns true\n",
    )
    line = run_warning(area.config, plan_run(area, "linux", "r1"), area.home)
    assert line.startswith("warning: launcher 'remrun x'")
    assert "; warning: not applied by mtpkt: megatest.config:9 [validvalues]" in line


def test_a_nested_run_is_refused_naming_the_line(tmp_path: Path) -> None:
    """launch.scm:327-334: ``[subrun] runwait`` is Megatest's request for a test that runs a
    whole Megatest run as its last step; mtpkt cannot, so the run is refused. Without
    ``runwait`` Megatest makes no sub-run (the manual's ``run-wait`` spelling, reference.txt
    :709, is not what the code reads), and mtpkt runs the test as Megatest does."""
    area = area_with(tmp_path, a="[ezsteps]\ns true\n[subrun]\nrunwait yes\n")
    with pytest.raises(ConfigError, match=r"tests/a/testconfig:4: \[subrun\] runwait"):
        run_warning(area.config, plan_run(area, "linux", "r1"), area.home)
    other = area_with(tmp_path / "other", a="[ezsteps]\ns true\n[subrun]\nrun-wait yes\n")
    assert run_warning(other.config, plan_run(other, "linux", "r1"), other.home) == ""


def test_the_rules_name_their_megatest_source() -> None:
    """Each warning says why in Megatest's words: a source file and line."""
    for rule in UNAPPLIED:
        assert ".scm:" in rule.instead, rule
