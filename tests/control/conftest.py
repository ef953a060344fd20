"""Fixtures of the control-path tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.farm import Farm, running_farm


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path) as farm:
        yield farm
