"""pkts.trouble: a problem that lasts is logged when it starts, changes and ends, not per retry."""

import logging

import pytest

from mtpkt.pkts.trouble import Trouble


def test_a_problem_is_logged_once_per_change_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.trouble")
    trouble = Trouble("agent a", log, logging.ERROR)
    with caplog.at_level(logging.INFO, logger="tests.trouble"):
        trouble.clear()  # no problem yet: nothing to say
        for _ in range(3):
            trouble.report("home down")
        trouble.report("disk full")
        trouble.clear()
        trouble.clear()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "agent a: home down (retrying)"),
        (logging.ERROR, "agent a: disk full (retrying)"),
        (logging.INFO, "agent a: recovered from: disk full"),
    ]
