"""Archives end to end (every process started from the CLI): archive --remove and --restore
keep each test's verdict, host, comment and times; ``mtpkt archives`` lists them; ``send clean
--archives`` removes them, and without it they stay."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.farm import TARGET, Farm, send_and_finish
from tests.support.procs import wait_for

NIGHTLY = ("-t", TARGET, "-r", "nightly")
THREE = "build,broken,sleeper"
RECORD = "SELECT testname, state, status, host, comment, event_time, run_duration FROM tests"


def records(farm: Farm) -> dict[str, tuple[object, ...]]:
    """Test name → its record's state, status, host, comment, event time and duration."""
    return {str(row[0]): row[1:] for row in farm.query("nightly", RECORD)}


def junit(farm: Farm, out: Path) -> str:
    made = farm.command("report", *NIGHTLY, "--junit", str(out))
    assert made.returncode == 0, made.stderr
    return out.read_text()


def listed(farm: Farm, *args: str) -> subprocess.CompletedProcess[str]:
    shown = farm.command("archives", *args)
    assert shown.returncode == 0, shown.stderr
    return shown


def three_ended(farm: Farm) -> None:
    """Run build (PASS) and broken (FAIL), then sleeper, killed (KILLED)."""
    farm.start_home()
    farm.start_agent("alpha", slots=3)
    ran = farm.send("run", *NIGHTLY, "--testpatt", "build,broken", "--wait")
    assert ran.returncode == 3, ran.stderr  # broken fails
    assert farm.send("run", *NIGHTLY, "--testpatt", "sleeper").returncode == 0
    assert wait_for(lambda: records(farm).get("sleeper", ("",))[0] == "RUNNING", 60)
    killed = farm.send("kill", *NIGHTLY, "--testpatt", "sleeper", "--grace", "1", "--wait")
    assert killed.returncode == 0, killed.stderr


@pytest.mark.timeout(240)
def test_archive_remove_and_restore_keep_every_verdict(farm: Farm, tmp_path: Path) -> None:
    three_ended(farm)
    before = records(farm)
    assert {name: record[:3] for name, record in before.items()} == {
        "build": ("COMPLETED", "PASS", "alpha"),
        "broken": ("COMPLETED", "FAIL", "alpha"),
        "sleeper": ("KILLED", "KILLED", "alpha"),
    }, before
    assert before["broken"][3] == "Failed at step second", before
    report_before = junit(farm, tmp_path / "before.xml")
    assert listed(farm).stdout == "no archives yet\n"

    reason = send_and_finish(farm, "archive", *NIGHTLY, "--testpatt", THREE, "--remove")
    assert "archived and removed 3 test(s)" in reason, reason
    archived = records(farm)
    assert {name: r[0] for name, r in archived.items()} == dict.fromkeys(before, "ARCHIVED")
    assert {name: r[1:] for name, r in archived.items()} == {
        name: r[1:] for name, r in before.items()
    }
    # The listing: each archive with its size, date and a run directory no longer there.
    shown = json.loads(listed(farm, "-r", "night%", "--json").stdout)
    assert [(a["test"], a["state"], a["rundir_exists"]) for a in shown] == [
        ("broken", "ARCHIVED", False),
        ("build", "ARCHIVED", False),
        ("sleeper", "ARCHIVED", False),
    ]
    assert all(Path(a["path"]).is_file() and a["size"] > 0 and a["files"] > 0 for a in shown)
    table = listed(farm, "--testpatt", "b%").stdout
    assert table.startswith("2 archive(s), "), table
    assert "removed" in table, table
    assert "sleeper" not in table, table
    tests = farm.command("tests", *NIGHTLY, "--json")
    assert {t["test"]: t["archived"] for t in json.loads(tests.stdout)} == dict.fromkeys(
        before, True
    )

    reason = send_and_finish(farm, "archive", *NIGHTLY, "--testpatt", THREE, "--restore")
    assert "restored 3 test(s)" in reason, reason
    assert records(farm) == before  # a KILLED test is KILLED again, a failure keeps its reason
    assert junit(farm, tmp_path / "after.xml") == report_before
    shown = json.loads(listed(farm, "--json").stdout)
    assert [a["rundir_exists"] for a in shown] == [True, True, True]


@pytest.mark.timeout(240)
def test_clean_removes_archives_only_when_asked(farm: Farm) -> None:
    three_ended(farm)
    send_and_finish(farm, "archive", *NIGHTLY, "--testpatt", THREE)
    paths = {a["test"]: Path(a["path"]) for a in json.loads(listed(farm, "--json").stdout)}
    assert all(path.is_file() for path in paths.values()), paths

    # Without --archives the archive files stay, and the journal says where.
    reason = send_and_finish(farm, "clean", *NIGHTLY, "--testpatt", "build", "--keep-records")
    assert "kept 1 archive(s) in " in reason, reason
    assert "--archives removes them" in reason, reason
    assert paths["build"].is_file()
    assert [a["test"] for a in json.loads(listed(farm, "--json").stdout)] == [
        "broken",
        "build",
        "sleeper",
    ]

    # With --keep-records: the archive file and its record go, the test's record stays.
    reason = send_and_finish(
        farm, "clean", *NIGHTLY, "--testpatt", "build", "--keep-records", "--archives"
    )
    assert "1 archive(s) removed" in reason, reason
    assert not paths["build"].exists()
    assert farm.query("nightly", "SELECT archived FROM tests WHERE testname = 'build'") == [(0,)]

    # Records and archives together; what is left is listed still.
    reason = send_and_finish(farm, "clean", *NIGHTLY, "--testpatt", "broken", "--archives")
    assert "removed 1 test record(s)" in reason, reason
    assert "1 archive(s) removed" in reason, reason
    assert not paths["broken"].exists()
    assert paths["sleeper"].is_file()
    assert [a["test"] for a in json.loads(listed(farm, "--json").stdout)] == ["sleeper"]
    assert listed(farm, "-r", "other").stdout == "no archives (-r other)\n"

    # A clean that removes the records (here the run's last ones) keeps the archive, and the
    # listing finds it from the file: before, it was on disk and listed nowhere.
    reason = send_and_finish(farm, "clean", *NIGHTLY, "--testpatt", "%")
    assert "kept 1 archive(s) in " in reason, reason
    assert farm.run_db("nightly") is None  # the run went with its last test
    (kept,) = json.loads(listed(farm, "--json").stdout)
    assert (kept["target"], kept["runname"], kept["test"], kept["item"]) == (
        TARGET, "nightly", "sleeper", ""
    )  # fmt: skip
    assert (kept["path"], kept["state"], kept["rundir"]) == (str(paths["sleeper"]), "", "")
    assert kept["size"] == paths["sleeper"].stat().st_size
    table = listed(farm).stdout.splitlines()
    assert table[3].split()[-1] == "cleaned", table  # the row's first line (the path folds)
    assert listed(farm, "-r", "night%", "-t", TARGET).stdout.startswith("1 archive(s), ")
    assert listed(farm, "-r", "other").stdout == "no archives (-r other)\n"


def test_archives_and_clean_archives_explain_themselves(farm: Farm) -> None:
    shown = farm.command("archives", "--testpatt", "a,,b")
    assert shown.returncode == 2, shown
    assert shown.stderr.count("\n") == 1, shown.stderr
    helped = farm.send("clean", "--help")
    assert "--archives" in helped.stdout
    assert "archive files stay" in helped.stdout
    no_db = farm.command("archives")
    assert no_db.returncode == 1, no_db
    assert "no run yet" in no_db.stderr, no_db
