"""Fixtures of the fault suite, and the summary of what each fault counted."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "control"))

from farm import Farm, running_farm
from ledger import recorded


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, sleepers=("3011.5", "3022.5")) as farm:
        yield farm


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fault injected: the status packets sent, committed, lost and doubled."""
    books = recorded()
    if books:
        terminalreporter.section("faults injected: status packets counted")
        for entry in books:
            terminalreporter.write_line(entry.line())
