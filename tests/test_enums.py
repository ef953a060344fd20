"""Megatest's statuses roll up worst-first."""

from hypothesis import given
from hypothesis import strategies as st

from mtpkt.pkts import Status, worst


def test_order_is_megatests_best_to_worst() -> None:
    """common.scm:538-551; statuses Megatest does not list (KILLED, launch.scm:440, among
    them) sort below them all (common.scm:583)."""
    assert [status.value for status in sorted(Status, key=lambda s: s.rank)] == [
        "ZERO_ITEMS", "BLOCKED", "TIMED_OUT", "KEEP_TRYING", "TEN_STRIKES", "KILLED",
        "n/a", "PASS", "SKIP", "WARN", "WAIVED", "CHECK", "DEAD", "FAIL",
        "PREQ_FAIL", "PREQ_DISCARDED", "ABORT",
    ]  # fmt: skip
    assert len({status.rank for status in Status}) == len(Status)


def test_a_scheduling_status_never_outranks_a_result() -> None:
    assert worst([Status.ZERO_ITEMS, Status.PASS]) is Status.PASS
    assert worst([Status.KEEP_TRYING]) is Status.KEEP_TRYING


def test_worst_of_nothing_is_na() -> None:
    assert worst([]) is Status.NA


def test_fail_beats_pass_and_abort_beats_all() -> None:
    assert worst([Status.PASS, Status.FAIL, Status.WARN]) is Status.FAIL
    assert worst([Status.ABORT, Status.PREQ_FAIL]) is Status.ABORT


@given(st.lists(st.sampled_from(list(Status)), min_size=1))
def test_worst_is_one_of_them_and_no_better_than_any(statuses: list[Status]) -> None:
    result = worst(statuses)
    assert result in statuses
    assert all(result.rank >= status.rank for status in statuses)
