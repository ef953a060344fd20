"""Paths that try to leave the run tree, through a real home and agent.

Item values and testpatts that climb out are refused before anything runs;
symlinks planted in a run's directories (a test directory, an item directory,
a link inside an item, a dangling link) lead ``archive`` and ``clean`` to
refuse those tests and name them, while files outside the run tree keep
their contents and times.
"""

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.support.farm import TARGET, Farm
from tests.support.farm import send_and_finish as done

EVIL = """
    [ezsteps]
    s touch $MT_RUN_AREA_HOME/evil-ran

    [items]
    A ../../x /etc ok
"""


def files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and its mtime (ns)."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.timeout(120)
def test_paths_out_of_the_run_tree_are_refused_and_named(farm: Farm, tmp_path: Path) -> None:
    (farm.area / "tests/evil").mkdir()
    (farm.area / "tests/evil/testconfig").write_text(textwrap.dedent(EVIL).lstrip())
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "keep.txt").write_text("precious")
    (outside / "dir" / "inner.txt").write_text("also precious")
    before = files(outside)
    farm.start_home()
    farm.start_agent("alpha", slots=3)

    # Item values and testpatts that climb out: refused before anything is planned or run.
    for patt, why in (
        ("evil", "item path '../../x' would leave the run tree"),
        ("build,evil/%", "item path '../../x' would leave the run tree"),
        ("../build", "matches no test of the area"),
        ("build/../..", "matches no item of the tests it names"),
    ):
        refused = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", patt)
        assert refused.returncode == 4, refused
        assert why in refused.stderr, refused.stderr
        assert why in farm.log("home"), farm.log("home")
    assert not (farm.area / "evil-ran").exists()

    ran = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "build,unit", "--wait")
    assert ran.returncode == 0, ran
    run_root = farm.area / "links" / TARGET / "nightly"
    shutil.rmtree(run_root / "build")
    (run_root / "build").symlink_to(outside / "dir")  # a test directory that is a link out
    shutil.rmtree(run_root / "unit" / "2")
    (run_root / "unit" / "2").symlink_to(outside)  # an item directory that is a link out
    (run_root / "unit" / "1" / "escape").symlink_to(outside / "keep.txt")  # a link inside
    (run_root / "unit" / "1" / "dangling").symlink_to(tmp_path / "nothing")
    (run_root / "unit" / "3" / "same").symlink_to("out.txt")  # a link that stays inside

    archived = reason = done(farm, "archive", "-t", TARGET, "-r", "nightly", "--remove")
    assert reason.startswith("archived and removed 1 test(s): unit/3;"), reason
    for name in ("build", "unit/2"):
        assert f"run directory {run_root / name} leads out of the linktree" in reason, reason
    assert f"cannot archive {run_root / 'unit/1'}: symlink " in reason, reason  # its first link out
    assert not (run_root / "unit" / "3").exists()  # packed, with its link as a link, and removed
    assert files(outside) == before

    reason = done(farm, "clean", "-t", TARGET, "-r", "nightly")
    assert reason == (
        "removed 4 test record(s) and 1 run directory, kept 1 archive(s) in"
        f" {farm.area / '.mtpkt' / 'archive'} (--archives removes them):"
        " unit, unit/1, unit/2, unit/3;"
        f" run directory {run_root / 'build'} leads out of the linktree {farm.area / 'links'}"
    )
    assert files(outside) == before
    assert (run_root / "build").is_symlink()  # refused: left as it was, and its record kept
    assert list(farm.tests("nightly")) == [("build", "")]
    assert not (run_root / "unit").exists()  # with its items' links, removed as links
    assert sorted(os.listdir(outside)) == ["dir", "keep.txt"]
    farm.stop("home")
    for line in (archived, reason):  # each refusal is in the home's log, with its reason
        assert f": {line}\n" in farm.log("home")
