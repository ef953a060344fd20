"""Fixtures of the control-path tests."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from farm import Farm, make_area
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
