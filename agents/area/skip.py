"""A testconfig's ``[skip]``: when a test ready to launch ends ``COMPLETED/SKIP`` instead.

Megatest checks it in the runner, after a test's prerequisites let it start and
before it launches (runs.scm:1777-1807), with one ``cond``: the first of
``prevrunning``, ``fileexists`` and ``rundelay`` the section has is the only one
tried, whatever its value:

* ``prevrunning``: skip while a record of the same test (and item) is LAUNCHED,
  REMOTEHOSTSTART or RUNNING in any run;
* ``fileexists PATH``: skip when PATH exists, a relative PATH taken from the
  test's own directory (the runner's working directory then, runs.scm:1720-1724);
* ``rundelay SPAN``: skip while such a record runs, or when one of them
  COMPLETED or INCOMPLETE with PASS, FAIL or ABORT started less than SPAN ago
  (SPAN read by ``common:hms-string->seconds``, common.scm:1868-1890).

This module reads the rule; the home, which launches, applies it
(:mod:`mtpkt.agents.home.skips`).
"""

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.configdata import Config, Origin
from mtpkt.agents.area.scheduling import warn_once

__all__ = ["SKIP_KEYS", "Skip", "hms_seconds", "read_skip"]

_log = logging.getLogger(__name__)

SKIP_KEYS: Final = ("prevrunning", "fileexists", "rundelay")
"""The keys of ``[skip]``, in the order Megatest tries them (runs.scm:1780-1802)."""

_UNIT: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2628000, "y": 31536000}
_WORD = re.compile(r"\w+")
_PART = re.compile(r"(\d+)([smhdMyw])")


@attrs.frozen
class Skip:
    """The ``[skip]`` rule of a test: the one key Megatest tries."""

    key: str
    """``prevrunning``, ``fileexists`` or ``rundelay``."""
    value: str
    """Its value as written (the comment Megatest leaves quotes it)."""
    origin: Origin
    seconds: float = 0.0
    """``rundelay``: the span in seconds."""
    path: Path | None = None
    """``fileexists``: the path, a relative one taken from the test's directory."""


def hms_seconds(text: str) -> tuple[int, list[str]]:
    """Megatest's ``common:hms-string->seconds`` (common.scm:1868-1890): each word must be
    a number and one unit letter (``s m h d w M y``); any other word counts nothing.

    Returns:
        The seconds, and the words that counted nothing.
    """
    total = 0
    ignored = []
    for word in _WORD.findall(text):
        match = _PART.fullmatch(word)
        if match:
            total += int(match.group(1)) * _UNIT[match.group(2)]
        else:
            ignored.append(word)
    return total, ignored


def read_skip(config: Config, env: Mapping[str, str], cwd: Path) -> Skip | None:
    """The ``[skip]`` rule of a testconfig, None without one. A key Megatest does not try
    (an unknown one, or one after the key it tries) is named in a warning.

    Args:
        config: the testconfig.
        env: the run's environment, for ``[system …]`` values.
        cwd: the test's directory, where such values run and a relative ``fileexists``
            path starts.

    Raises:
        ConfigError: the value cannot be computed.
    """
    keys = config.keys("skip")
    tried = next((key for key in SKIP_KEYS if key in keys), None)
    for key in keys:
        if key != tried:
            entry = config.entry("skip", key)
            why = "not one of Megatest's" if key not in SKIP_KEYS else f"{tried} comes first"
            warn_once(
                _log,
                "%s: [skip] %s is not used: %s (runs.scm:1780-1802 tries one of %s)",
                entry.origin if entry else config.path,
                key,
                why,
                ", ".join(SKIP_KEYS),
            )
    if tried is None:
        return None
    entry = config.entry("skip", tried)
    assert entry is not None
    value = config.resolve(entry, env=env, cwd=cwd).strip()
    seconds = 0
    if tried == "rundelay":
        seconds, ignored = hms_seconds(value)
        if ignored:
            warn_once(
                _log,
                "%s: [skip] rundelay %r: %s count(s) nothing, as in Megatest (a number and a"
                " unit letter, e.g. 10m 5s: common.scm:1868-1890); the delay is %ds",
                entry.origin,
                value,
                " ".join(ignored),
                seconds,
            )
    path = cwd / value if tried == "fileexists" and value else None  # "" is no file
    return Skip(tried, value, entry.origin, float(seconds), path)
