"""Megatest's step and test status rules (agents/host/steprules), case by case from launch.scm."""

import pytest

from mtpkt.agents.host.steprules import Rollup, Verdict, code_status, keeps_going, step_status
from mtpkt.pkts import State, Status

RUNNING, COMPLETED = State.RUNNING, State.COMPLETED


@pytest.mark.parametrize(
    ("code", "status", "comment"),
    [
        (0, Status.PASS, None),
        (1, Status.FAIL, "Failed at step s"),
        (2, Status.WARN, "Logpro warning found"),
        (3, Status.CHECK, "Logpro check found"),
        (4, Status.WAIVED, None),  # launch.scm:237 asks for 'check: never true here
        (5, Status.ABORT, "Logpro abort found"),
        (6, Status.SKIP, "Logpro skip found"),
        (7, Status.FAIL, "Failed at step s"),
    ],
)
def test_each_logpro_code_gives_the_step_and_test_status(
    code: int, status: Status, comment: str | None
) -> None:
    """launch.scm:197-205 (this-step-status) and :222-265 (the test's status)."""
    assert step_status(code, logpro_used=True) is status
    assert Rollup().after_step("s", status, last=True) == Verdict(COMPLETED, status, comment)


def test_without_logpro_only_exit_code_zero_passes() -> None:
    assert step_status(0, logpro_used=False) is Status.PASS
    for code in (1, 2, 3, 6, 127, None):
        assert step_status(code, logpro_used=False) is Status.FAIL


def test_a_step_not_last_leaves_the_test_running_except_a_failure() -> None:
    assert Rollup().after_step("a", Status.PASS, last=False) == Verdict(RUNNING, Status.PASS)
    assert Rollup().after_step("a", Status.CHECK, last=False) == Verdict(
        RUNNING, Status.CHECK, "Logpro check found"
    )
    assert Rollup().after_step("a", Status.FAIL, last=False) == Verdict(
        COMPLETED, Status.FAIL, "Failed at step a"
    )


def test_a_warning_then_a_pass_stays_warn() -> None:
    """overall-status warn: next-status is warn unless the step failed (launch.scm:212-214)."""
    rollup = Rollup()
    first = rollup.after_step("a", Status.WARN, last=False)
    assert first == Verdict(RUNNING, Status.WARN, "Logpro warning found")
    assert rollup.after_step("b", Status.PASS, last=True) == Verdict(COMPLETED, Status.WARN)
    assert rollup.final() is Status.WARN


def test_a_warning_then_a_failure_fails() -> None:
    rollup = Rollup()
    rollup.after_step("a", Status.WARN, last=False)
    assert rollup.after_step("b", Status.FAIL, last=True) == Verdict(
        COMPLETED, Status.FAIL, "Failed at step b"
    )
    assert rollup.final() is Status.FAIL


def test_a_warning_then_check_is_warn_with_no_new_comment() -> None:
    rollup = Rollup()
    rollup.after_step("a", Status.WARN, last=False)
    assert rollup.after_step("b", Status.CHECK, last=False) == Verdict(RUNNING, Status.WARN)


def test_the_rollup_after_a_check_is_check() -> None:
    rollup = Rollup()
    rollup.after_step("a", Status.CHECK, last=False)
    assert rollup.final() is Status.CHECK


def test_only_exit_zero_or_a_logpro_warning_lets_the_next_step_run() -> None:
    """steprun-good? (launch.scm:45-47)."""
    assert keeps_going(0, logpro_used=False)
    assert keeps_going(0, logpro_used=True)
    assert keeps_going(2, logpro_used=True)
    assert not keeps_going(2, logpro_used=False)
    for code in (1, 3, 4, 5, 6, None):
        assert not keeps_going(code, logpro_used=True)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, Status.PASS),
        (1, Status.FAIL),
        (2, Status.WARN),
        (3, Status.CHECK),
        (4, Status.WAIVED),
        (5, Status.ABORT),
        (6, Status.SKIP),
        (7, Status.FAIL),
        (None, Status.FAIL),
    ],
)
def test_a_runscripts_exit_code_is_the_rollup(code: int | None, status: Status) -> None:
    """launch.scm:289 and :785-797."""
    rollup = Rollup()
    rollup.after_runscript(code)
    assert rollup.final() is status
    assert code_status(code) is status
