"""What ``mtpkt send`` says (issue 21): the run's plan as the home decided it, each bad test's
reason in ``--wait``'s summary, and ``--wait`` for ``rerunclean``, ``clean`` and ``archive``.

End to end against a real home and agent; the watch's rules on their own below.
"""

import io
from pathlib import Path

import pytest

from mtpkt.agents.area import TestPatt
from mtpkt.pkts import AckOutcome, State, Status
from mtpkt.pkts.status import Ack, StatusChange
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.watch import REASON_WIDTH, RunWatch, report_watch
from tests.support.dbs import status_packet
from tests.support.farm import FILES, TARGET, Farm, running_farm

CONTROL = b"\x01" * 16
_ACKS = "SELECT packet FROM history WHERE kind = 'ack' ORDER BY seq"


@pytest.mark.timeout(120)
def test_send_run_prints_the_homes_plan_and_wait_names_each_bad_test_with_its_reason(
    farm: Farm,
) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    first = farm.send("run", "-t", TARGET, "-r", "p1", "--testpatt", "build,unit", "--wait")
    assert first.returncode == ExitCode.OK, first
    assert len(bytes.fromhex(first.stdout.strip())) == 16  # the id alone on stdout, for scripts
    plan = f"run {TARGET}/p1: 2 tests, 4 instances; 0 already done (kept), 4 to run"
    assert first.stderr.splitlines()[0] == plan, first.stderr
    again = farm.send("run", "-t", TARGET, "-r", "p1", "--testpatt", "build,unit")
    assert again.returncode == ExitCode.OK, again
    assert again.stderr.splitlines() == [
        f"run {TARGET}/p1: 2 tests, 4 instances; 4 already done (kept), 0 to run"
    ]
    # The plan is on the stream too, as the `accepted` ack of the run packet.
    acks = [status_packet(data) for (data,) in farm.main_query(_ACKS)]
    accepted = [a for a in acks if isinstance(a, Ack) and a.outcome is AckOutcome.ACCEPTED]
    assert [ack.reason for ack in accepted][:1] == [plan]

    failed = farm.send("run", "-t", TARGET, "-r", "p1", "--testpatt", "broken", "--wait")
    assert failed.returncode == ExitCode.TESTS_FAILED, failed
    comment = farm.query("p1", "SELECT comment FROM tests WHERE testname = 'broken'")[0][0]
    assert comment, "a failed test has a comment saying why"
    assert failed.stderr.splitlines()[-2:] == [
        f"run {TARGET} p1: 1 test: 1 FAIL",
        f"  FAIL  broken: {comment}",
    ]

    rerun = farm.send(
        "rerunclean", "-t", TARGET, "-r", "p1", "--testpatt", "build,broken", "--wait"
    )
    assert rerun.returncode == ExitCode.TESTS_FAILED, rerun  # followed to its end, like run
    lines = rerun.stderr.splitlines()
    assert lines[0] == (
        f"rerunclean {TARGET}/p1: 2 tests, 2 instances; 1 did not end badly (kept), 1 to run"
    )
    assert lines[-1] == f"  FAIL  broken: {comment}"

    # A prerequisite the testpatt does not name runs too; the line counts it apart, since
    # --wait counts what the testpatt names (the new user's trial of issue 21).
    pulled = farm.send("run", "-t", TARGET, "-r", "p2", "--testpatt", "after_broken", "--wait")
    assert pulled.returncode == ExitCode.TESTS_FAILED, pulled
    lines = pulled.stderr.splitlines()
    assert lines[0] == (
        f"run {TARGET}/p2: 2 tests, 2 instances (1 of them a prerequisite outside the"
        " testpatt); 0 already done (kept), 2 to run"
    )
    assert lines[-2] == f"run {TARGET} p2: 1 test: 1 NOT_STARTED/PREQ_FAIL", lines


@pytest.mark.timeout(120)
def test_clean_and_archive_wait_for_the_homes_word_and_print_it(farm: Farm) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    ran = farm.send("run", "-t", TARGET, "-r", "p1", "--testpatt", "build,broken", "--wait")
    assert ran.returncode == ExitCode.TESTS_FAILED, ran

    archived = farm.send("archive", "-t", TARGET, "-r", "p1", "--testpatt", "broken", "--wait")
    assert archived.returncode == ExitCode.OK, archived  # a chore judges no test
    assert archived.stderr.splitlines()[-1] == f"archive {TARGET} p1: archived 1 test(s): broken"

    cleaned = farm.send(
        "clean", "-t", TARGET, "-r", "p1", "--testpatt", "build", "--wait", "--wait-timeout", "30"
    )
    assert cleaned.returncode == ExitCode.OK, cleaned
    assert cleaned.stderr.splitlines()[-1] == (
        f"clean {TARGET} p1: removed 1 test record(s) and 1 run directory: build"
    )
    assert ("build", "") not in farm.tests("p1")  # done before send returned


DEFERRED = {
    "megatest.config": FILES["megatest.config"],
    "runconfigs.config": "[default]\n",
    "tests/writer/testconfig": "[ezsteps]\nwrite echo x > $MT_RUN_AREA_HOME/items.txt\n",
    "tests/reader/testconfig": """
        [ezsteps]
        check true

        [requirements]
        waiton writer

        [items]
        N [system cat $MT_RUN_AREA_HOME/items.txt]
    """,
}


@pytest.mark.timeout(60)
def test_the_plan_counts_apart_what_another_launch_has_and_items_made_when_due(
    tmp_path: Path,
) -> None:
    with running_farm(tmp_path, files=DEFERRED) as farm:
        farm.start_home()  # no agent: the first launch keeps its instances in hand
        first = farm.send("run", "-t", TARGET, "-r", "r1")
        assert first.returncode == ExitCode.OK, first
        assert first.stderr.splitlines() == [
            f"run {TARGET}/r1: 2 tests, 1 instance; 0 already done (kept), 1 to run;"
            " the items of 1 test are made when due"
        ]
        second = farm.send("run", "-t", TARGET, "-r", "r1")
        assert second.returncode == ExitCode.OK, second
        assert second.stderr.splitlines() == [
            f"run {TARGET}/r1: 2 tests, 1 instance; 0 already done (kept),"
            " 1 in another launch's hands, 0 to run"
        ]


def test_wait_timeout_without_wait_is_refused_for_every_kind(farm: Farm) -> None:
    for kind in ("clean", "archive", "rerunclean"):
        alone = farm.send(kind, "-t", TARGET, "-r", "p1", "--wait-timeout", "3")
        assert alone.returncode == ExitCode.USAGE, alone
        assert "--wait-timeout needs --wait" in alone.stderr


def test_help_of_clean_and_archive_says_what_their_wait_waits_for(farm: Farm) -> None:
    for kind in ("clean", "archive"):
        shown = farm.command("send", kind, "--help")
        assert shown.returncode == 0, shown
        assert "wait until the home has done it" in " ".join(shown.stdout.split())


# -- the watch ---------------------------------------------------------------------------------


def change(
    test: str, state: State, status: Status, comment: str = "", seq: int = 1
) -> StatusChange:
    return StatusChange(
        origin="agent", seq=seq, target=TARGET, runname="p1", test=test,
        state=state, status=status, comment=comment,
    )  # fmt: skip


def settled(watch: RunWatch) -> bool:
    return watch.settled  # a call, so that mypy does not keep a narrowed property across adds


def ack(outcome: AckOutcome, reason: str = "") -> Ack:
    return Ack(origin="home", seq=9, ref=CONTROL, outcome=outcome, reason=reason)


def test_a_watch_names_each_bad_test_with_its_newest_comment_cut_to_one_short_line() -> None:
    watch = RunWatch("run", TARGET, "p1", TestPatt.parse("%"))
    long = "why " * 100
    watch.add(
        [
            change("a", State.RUNNING, Status.NA, "step 'x' running", 1),
            change("a", State.COMPLETED, Status.FAIL, "step 'check' exited with 4\nsee log", 2),
            change("b", State.COMPLETED, Status.ABORT, long, 3),
            change("c", State.COMPLETED, Status.PASS, "fine", 4),
            change("d", State.KILLED, Status.KILLED, "", 5),
        ]
    )
    out = io.StringIO()
    report_watch(watch, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"run {TARGET} p1: 4 tests: 1 FAIL, 1 ABORT, 1 PASS, 1 KILLED/KILLED"
    assert lines[1] == "  FAIL  a: step 'check' exited with 4 see log"
    assert lines[2].startswith("  ABORT  b: why why")
    assert lines[2].endswith("…")
    assert len(lines[2]) == len("  ABORT  b: ") + REASON_WIDTH
    assert lines[3] == "  KILLED/KILLED  d"  # no comment: the name alone, as before


def test_the_accepted_ack_of_a_run_is_no_end_of_its_wait() -> None:
    watch = RunWatch("run", TARGET, "p1", TestPatt.parse("%"), CONTROL)
    watch.add([change("a", State.COMPLETED, Status.PASS), ack(AckOutcome.ACCEPTED, "run …")])
    assert not settled(watch)
    watch.add([ack(AckOutcome.DONE, "settled")])
    assert settled(watch)


@pytest.mark.parametrize("kind", ["clean", "archive"])
def test_a_chore_is_waited_for_by_its_ack_alone_and_judges_no_test(kind: str) -> None:
    watch = RunWatch(kind, TARGET, "p1", TestPatt.parse("%"), CONTROL)
    watch.add([change("a", State.RUNNING, Status.NA), change("b", State.COMPLETED, Status.FAIL)])
    assert not settled(watch)
    assert watch.progress() == f"{kind} p1: in the home's hands"
    watch.add([ack(AckOutcome.ACCEPTED, "not this one")])
    assert not settled(watch)
    watch.add([ack(AckOutcome.DONE, "archived 1 test(s): b")])
    assert settled(watch)  # a still RUNNING, left alone by the chore: no matter
    assert watch.bad() == []
    assert watch.exit_code() == ExitCode.OK
    assert watch.summary() == f"{kind} {TARGET} p1: archived 1 test(s): b"
    rejected = RunWatch(kind, TARGET, "p1", TestPatt.parse("%"), CONTROL)
    rejected.add([ack(AckOutcome.REJECTED, "disk full")])
    assert settled(rejected)
    assert rejected.rejected == "disk full"
