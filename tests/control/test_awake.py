"""agents.home.awake: a stall of the home moves the point from which agents' silence counts."""

import logging

import pytest

from mtpkt.agents.home.awake import STALL, Awake


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_regular_checks_keep_the_start(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    awake = Awake(1.0, "the check", clock=clock)
    for _ in range(10):
        clock.now += 1.0 + STALL - 0.01
        assert awake.since() == 1000.0
    assert awake.stalls == 0
    assert not caplog.records


def test_a_gap_moves_it_to_the_wake_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    awake = Awake(1.0, "the check", clock=clock)
    clock.now += 9.0  # SIGSTOP, or the wall clock stepped forward
    with caplog.at_level(logging.WARNING):
        assert awake.since() == 1009.0
    assert awake.stalls == 1
    assert "the check did not run for 9.0 s" in caplog.text
    clock.now += 1.0
    assert awake.since() == 1009.0


def test_a_clock_stepped_back_is_no_stall() -> None:
    clock = Clock()
    awake = Awake(1.0, "the check", clock=clock)
    clock.now -= 3600.0
    assert awake.since() == 1000.0
    assert awake.stalls == 0


def test_restart_counts_from_now() -> None:
    clock = Clock()
    awake = Awake(1.0, "the check", clock=clock)
    clock.now += 0.5
    awake.restart()
    assert awake.since() == 1000.5
