"""Fixtures of the hostile-input suite: a farm (area, home, agents) as the control tests have."""

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "control"))

from farm import Farm, make_area
from frames import SUMMARY
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
        for pid in processes_with("3011.5"):
            os.kill(pid, signal.SIGKILL)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many hostile inputs each test tried (the figures docs/reliability.md quotes)."""
    if SUMMARY:
        terminalreporter.section("hostile inputs tried")
        for line in SUMMARY:
            terminalreporter.write_line(line)
