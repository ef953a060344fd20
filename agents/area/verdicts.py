"""A testconfig's keys that judge a test's end: ``[logpro]``, ``[waivers]``, ``[waiver_rules]``.

Megatest looks a step's name up in ``[logpro]`` when the step runs
(launch.scm:100, ``tconfig-logpro``) and reads ``[waivers]`` and
``[waiver_rules]`` when a test is about to be set FAIL (tests.scm:343-372).
Here they are read when the test is planned and travel with its
:class:`~mtpkt.agents.area.job.TestJob`; the host applies them
(:mod:`~mtpkt.agents.host.steplogpro`, :mod:`~mtpkt.agents.host.waivers`).
"""

from collections.abc import Mapping
from pathlib import Path

from mtpkt.agents.area.configdata import Config
from mtpkt.agents.area.job import InlineLogpro, Waiver

__all__ = ["inline_logpro", "read_waiver_rules", "read_waivers"]


def inline_logpro(
    config: Config, step: str, env: Mapping[str, str], cwd: Path
) -> InlineLogpro | None:
    """Step ``step``'s ``[logpro]`` rules, None without any.

    Raises:
        ConfigError: the value cannot be computed.
    """
    entry = config.entry("logpro", step)
    if entry is None:
        return None
    text = config.resolve(entry, env=env, cwd=cwd)
    return InlineLogpro(text, entry.origin.path, entry.origin.line)


def read_waivers(config: Config, env: Mapping[str, str], cwd: Path) -> tuple[Waiver, ...]:
    """``[waivers]`` in the order written.

    Raises:
        ConfigError: a value cannot be computed.
    """
    return tuple(
        Waiver(name, (config.get("waivers", name, env=env, cwd=cwd) or "").strip())
        for name in config.keys("waivers")
    )


def read_waiver_rules(config: Config, env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """``[waiver_rules]``: each rule's command by name.

    Raises:
        ConfigError: a value cannot be computed.
    """
    return {
        name: (config.get("waiver_rules", name, env=env, cwd=cwd) or "").strip()
        for name in config.keys("waiver_rules")
    }
