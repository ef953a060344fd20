"""``megatest`` run management, run the way a script runs it (issue 19, acceptance 2-4):
each option against a real home and agent, its effect checked in the databases and in
its output, and bad input refused in one line with Megatest's exit code, nothing run.

Megatest's rules cited: runs.scm:2314-2361 (target and run name, exit 3; ``-reqtarg``),
megatest.scm:1020-1052 (``-testpatt`` for actions on runs, exit 3), common.scm:978-995
(``TESTPATT`` from runconfigs), runs.scm:1959-2182 (``-remove-runs``, ``-set-state-status``
with ``:state``/``:status``).
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.pkts import State
from mtpkt.pkts.status import StatusChange
from tests.support.farm import Farm, running_farm
from tests.support.procs import wait_for

MEGATEST = Path(sys.executable).parent / "megatest"
TARGET = "ubuntu/x86_64"
NAP = f"4019.{os.getpid():07d}"
FILES = {
    "megatest.config": """
        [fields]
        OS TEXT
        ARCH TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/links
        max_concurrent_jobs 8
    """,
    "runconfigs.config": f"""
        [default]
        GREETING hello
        NAPTIME 0

        [ubuntu/slow]
        NAPTIME {NAP}

        [ubuntu/x86_64]
        FLAVOUR plain

        [ubuntu/arm]
        TESTPATT pass1
        QUICK fail1
    """,
    "tests/pass1/testconfig": """
        [ezsteps]
        hello echo $GREETING > out.txt

        [test_meta]
        tags quick,first
    """,
    "tests/fail1/testconfig": """
        [ezsteps]
        oops echo failing; exit 1
    """,
    "tests/items1/testconfig": """
        [ezsteps]
        show echo item $V

        [test_meta]
        tags slow

        [items]
        V a b
    """,
    "tests/napper/testconfig": """
        [ezsteps]
        nap sleep $NAPTIME
    """,
}
ON_R = ["-target", TARGET, "-runname", "r", "-testpatt", "%"]
"""Every test of run r."""
EVERY = "pass1,fail1,items1"
"""The tests but napper (which sleeps until it is killed on target ubuntu/slow)."""
SLOW = "ubuntu/slow"


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, (NAP,), files=FILES) as farm:
        farm.env.pop("MT_RUN_AREA_HOME")  # scripts find the area from where they run
        farm.start_home()
        farm.start_agent("a1", slots=4)
        yield farm


def megatest(
    farm: Farm, *args: str, timeout: float = 120, answer: str | None = None
) -> "subprocess.CompletedProcess[str]":
    """``megatest ARGS…`` in the area, as a script runs it (no stdin, or ``answer`` on it)."""
    return subprocess.run(
        [str(MEGATEST), *args],
        cwd=farm.area,
        env=farm.env,
        input=answer,
        stdin=subprocess.DEVNULL if answer is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ends(farm: Farm, runname: str) -> dict[str, tuple[str, str]]:
    """``test`` or ``test/item`` → (state, status)."""
    return {
        f"{test}/{item}" if item else test: (state, status)
        for (test, item), (state, status, _) in farm.tests(runname).items()
    }


def journal_size(farm: Farm) -> int:
    return int(str(farm.main_query("SELECT count(*) FROM journal")[0][0]))


# -- a script written for Megatest -------------------------------------------------------------


def test_a_script_written_for_megatest_works_unchanged(farm: Farm) -> None:
    """Acceptance 3: ``-run … -runwait`` then ``-list-runs``, exit codes as Megatest's (0 even
    though a test FAILs: verdicts are read from -list-runs)."""
    ran = megatest(farm, "-run", "-target", TARGET, "-runname", "nightly",
                   "-testpatt", "%", "-runwait")  # fmt: skip
    assert ran.returncode == 0, ran
    assert ran.stdout == ""  # progress goes to stderr, the home's plan first
    assert ran.stderr.startswith(f"run {TARGET}/nightly: "), ran.stderr
    assert ends(farm, "nightly") == {
        "napper": ("COMPLETED", "PASS"),
        "pass1": ("COMPLETED", "PASS"),
        "fail1": ("COMPLETED", "FAIL"),
        "items1": ("COMPLETED", "PASS"),
        "items1/a": ("COMPLETED", "PASS"),
        "items1/b": ("COMPLETED", "PASS"),
    }
    listed = megatest(farm, "-list-runs", "nightly", "-target", TARGET)
    assert listed.returncode == 0, listed
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(f"Run: {TARGET}/nightly ")
    tests = [line.split()[1] for line in lines if line.startswith("  Test: ")]
    assert sorted(tests) == ["fail1", "items1", "items1(a)", "items1(b)", "napper", "pass1"]
    assert any(line.startswith("  Test: fail1 ") and "Status: FAIL" in line for line in lines)


def test_run_without_testpatt_takes_testpatt_from_runconfigs(farm: Farm) -> None:
    """common.scm:978-995: TESTPATT of the target, or the key -modepatt names."""
    ran = megatest(farm, "-run", "-target", "ubuntu/arm", "-runname", "r1")
    assert ran.returncode == 0, ran
    assert "testpatt defined in TESTPATT from runconfigs: pass1" in ran.stderr
    assert set(ends(farm, "r1")) == {"pass1"}
    quick = megatest(farm, "-runtests", "%", "-modepatt", "QUICK", "-reqtarg", "ubuntu/arm",
                     "-runname", "r2")  # fmt: skip
    assert quick.returncode == 0, quick
    assert ends(farm, "r2") == {"fail1": ("COMPLETED", "FAIL")}


def test_tagexpr_narrows_the_testpatt_to_tagged_tests(farm: Farm) -> None:
    """runs.scm:397-401 and 2407-2415: tests whose [test_meta] tags match, ANDed with the
    test pattern, items kept."""
    ran = megatest(farm, "-run", "-target", TARGET, "-runname", "t", "-testpatt", "%",
                   "-tagexpr", "qu%")  # fmt: skip
    assert ran.returncode == 0, ran
    assert set(ends(farm, "t")) == {"pass1"}
    ran = megatest(farm, "-run", "-target", TARGET, "-runname", "t", "-testpatt", "i%/b",
                   "-tagexpr", "nothing,slow")  # fmt: skip
    assert ran.returncode == 0, ran
    assert set(ends(farm, "t")) == {"pass1", "items1", "items1/b"}


def test_rerun_rerun_all_and_rerun_clean(farm: Farm) -> None:
    assert megatest(farm, "-run", "-target", TARGET, "-runname", "r", "-testpatt",
                    "pass1,fail1").returncode == 0  # fmt: skip

    def attempts(test: str) -> int:
        """How often the test started running."""
        found = farm.history("r", f"kind = 'status_change' AND testname = '{test}'")
        return sum(isinstance(p, StatusChange) and p.state is State.RUNNING for _, p in found)

    assert (attempts("pass1"), attempts("fail1")) == (1, 1)
    # -run leaves COMPLETED tests alone; -rerun FAIL runs fail1 again
    assert megatest(farm, "-run", "-target", TARGET, "-runname", "r", "-testpatt",
                    "pass1,fail1").returncode == 0  # fmt: skip
    assert (attempts("pass1"), attempts("fail1")) == (1, 1)
    leftover = farm.area / "links" / TARGET / "r" / "fail1" / "leftover.txt"
    leftover.write_text("from the first attempt\n")
    rerun = megatest(farm, "-run", "-target", TARGET, "-runname", "r", "-testpatt",
                     "pass1,fail1", "-rerun", "FAIL", "-preclean")  # fmt: skip
    assert rerun.returncode == 0, rerun
    assert (attempts("pass1"), attempts("fail1")) == (1, 2)
    assert not leftover.exists()  # -preclean: the directory was made anew
    assert megatest(farm, "-rerun-clean", "-target", TARGET, "-runname", "r", "-testpatt",
                    "pass1,fail1").returncode == 0  # fmt: skip
    assert (attempts("pass1"), attempts("fail1")) == (1, 3)
    assert megatest(farm, "-rerun-all", "-target", TARGET, "-runname", "r", "-testpatt",
                    "pass1,fail1").returncode == 0  # fmt: skip
    assert (attempts("pass1"), attempts("fail1")) == (2, 4)


def test_remove_runs_with_filters_and_keep_records(farm: Farm) -> None:
    for run in ("x1", "x2"):
        assert megatest(farm, "-run", "-target", TARGET, "-runname", run,
                        "-testpatt", EVERY).returncode == 0  # fmt: skip
    rundir = farm.area / "links" / TARGET / "x1" / "pass1"
    assert rundir.is_dir()
    kept = megatest(farm, "-remove-runs", "-target", TARGET, "-runname", "x1",
                    "-testpatt", "pass1", "-keep-records")  # fmt: skip
    assert kept.returncode == 0, kept
    assert not rundir.exists()
    assert "pass1" in ends(farm, "x1")
    # :status FAIL selects fail1 alone, in every run the pattern x% names
    removed = megatest(farm, "-remove-runs", "-target", TARGET, "-runname", "x%",
                       "-testpatt", "%", ":status", "FAIL")  # fmt: skip
    assert removed.returncode == 0, removed
    for run in ("x1", "x2"):
        assert "fail1" not in ends(farm, run)
        assert "pass1" in ends(farm, run)
    nothing = megatest(farm, "-remove-runs", "-target", TARGET, "-runname", "nosuch",
                       "-testpatt", "%")  # fmt: skip
    assert nothing.returncode == 0, nothing  # as Megatest: nothing to remove is no error


def test_set_state_status_with_filters(farm: Farm) -> None:
    assert megatest(farm, "-run", "-target", TARGET, "-runname", "s",
                    "-testpatt", EVERY).returncode == 0  # fmt: skip
    done = megatest(farm, "-set-state-status", "COMPLETED,WAIVED", ":state", "COMPLETED",
                    ":status", "FAIL", "-testpatt", "%",
                    "-target", TARGET, "-runname", "s")  # fmt: skip
    assert done.returncode == 0, done
    found = ends(farm, "s")
    assert found["fail1"] == ("COMPLETED", "WAIVED")
    assert found["pass1"] == ("COMPLETED", "PASS")
    # an item changed: its toplevel is rolled up again (db.scm:3576-3604)
    item = megatest(farm, "-set-state-status", "INCOMPLETE,FAIL", "-testpatt", "items1/b",
                    "-target", TARGET, "-runname", "s")  # fmt: skip
    assert item.returncode == 0, item
    found = ends(farm, "s")
    assert found["items1/b"] == ("INCOMPLETE", "FAIL")
    assert found["items1"][1] == "FAIL"


def test_kill_runs_run_wait_and_archive(farm: Farm) -> None:
    assert megatest(farm, "-run", "-target", SLOW, "-runname", "k",
                    "-testpatt", "pass1").returncode == 0  # fmt: skip
    where = ["-target", SLOW, "-runname", "k", "-testpatt", "napper"]

    def start(first: str) -> "subprocess.Popen[bytes]":
        return subprocess.Popen(
            [str(MEGATEST), first, *where],
            cwd=farm.area,
            env=farm.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    waiting = [start("-run")]
    try:
        assert wait_for(lambda: ends(farm, "k").get("napper", ("",))[0] == "RUNNING", 60)
        waiting.append(start("-run-wait"))  # once the test runs (none: nothing to wait for)
        time.sleep(1.0)
        assert all(process.poll() is None for process in waiting)  # both wait on napper
        killed = megatest(farm, "-kill-runs", *where)
        assert killed.returncode == 0, killed
        # the -run that started it and the -run-wait on it end once it has ended
        assert [process.wait(timeout=60) for process in waiting] == [0, 0]
    finally:
        for process in waiting:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
    assert ends(farm, "k")["napper"] == ("KILLED", "KILLED")
    before = ends(farm, "k")
    saved = megatest(farm, "-archive", "save-remove", "-target", SLOW, "-runname", "k",
                     "-testpatt", "pass1,napper")  # fmt: skip
    assert saved.returncode == 0, saved
    # runs.scm:2303: ARCHIVED, the status as it was
    assert ends(farm, "k") == {"pass1": ("ARCHIVED", "PASS"), "napper": ("ARCHIVED", "KILLED")}
    restored = megatest(farm, "-archive", "restore", "-target", SLOW, "-runname", "k",
                        "-testpatt", "pass1,napper")  # fmt: skip
    assert restored.returncode == 0, restored
    assert (farm.area / "links" / SLOW / "k" / "pass1" / "out.txt").is_file()
    assert ends(farm, "k") == before  # the killed test is KILLED again, not COMPLETED


def test_lock_unlock_and_run_status(farm: Farm) -> None:
    """runs.scm:2367-2381 (-unlock asks y/n), runs.scm:2002 (a locked run is passed by),
    megatest.scm:1085-1105 and db.scm:2509-2528 (-set-run-status, -get-run-status)."""
    assert megatest(farm, "-run", "-target", TARGET, "-runname", "l",
                    "-testpatt", "pass1,fail1").returncode == 0  # fmt: skip

    def run_row() -> tuple[object, ...]:
        return farm.main_query("SELECT locked, run_status, comment FROM runs WHERE runname='l'")[0]

    where = ("-target", TARGET, "-runname", "l")
    assert megatest(farm, "-get-run-status", *where).stdout == "n/a\n"
    assert megatest(farm, "-lock", *where).returncode == 0
    assert run_row()[0] == 1
    passed = megatest(farm, "-remove-runs", *where, "-testpatt", "%")
    assert passed.returncode == 0
    assert "is locked: passed by" in passed.stderr
    assert set(ends(farm, "l")) == {"pass1", "fail1"}
    refused = farm.send("clean", "-t", TARGET, "-r", "l")
    assert refused.returncode == 4, refused
    assert "is locked" in refused.stderr
    asked = megatest(farm, "-unlock", *where, answer="n\n")
    assert asked.returncode == 0
    assert "Do you really wish to unlock run" in asked.stdout
    assert run_row()[0] == 1
    assert megatest(farm, "-unlock", *where, answer="y\n").returncode == 0
    assert run_row()[0] == 0
    marked = megatest(farm, "-set-run-status", "reviewed", "-m", "looks fine", *where)
    assert marked.returncode == 0, marked
    assert run_row()[1:] == ("reviewed", "looks fine")
    assert megatest(farm, "-get-run-status", *where).stdout == "reviewed\n"
    missing = megatest(farm, "-get-run-status", "-target", TARGET, "-runname", "nosuch")
    assert missing.returncode == 1
    assert "No matching run found." in missing.stderr


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["-run", "-runname", "r"], 3, "you must specify the target"),
        (["-run", "-target", TARGET], 3, "you must specify the run name"),
        (["-remove-runs", "-target", TARGET, "-runname", "r"], 3, "test pattern"),
        (["-run", "-target", "ubuntu", "-runname", "r"], 1, "does not match the area's keys"),
        (["-run", "-reqtarg", "debian/x86", "-runname", "r"], 1, "not found in"),
        (["-run", "-target", TARGET, "-runname", "r", "-testpatt", "nosuch"], 1, "matches no"),
        (["-run-wait", "-runname", "r", "-testpatt", "%"], 1, "specify the target"),
        (["-run-wait", "-target", TARGET, "-testpatt", "%"], 2, "specify the run name"),
        (["-kill-runs", "-target", TARGET, "-runname", "r"], 3, "test pattern"),
        (["-remove-runs", "-archive", "keep-html", *ON_R], 1, "-archive keep-html"),
        (["-remove-runs", "-set-state-status", "DONE,PASS", *ON_R], 1, "'DONE' is not"),
        (["-run", "-target", TARGET, "-runname", "r", "-frobnicate"], 1, "not supported"),
        (["-run", "-target", TARGET, "-runname", "r", "stray"], 1, "unrecognised arguments"),
        (["-run", "-target", TARGET, "-runname", "r", "-tagexpr", "x"], 1, "selects no test"),
        (["-set-state-status", "COMPLETED", *ON_R], 1, "comma delimited"),
        (["-set-state-status", "COMPLETED,FORCED", *ON_R], 1, "'FORCED' is not a status"),
        (["-run", "-target", TARGET, "-runname", "r", "-rerun", "BOGUS"], 1, "-rerun"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    farm: Farm, args: list[str], code: int, says: str
) -> None:
    assert megatest(farm, "-run", "-target", TARGET, "-runname", "r",
                    "-testpatt", "pass1").returncode == 0  # fmt: skip
    before = journal_size(farm)
    refused = megatest(farm, *args)
    assert refused.returncode == code, refused
    assert says in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert journal_size(farm) == before
    assert set(ends(farm, "r")) == {"pass1"}


def test_no_home_is_one_line(tmp_path: Path) -> None:
    with running_farm(tmp_path, (NAP,), files=FILES) as farm:
        farm.env.pop("MT_RUN_AREA_HOME")
        never = megatest(farm, "-run", "-target", TARGET, "-runname", "r", timeout=60)
        assert never.returncode == 7, never  # no home ever ran here: no key
        assert "start `mtpkt home` there first" in never.stderr
        farm.start_home()
        farm.stop("home")  # its address stays in .mtpkt/, nothing listens there
        refused = megatest(farm, "-run", "-target", TARGET, "-runname", "r", timeout=60)
        assert refused.returncode == 5, refused  # nothing listens at the home's address
        assert "is `mtpkt home` running?" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        # reading needs no home (megatest.scm:1085-1105 reads the database)
        read = megatest(farm, "-get-run-status", "-target", TARGET, "-runname", "r")
        assert read.returncode == 1, read
        assert read.stderr == "megatest: No matching run found.\n"
