"""Shared test configuration."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from mtpkt.agents.host import guard
from tests.support.farm import Farm, running_farm
from tests.support.slurm import slurm  # noqa: F401  (the session fixture of the local Slurm)

# A shell without job control starts a background command with SIGINT ignored, and every
# process it starts inherits that: `mtpkt send --wait` would then not see a test's Ctrl-C.
# The suite runs commands as a terminal runs them, whoever started it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Generous deadlines: CI machines have 2 busy cores and timing is not what these tests check.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=False)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(autouse=True, scope="session")
def _stop_the_step_guard() -> Iterator[None]:
    """Steps run in this process start its guard process (agents.host.guard): stop it at the end."""
    yield
    guard.shutdown()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    """A farm of a new area (its home and agents started by the test, from the CLI); every
    process it started is stopped at the end. The fault suite has its own."""
    with running_farm(tmp_path) as farm:
        yield farm
