"""A test's directory on a ``[disks]`` disk, linked from the linktree, and ``[testrollup]``
after each item: planned from a small area, run by the runner as an agent runs it."""

import os
import stat
import textwrap
from pathlib import Path

from mtpkt import pkts
from mtpkt.agents.area import Area, plan_run
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.rollup import output_name
from mtpkt.agents.host.runner import TestProcess
from mtpkt.pkts.status import StatusPacket
from tests.support.farm import write_area

ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}


def area_with_disks(root: Path, disks: dict[str, Path], extra: str = "") -> Area:
    script = root / "free.sh"
    sizes = "".join(f'  "{path}") echo {n} ;;\n' for n, path in enumerate(disks.values(), 20000))
    root.mkdir(parents=True)
    script.write_text(f'#!/bin/bash\ncase "$1" in\n{sizes}  *) echo 0 ;;\nesac\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    lines = "".join(f"{name} {path}\n" for name, path in disks.items())
    config = "[fields]\nOS TEXT\n[setup]\nlinktree #{getenv MT_RUN_AREA_HOME}/lt\n"
    config += f"free-space-script {script}\n[disks]\n{lines}{extra}"
    write_area(
        root,
        {
            "megatest.config": config,
            "tests/sum/testconfig": """
                [ezsteps]
                where pwd -P > where.txt; echo "$MT_TEST_RUN_DIR" > rundir.txt

                [items]
                S a b
            """,
        },
    )
    return Area.load(root, env=ENV)


def run_all(area: Area) -> list[StatusPacket]:
    packets: list[StatusPacket] = []
    plan = plan_run(area, "linux", "r1", "%")
    for instance in plan.instances():
        outcome = TestProcess(instance.job, Reporter("node1", packets.append)).run()
        assert outcome.status is pkts.Status.PASS, outcome
    return packets


def test_a_test_runs_on_the_disk_with_most_free_space_behind_a_link(tmp_path: Path) -> None:
    """launch.scm:1421 (get-best-disk at launch), launch.scm:1173-1240: the test's directory is
    ``<disk>/<target>/<runname>/<test>``, linked from ``<linktree>/<target>/<runname>/<test>``;
    items are made inside it. The second item keeps the first one's disk (a difference: Megatest
    chooses again and re-points the link, which can hide items already run)."""
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    area = area_with_disks(tmp_path / "area", {"small": small, "big": big})
    run_all(area)
    link = area.home / "lt/linux/r1/sum"
    assert link.is_symlink()
    assert Path(os.readlink(link)) == big / "linux/r1/sum"
    for item in "ab":
        assert (big / "linux/r1/sum" / item / "where.txt").read_text().strip() == str(
            big / "linux/r1/sum" / item
        )
        assert (link / item / "rundir.txt").read_text().strip() == str(link / item)
    assert not (small / "linux").exists()


def test_no_disk_that_can_take_the_test_ends_it_incomplete_naming_the_line(
    tmp_path: Path,
) -> None:
    """launch.scm:1118-1123: Megatest stops when no disk of ``[disks]`` can take a test; here the
    instance ends INCOMPLETE with the error, naming megatest.config and the section's line."""
    area = area_with_disks(tmp_path / "area", {"gone": tmp_path / "gone"})
    plan = plan_run(area, "linux", "r1", "sum/a")
    packets: list[StatusPacket] = []
    outcome = TestProcess(plan.instances()[0].job, Reporter("n", packets.append)).run()
    assert outcome.state is pkts.State.INCOMPLETE
    assert "megatest.config:" in outcome.comment
    assert "no valid disk" in outcome.comment


def test_testrollup_runs_in_the_toplevel_directory_after_each_item(tmp_path: Path) -> None:
    """launch.scm:806-807 and tests.scm:518-525: after an item ends, ``[testrollup] <test>`` runs
    in the test's toplevel directory with its output in ``megatest-rollup-<test>.html``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    extra = textwrap.dedent("""
        [testrollup]
        sum echo "item $MT_ITEMPATH in" $(ls -d */)
    """)
    area = area_with_disks(tmp_path / "area", {"d": disk}, extra)
    run_all(area)
    summary = (area.home / "lt/linux/r1/sum" / output_name("sum")).read_text().split()
    assert summary == ["item", "b", "in", "a/", "b/"]  # the last item's run wrote it last
