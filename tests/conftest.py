"""Shared test configuration."""

import os

from hypothesis import HealthCheck, settings

# Generous deadlines: CI machines have 2 busy cores and timing is not what these tests check.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=False)
settings.load_profile("ci" if os.environ.get("CI") else "default")
