"""``rerunclean``, ``archive`` and ``clean`` end to end (every process started from the CLI)."""

import os
import textwrap
from pathlib import Path

import pytest

from tests.support.farm import TARGET, Farm, send_and_finish

# broken fails until the area holds a file named "fixed"; after_broken waits on it.
BROKEN = """
    [ezsteps]
    first  echo fine > first.txt
    second test -e $MT_RUN_AREA_HOME/fixed
"""
SELECTION = "%,~sleeper"
NIGHTLY = ("-t", TARGET, "-r", "nightly")


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and directory under ``root``: mode and contents (a link's target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            if path.is_symlink():
                data = os.readlink(path).encode()
            elif path.is_file():
                data = path.read_bytes()
            else:
                data = b""
            found[str(path.relative_to(root))] = (info.st_mode, data)
    return found


def steps_started(farm: Farm, test: str) -> int:
    rows = farm.query(
        "nightly",
        "SELECT count(*) FROM test_steps s JOIN tests t ON t.id = s.test_id"
        f" WHERE s.state = 'start' AND t.testname = '{test}'",
    )
    return int(str(rows[0][0]))


@pytest.mark.timeout(180)
def test_rerunclean_then_archive_and_restore_then_clean(farm: Farm) -> None:
    (farm.area / "tests/broken/testconfig").write_text(textwrap.dedent(BROKEN).lstrip())
    farm.start_home()
    farm.start_agent("alpha", slots=3)
    first = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", SELECTION, "--wait")
    assert first.returncode == 3, first  # broken FAILs
    records = farm.tests("nightly")
    assert records[("broken", "")][:2] == ("COMPLETED", "FAIL")
    assert records[("after_broken", "")][:2] == ("NOT_STARTED", "PREQ_FAIL")
    run_root = farm.area / "links" / TARGET / "nightly"
    (run_root / "build/marker").write_text("left alone")
    (run_root / "broken/marker").write_text("cleaned away")

    # (3a) rerunclean: exactly the bad tests are cleaned and run again
    (farm.area / "fixed").touch()
    again = farm.send("rerunclean", *NIGHTLY, "--testpatt", SELECTION, "--wait")
    assert again.returncode == 0, again
    records = farm.tests("nightly")
    assert {key: record[:2] for key, record in records.items()} == {
        **{key: ("COMPLETED", "PASS") for key in records},
    }
    assert steps_started(farm, "broken") == 4  # two steps, twice
    assert steps_started(farm, "after_broken") == 1  # never ran before
    assert steps_started(farm, "build") == 2  # not rerun
    assert steps_started(farm, "unit") == 3
    assert (run_root / "build/marker").read_text() == "left alone"
    assert not (run_root / "broken/marker").exists()
    assert (run_root / "after_broken/ran.txt").exists()
    # run --preclean removes the run directory of what it runs
    pre = farm.send("run", *NIGHTLY, "--testpatt", "build", "--rerun-all", "--preclean", "--wait")
    assert pre.returncode == 0, pre
    assert not (run_root / "build/marker").exists()
    assert steps_started(farm, "build") == 4

    # (3b) archive --remove, then restore: identical files come back
    before = snapshot(run_root)
    os.symlink("out.txt", run_root / "unit/2/link")
    before = snapshot(run_root)
    reason = send_and_finish(
        farm, "archive", "-t", TARGET, "-r", "nightly", "--testpatt", "build,unit", "--remove"
    )
    assert "archived and removed 4 test(s)" in reason, reason
    assert not (run_root / "build").exists()
    assert not (run_root / "unit").exists()
    records = farm.tests("nightly")
    assert records[("build", "")][:2] == ("ARCHIVED", "PASS")
    assert records[("unit", "2")][:2] == ("ARCHIVED", "PASS")
    archived = farm.query("nightly", "SELECT count(*) FROM tests WHERE archived = 1")
    assert archived == [(4,)]
    archives = farm.query("nightly", "SELECT path, sha256 FROM archives")
    assert len(archives) == 4
    assert all(Path(str(path)).is_file() and len(str(sha)) == 64 for path, sha in archives)
    reason = send_and_finish(
        farm, "archive", "-t", TARGET, "-r", "nightly", "--testpatt", "build,unit", "--restore"
    )
    assert "restored 4 test(s)" in reason, reason
    assert snapshot(run_root) == before
    assert farm.tests("nightly")[("build", "")][:2] == ("COMPLETED", "PASS")

    # (3c) clean: no directory and no record of the cleaned tests is left
    reason = send_and_finish(farm, "clean", "-t", TARGET, "-r", "nightly", "--testpatt", "unit")
    assert "removed 4 test record(s)" in reason, reason
    assert "unit/1" in reason
    assert not (run_root / "unit").exists()
    assert not [key for key in farm.tests("nightly") if key[0] == "unit"]
    assert not farm.query("nightly", "SELECT 1 FROM history WHERE testname = 'unit'")
    # requests that would find nothing to do are refused, with the reason
    for args, why in (
        (("clean", *NIGHTLY, "--testpatt", "unit"), "no test of run linux/x86 nightly matches"),
        (("archive", *NIGHTLY, "--testpatt", "broken", "--restore"), "has an archive to restore"),
        (("rerunclean", "-t", TARGET, "-r", "nosuch"), "there is no run nosuch of target"),
        (("kill", "-t", TARGET, "-r", "nosuch"), "nothing to kill"),
    ):
        refused = farm.send(*args)
        assert refused.returncode == 4, refused
        assert why in refused.stderr, refused.stderr
    send_and_finish(farm, "clean", "-t", TARGET, "-r", "nightly")
    assert not (farm.area / "links" / TARGET).exists()
    assert farm.run_db("nightly") is None  # the run went with its last test
