"""Fixtures of the fault suite, and the summary of what each fault counted."""

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "control"))

from farm import Farm, make_area
from ledger import recorded
from procs import processes_with


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    logs = tmp_path / "logs"
    logs.mkdir()
    farm = Farm(make_area(tmp_path / "area"), logs)
    try:
        yield farm
    finally:
        farm.stop_all()
        for pid in processes_with("3011.5") + processes_with("3022.5"):
            os.kill(pid, signal.SIGKILL)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fault injected: the status packets sent, committed, lost and doubled."""
    books = recorded()
    if books:
        terminalreporter.section("faults injected: status packets counted")
        for entry in books:
            terminalreporter.write_line(entry.line())
