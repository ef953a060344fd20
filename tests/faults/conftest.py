"""Fixtures of the fault suite, and the summary of what each fault counted."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.farm import SLEEP, Farm, running_farm
from tests.support.ledger import recorded


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, sleepers=(SLEEP, "3022.5")) as farm:
        yield farm


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fault injected: the status packets sent, committed, lost and doubled."""
    books = recorded()
    if books:
        terminalreporter.section("faults injected: status packets counted")
        for entry in books:
            terminalreporter.write_line(entry.line())
