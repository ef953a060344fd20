"""Where an area's tests are found: ``[tests-paths]`` directories, then ``<area>/tests``.

Megatest builds a registry of test name → test directory from every
directory named in ``megatest.config``'s ``[tests-paths]`` (in the order
written), then the area's own ``tests/`` (tests.scm:47-61). The first
directory holding a test of a name wins (tests.scm:63-78), so a test in a
``[tests-paths]`` directory stands in for the area's own test of that name.
A listed directory that does not exist is dropped with a warning
(tests.scm:55-60). A relative path is taken from the area's home, the
directory ``megatest -run`` works in.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from mtpkt.agents.area.config import Config

__all__ = ["find_test", "search_path", "test_registry"]

_log = logging.getLogger(__name__)
_warned: set[str] = set()
"""Directories already warned about: once per process, not at every look-up (Megatest's
``common:low-noise-print``)."""


def search_path(config: Config, home: Path, env: Mapping[str, str]) -> list[Path]:
    """The directories searched for tests, in order: ``[tests-paths]``, then ``<home>/tests``.

    Raises:
        ConfigError: a ``[tests-paths]`` value cannot be computed.
    """
    values = [value.strip() for _, value in config.items("tests-paths", env=env, cwd=home)]
    paths = [home / value for value in values if value]
    found = []
    for path in [*paths, home / "tests"]:
        if path.is_dir():
            found.append(path)
        elif str(path) not in _warned and path != home / "tests":
            _warned.add(str(path))
            _log.warning("problem with directory %s, dropping it from tests path", path)
    return found


def test_registry(config: Config, home: Path, env: Mapping[str, str]) -> dict[str, Path]:
    """Test name → test directory: every directory with a ``testconfig`` in the search path,
    the first of a name kept.

    Raises:
        ConfigError: a ``[tests-paths]`` value cannot be computed.
    """
    registry: dict[str, Path] = {}
    for directory in search_path(config, home, env):
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            _log.warning("cannot list tests in %s: %s", directory, exc)
            continue
        for name in names:
            # glob "*" in tests.scm:76 leaves out names starting with a dot
            if name.startswith(".") or name in registry:
                continue
            if (directory / name / "testconfig").is_file():
                registry[name] = directory / name
    return registry


def find_test(config: Config, home: Path, name: str, env: Mapping[str, str]) -> Path | None:
    """The directory of test ``name`` (a checked single name), as :func:`test_registry` would
    give it, found without listing every directory; None if no directory has it.

    Raises:
        ConfigError: a ``[tests-paths]`` value cannot be computed.
    """
    for directory in search_path(config, home, env):
        if (directory / name / "testconfig").is_file():
            return directory / name
    return None
