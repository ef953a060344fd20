"""Fixtures of the hostile-input suite: a farm (area, home, agents) as the control tests have."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.farm import Farm, running_farm
from tests.support.frames import SUMMARY


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path) as farm:
        yield farm


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many hostile inputs each test tried (the figures docs/reliability.md quotes)."""
    if SUMMARY:
        terminalreporter.section("hostile inputs tried")
        for line in SUMMARY:
            terminalreporter.write_line(line)
