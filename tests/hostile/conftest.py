"""The hostile-input suite's summary: how many hostile inputs each test tried."""

import pytest

from tests.support.frames import SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many hostile inputs each test tried (the figures docs/reliability.md quotes)."""
    if SUMMARY:
        terminalreporter.section("hostile inputs tried")
        for line in SUMMARY:
            terminalreporter.write_line(line)
