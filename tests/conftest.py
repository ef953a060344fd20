"""Shared test configuration."""

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from mtpkt.agents.host import guard

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
