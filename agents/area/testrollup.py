"""``[testrollup]``: which command summarizes an itemized test (megatest.config).

Megatest looks the test's name up in megatest.config's ``[testrollup]``
(tests.scm:522) each time an item of the test ends; the agent that ran the
item runs it (:mod:`mtpkt.agents.host.rollup`).
"""

from collections.abc import Mapping
from pathlib import Path

from mtpkt.agents.area.configdata import Config

__all__ = ["rollup_command"]


def rollup_command(config: Config, test: str, env: Mapping[str, str], cwd: Path) -> str:
    """The ``[testrollup] <test>`` command, "" without one.

    Raises:
        ConfigError: the value cannot be computed.
    """
    return (config.get("testrollup", test, env=env, cwd=cwd) or "").strip()
