"""megatest.config's ``[tests-paths]``, ``[disks]``, launchers and ``[testrollup]``, read as
Megatest reads them; each test builds a small area of its own."""

import os
import stat
import textwrap
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, ConfigError, plan_run
from mtpkt.agents.area.disks import read_disks
from mtpkt.agents.area.launchers import (
    Launchers,
    is_batch,
    is_local,
    maxload,
    plan_warning,
    run_warning,
)
from tests.support.farm import write_area

ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}
FIELDS = """
    [fields]
    OS TEXT

    [setup]
    linktree #{getenv MT_RUN_AREA_HOME}/lt
"""
STEP = "[ezsteps]\nsay echo hi\n"


def area_of(root: Path, config: str, files: dict[str, str] | None = None) -> Area:
    text = textwrap.dedent(FIELDS) + textwrap.dedent(config)
    write_area(root, {"megatest.config": text, **(files or {})})
    return Area.load(root, env=ENV)


# -- [tests-paths] -------------------------------------------------------------------------


def test_tests_paths_come_before_the_area_tests_and_missing_ones_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """tests.scm:47-61: the search path is every ``[tests-paths]`` directory that exists, in
    order, then ``<area>/tests``; tests.scm:63-78: the first directory holding a test of a
    name wins, so ``shared`` comes from the extra directory; tests.scm:57-59: a missing
    directory is dropped with a warning."""
    write_area(tmp_path / "lib", {"tests/shared/testconfig": STEP, "tests/extra/testconfig": STEP})
    area = area_of(
        tmp_path / "area",
        """
        [tests-paths]
        1 ../lib/tests
        2 /no/such/dir
        """,
        {"tests/shared/testconfig": "[ezsteps]\nmine echo mine\n", "tests/own/testconfig": STEP},
    )
    assert area.test_names() == ["extra", "own", "shared"]
    assert area.test_dirs()["shared"] == tmp_path / "area" / "../lib/tests" / "shared"
    assert "problem with directory /no/such/dir, dropping it from tests path" in caplog.text
    plan = plan_run(area, "linux", "r1", "shared,extra")
    job = plan.tests["shared"].instances[0].job
    assert [step.name for step in job.steps] == ["say"]
    assert job.source_dir == tmp_path / "area" / "../lib/tests" / "shared"


# -- [disks] -------------------------------------------------------------------------------


def free_script(root: Path, sizes: dict[str, int]) -> Path:
    """A ``free-space-script`` that prints the given KiB for each disk path."""
    script = root / "free.sh"
    cases = "".join(f'  "{path}") echo {size} ;;\n' for path, size in sizes.items())
    script.write_text(f'#!/bin/bash\ncase "$1" in\n{cases}  *) echo 0 ;;\nesac\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_disk_with_most_free_space_wins_and_bad_ones_are_ignored(tmp_path: Path) -> None:
    """common.scm:1706-1734: a disk that is not a directory, not writable or not an absolute
    path counts -1; the first with the most free space (strictly more) wins; it must have more
    than minspace (launch.scm:1114-1117); free space from ``free-space-script`` when set
    (common.scm:1645-1652)."""
    a, b, c = (tmp_path / name for name in "abc")
    for disk in (a, b, c):
        disk.mkdir()
    script = free_script(tmp_path, {str(a): 500, str(b): 900, str(c): 900})
    config = f"""
        [setup]
        minspace 100
        free-space-script {script}

        [disks]
        gone /no/such/disk
        rel  relative/path
        a    {a}
        b    {b}
        c    {c}
    """
    area = area_of(tmp_path / "area", config)
    disks = read_disks(area.config, None, area.env, area.home)
    assert disks is not None
    assert disks.best().name == "b"  # 900 > 500; c's 900 is not more than b's
    assert disks.roots() == [Path("/no/such/disk"), a, b, c]


def test_no_disk_with_enough_space_is_an_error_naming_the_section(tmp_path: Path) -> None:
    """launch.scm:1118-1123: no valid disk, or none over minspace, is an error (Megatest
    exits); the default minspace is 10000 (launch.scm:1115)."""
    disk = tmp_path / "d"
    disk.mkdir()
    script = free_script(tmp_path, {str(disk): 10000})
    area = area_of(tmp_path / "area", f"[setup]\nfree-space-script {script}\n[disks]\nd {disk}\n")
    disks = read_disks(area.config, None, area.env, area.home)
    assert disks is not None
    assert disks.minspace == 10000
    with pytest.raises(ConfigError, match=r"megatest.config:\d+: no valid disk in \[disks\]"):
        disks.best()


def test_a_testconfig_disks_section_replaces_the_area_one(tmp_path: Path) -> None:
    """launch.scm:1112-1113: the testconfig's ``[disks]`` if it has one, else megatest.config's;
    a plan gives each instance its disks and accepts a test directory linked into them."""
    main, own = tmp_path / "main", tmp_path / "own"
    main.mkdir()
    own.mkdir()
    area = area_of(
        tmp_path / "area",
        f"[disks]\nd0 {main}\n",
        {"tests/plain/testconfig": STEP, "tests/special/testconfig": f"{STEP}[disks]\nx {own}\n"},
    )
    (own / "linux/r1/special").mkdir(parents=True)
    (area.home / "lt/linux/r1").mkdir(parents=True)
    (area.home / "lt/linux/r1/special").symlink_to(own / "linux/r1/special")
    plan = plan_run(area, "linux", "r1", "%")
    plain = plan.tests["plain"].instances[0].job
    special = plan.tests["special"].instances[0].job
    assert plain.disks is not None
    assert [d.name for d in plain.disks.disks] == ["d0"]
    assert special.disks is not None
    assert [d.name for d in special.disks.disks] == ["x"]
    assert special.rundir == area.home / "lt/linux/r1/special"


def test_a_test_directory_linked_out_of_linktree_and_disks_is_refused(tmp_path: Path) -> None:
    """The safety of the run tree (DESIGN: paths stay inside): a link into no listed disk is
    refused when the run is planned."""
    disk, elsewhere = tmp_path / "disk", tmp_path / "elsewhere"
    disk.mkdir()
    elsewhere.mkdir()
    area = area_of(tmp_path / "area", f"[disks]\nd0 {disk}\n", {"tests/t/testconfig": STEP})
    (area.home / "lt/linux/r1").mkdir(parents=True)
    (area.home / "lt/linux/r1/t").symlink_to(elsewhere)
    with pytest.raises(Exception, match=r"leads out of the linktree .* and its disks"):
        plan_run(area, "linux", "r1", "%")


# -- launchers ----------------------------------------------------------------------------

LAUNCHERS = """
    [jobtools]
    launcher remrun zeus
    flexi-launcher yes
    maxload 1.1

    [host-types]
    general nbfake
    remote  #{get jobtools launcher}
    local   exec

    [launchers]
    runfirst/sum% remote
    big%          nosuchtype
    %             general
"""


def test_flexi_launcher_picks_the_host_type_of_the_first_matching_pattern(tmp_path: Path) -> None:
    """common.scm:2322-2353: with flexi-launcher (not ``no``) the first ``[launchers]`` pattern
    matching test/item names the host type, whose ``[host-types]`` command is the launcher; a
    host type without one is passed over with a warning; no match falls back to
    ``[jobtools] launcher``."""
    area = area_of(tmp_path / "area", LAUNCHERS)
    launchers = Launchers(area.config, area.env, area.home)
    assert launchers.of("runfirst", "summer").command == "remrun zeus"
    assert launchers.of("runfirst", "winter").command == "nbfake"
    assert launchers.of("bigtest", "").command == "nbfake"
    assert launchers.notes == ["no launcher found for host-type 'nosuchtype' ([launchers])"]
    assert maxload(area.config, area.env, area.home) == 1.1


def test_without_flexi_launcher_jobtools_launcher_is_used(tmp_path: Path) -> None:
    """common.scm:2324-2325, 2353: flexi-launcher ``no`` (or unset) means ``[jobtools]
    launcher`` for every test; maxload defaults to 3.0 and a word turns it off
    (runs.scm:948)."""
    area = area_of(tmp_path / "area", LAUNCHERS.replace("flexi-launcher yes", "flexi-launcher no"))
    launchers = Launchers(area.config, area.env, area.home)
    assert launchers.of("runfirst", "summer").command == "remrun zeus"
    assert maxload(area_of(tmp_path / "b", "").config, ENV, tmp_path) == 3.0
    off = area_of(tmp_path / "c", "[jobtools]\nmaxload off\n")
    assert maxload(off.config, ENV, tmp_path) is None


@pytest.mark.parametrize(
    ("command", "local"),
    [
        ("nbfake", True),
        ("exec nbfake", True),
        ("/opt/megatest/bin/nbfake", True),
        ("exec", True),
        ("", True),
        ("NBFAKE_HOST=zeus nbfake", False),
        ("bsub -q normal", False),
        ("remrun zeus", False),
    ],
)
def test_local_launchers_are_megatest_own(command: str, local: bool) -> None:
    """launch.scm:1474-1481: without a launcher Megatest runs the test itself; ``nbfake``
    (utils/nbfake) runs it on this host unless ``NBFAKE_HOST`` sends it elsewhere."""
    assert is_local(command) is local


@pytest.mark.parametrize(
    ("command", "batch"),
    [
        ("sbatch", True),
        ("sbatch -p second --time=10", True),
        ("exec /usr/bin/sbatch -p x", True),
        ("bsub -q normal", True),
        ("qsub -q batch", True),
        ("condor_submit", True),
        ("nbfake", False),
        ("", False),
        ("remrun zeus", False),
        ("SBATCH_PARTITION=x sbatch", False),
    ],
)
def test_batch_launchers_are_named_by_their_submitter(command: str, batch: bool) -> None:
    """launch.scm:1407, 1474-1475: a launcher is a command prefix split at white space; its
    first word names the batch system mtpkt submits to (docs/batch.md)."""
    assert is_batch(command) is batch


def test_one_warning_line_names_each_launcher_that_cannot_be_honoured(tmp_path: Path) -> None:
    """The warning of a run (issue: one line per run naming the launcher); values are computed
    only for the launchers the run would use: an uncomputable one is named, not raised."""
    area = area_of(
        tmp_path / "area",
        LAUNCHERS,
        {"tests/runfirst/testconfig": STEP + "[items]\nS summer winter\n"},
    )
    launchers = Launchers(area.config, area.env, area.home)
    line = run_warning(launchers, [("runfirst", "summer"), ("runfirst", "winter")])
    assert "\n" not in line
    assert line.startswith("warning: launcher 'remrun zeus' (")
    assert "for 1 test instance(s)" in line
    assert "not honoured (neither local nor a batch system)" in line
    plan = plan_run(area, "linux", "r1", "%")
    assert plan_warning(area.config, plan, area.home) == line
    odd_area = area_of(tmp_path / "odd", "[jobtools]\nlauncher #{scheme (no-such-thing 1)}\n")
    odd = run_warning(Launchers(odd_area.config, ENV, tmp_path), [("oddone", "")])
    assert "launcher not computed" in odd
    assert "megatest.config" in odd
    quiet = area_of(tmp_path / "quiet", "[jobtools]\nlauncher nbfake\n")
    assert run_warning(Launchers(quiet.config, ENV, tmp_path), [("x", "")]) == ""


# -- [testrollup] -------------------------------------------------------------------------


def test_testrollup_is_given_to_the_items_of_an_itemized_test_only(tmp_path: Path) -> None:
    """tests.scm:522: ``[testrollup] <test>``; launch.scm:806-807: only for items (a test
    without items has no summary)."""
    area = area_of(
        tmp_path / "area",
        "[testrollup]\nrunfirst ls\nsingle ls\n",
        {
            "tests/runfirst/testconfig": STEP + "[items]\nS a b\n",
            "tests/single/testconfig": STEP,
        },
    )
    plan = plan_run(area, "linux", "r1", "%")
    assert {i.job.rollup for i in plan.tests["runfirst"].instances} == {"ls"}
    assert plan.tests["single"].instances[0].job.rollup == ""
