"""The load run in small: 200 simulated agents against one home, nothing lost.

``benchmarks/load.py`` is the measurement (two minutes by default); here it
runs for a few seconds at a low rate, as a check that many agents at once,
each with its own spool, heartbeats and pulls, get every status packet
committed exactly once and are never marked lost.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import processes_with, wait_for

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "load.py"


@pytest.mark.long
@pytest.mark.timeout(150)
def test_200_agents_nothing_lost(tmp_path: Path) -> None:
    """200 agents in 4 processes for 8 s: 2 packets/s each, beats every 2 s, pulls every 1 s."""
    load = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--agents", "200", "--workers", "4", "--duration", "8",
         "--rate", "2", "--heartbeat", "2", "--pull", "1", "--timeout", "70"],
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its work directory, so its processes
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = load.communicate(timeout=110)  # a slow machine: its own deadline first
    finally:
        if load.poll() is None:
            load.send_signal(signal.SIGTERM)  # it stops everything it started, then exits
            load.wait(timeout=60)
        assert wait_for(lambda: not processes_with(str(tmp_path)), 10), "processes left running"
    assert load.returncode == 0, output
    assert "PASS: 200 agents, 3,200 of 3,200 packets committed once" in output, output
    assert "0 lost, 0 doubled, 0 agents marked lost" in output, output
