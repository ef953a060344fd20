"""One set of outcome rules (mtpkt.pkts.outcome): every place that judges a test agrees.

The live view's list of bad tests, ``send --wait``'s and ``tail --until-done``'s
exit codes, the JUnit report and the colours of the views and tables must say
the same of every state and status: a test one of them calls bad is bad to all.
"""

import itertools

import attrs
import pytest

from mtpkt.agents.area import TestPatt
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import (
    ACTIVE,
    BAD,
    ENDED_BADLY,
    FINAL,
    GOOD,
    GOOD_FOR_DEPENDENTS,
    NEVER_RUNS,
    ended_badly,
    left_alone_by_run,
    rerun_by_rerunclean,
    rollup,
    settled,
    toplevel_rollup,
)
from mtpkt.pkts.status import StatusChange
from mtpkt.pkts.text import end_label
from mtpkt.tools.colours import BAD_STYLE, STYLES, style_of
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.junit import verdict
from mtpkt.tools.live import LiveModel
from mtpkt.tools.watch import RunWatch

TARGET, RUNNAME = "linux/x86", "nightly"
EVERY = list(itertools.product(State, Status))


def change(state: State, status: Status) -> StatusChange:
    return StatusChange(
        origin="a1", seq=1, target=TARGET, runname=RUNNAME, test="t", state=state, status=status
    )


def live_calls_bad(state: State, status: Status) -> bool:
    model = LiveModel()
    model.add([change(state, status)])
    (run,) = model.runs.values()
    return ("t", "") in run.bad


def watch_exit(kind: str, state: State, status: Status) -> ExitCode:
    """The exit code ``send --wait`` (kind run, rerunclean, kill) or ``tail --until-done``
    (which watches as for a run) gives once the test settled so."""
    watch = RunWatch(kind, TARGET, RUNNAME, TestPatt.parse("%"))
    watch.add([change(state, status)])
    assert watch.settled == settled(state, status)
    return watch.exit_code()


def junit_calls_bad(state: State, status: Status) -> bool:
    return verdict(state.value, status.value)[0] in ("failure", "error")


@pytest.mark.parametrize(("state", "status"), EVERY)
def test_the_live_view_send_wait_tail_and_junit_agree(state: State, status: Status) -> None:
    bad = ended_badly(state, status)
    assert live_calls_bad(state, status) == bad
    assert junit_calls_bad(state, status) == bad
    if settled(state, status):
        expected = ExitCode.TESTS_FAILED if bad else ExitCode.OK
        assert watch_exit("run", state, status) == expected  # also tail --until-done
        assert watch_exit("rerunclean", state, status) == expected


@pytest.mark.parametrize("status", list(Status))
def test_check_is_bad_everywhere(status: Status) -> None:
    assert (status in BAD) == ended_badly(State.COMPLETED, status)
    assert ended_badly(State.COMPLETED, Status.CHECK)
    assert watch_exit("run", State.COMPLETED, Status.CHECK) == ExitCode.TESTS_FAILED


@pytest.mark.parametrize("status", sorted(NEVER_RUNS))
def test_a_test_the_scheduler_will_not_run_has_settled_and_is_bad(status: Status) -> None:
    """runs.scm:1168-1182 (runs:runable-tests): NOT_STARTED with one of these is not runnable."""
    assert settled(State.NOT_STARTED, status)
    assert ended_badly(State.NOT_STARTED, status)
    assert watch_exit("run", State.NOT_STARTED, status) == ExitCode.TESTS_FAILED
    assert (
        rollup([(State.COMPLETED, Status.PASS), (State.NOT_STARTED, status)])[0] is State.COMPLETED
    )


def test_a_test_still_waiting_has_not_settled() -> None:
    assert not settled(State.NOT_STARTED, Status.KEEP_TRYING)
    assert not settled(State.NOT_STARTED, Status.NA)
    assert settled(State.STALE, Status.PASS)
    assert not ended_badly(State.STALE, Status.PASS)


def test_a_kill_expects_its_tests_killed() -> None:
    assert watch_exit("kill", State.KILLED, Status.KILLED) == ExitCode.OK


def test_the_sets_do_not_overlap_and_cover_what_they_should() -> None:
    assert not GOOD & BAD
    assert set(Status) - GOOD - BAD == {Status.NA, Status.KEEP_TRYING}
    assert not FINAL & ACTIVE
    assert ENDED_BADLY <= FINAL
    assert GOOD_FOR_DEPENDENTS == GOOD | {Status.CHECK}


@pytest.mark.parametrize(("state", "status"), EVERY)
def test_a_plain_run_leaves_alone_what_megatests_run_does(state: State, status: Status) -> None:
    """runs.scm:1731-1760 (COMPLETED: only with -rerun naming its status), :1817-1833
    (KILLED, and any other state but NOT_STARTED, DELETED, INCOMPLETE and running)."""
    kept = state in (State.COMPLETED, State.KILLED, State.STUCK, State.ARCHIVED)
    assert left_alone_by_run(state, status) is kept
    if state is not State.COMPLETED:
        assert left_alone_by_run(state, status, rerun=[status]) is kept
    else:
        assert not left_alone_by_run(state, status, rerun=[status])
    if state in ACTIVE:
        assert not rerun_by_rerunclean(state, status)


@pytest.mark.parametrize(("state", "status"), EVERY)
def test_a_label_is_red_exactly_when_its_record_ended_badly(state: State, status: Status) -> None:
    # As the tables and tail --plain show it, and as the live view does.
    for with_status in (True, settled(state, status)):
        label = end_label(state, status, with_status=with_status)
        assert (style_of(label) == BAD_STYLE) == ended_badly(state, status), label
    assert style_of(end_label(state, status, with_status=False)), "a label without a colour"


def test_every_word_has_its_colour() -> None:
    assert set(State) | set(Status) <= set(STYLES)
    assert {word for word, style in STYLES.items() if style == BAD_STYLE} == {
        *BAD,
        *ENDED_BADLY,
        "dead",
    }
    assert {STYLES[state] for state in ACTIVE} == {"yellow"}
    assert style_of("SOMETHING_ELSE") == style_of("SOMETHING/ELSE") == ""


def test_labels() -> None:
    assert end_label(State.COMPLETED, Status.PASS) == "PASS"
    assert end_label(State.KILLED, Status.KILLED) == "KILLED/KILLED"
    assert end_label(State.RUNNING, Status.NA) == "RUNNING"
    assert end_label("RUNNING", "PASS") == "RUNNING/PASS"
    assert end_label("RUNNING", "PASS", with_status=False) == "RUNNING"
    assert end_label("SOMETHING", "ELSE") == "SOMETHING/ELSE"  # words as they are
    assert type(end_label(State.COMPLETED, Status.PASS)) is str


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        # an item still running or waiting: as rollup()
        ([("RUNNING", "n/a"), ("COMPLETED", "PASS")], ("RUNNING", "PASS")),
        # all settled: db.scm:3604-3656
        ([("COMPLETED", "PASS"), ("COMPLETED", "FAIL")], ("COMPLETED", "FAIL")),
        ([("COMPLETED", "PASS"), ("INCOMPLETE", "FAIL")], ("INCOMPLETE", "FAIL")),
        ([("INCOMPLETE", "FAIL"), ("KILLED", "KILLED")], ("KILLED", "FAIL")),
        ([("COMPLETED", "PASS"), ("NOT_STARTED", "PREQ_FAIL")], ("NOT_STARTED", "PREQ_FAIL")),
        (
            [("COMPLETED", "PASS"), ("NOT_STARTED", "PREQ_DISCARDED")],
            ("COMPLETED", "PREQ_DISCARDED"),
        ),
        ([("COMPLETED", "PASS"), ("DELETED", "n/a")], ("COMPLETED", "PASS")),
        ([("COMPLETED", "PASS"), ("STALE", "PASS")], ("STALE", "PASS")),
    ],
)
def test_a_toplevel_rolls_up_as_megatests(
    items: list[tuple[str, str]], expected: tuple[str, str]
) -> None:
    records = [(State(state), Status(status)) for state, status in items]
    assert toplevel_rollup(records) == (State(expected[0]), Status(expected[1]))


def test_a_toplevel_whose_items_the_pattern_leaves_out_stops_counting() -> None:
    """``-testpatt %/`` selects toplevel records; a test brought in with its items (as a
    prerequisite) has its toplevel rolled up by the home, with no packet: the watch learns
    the test has items from items it does not select (Megatest's release test2 waited for
    ever on test_mt_vars's toplevel)."""

    def record(item: str, state: State, status: Status) -> StatusChange:
        return attrs.evolve(change(state, status), item=item)

    watch = RunWatch("run", TARGET, RUNNAME, TestPatt.parse("%/"))
    watch.add([record("", State.NOT_STARTED, Status.NA)])
    assert not watch.settled
    watch.add([record("1", State.RUNNING, Status.NA), record("1", State.COMPLETED, Status.PASS)])
    assert watch.settled
