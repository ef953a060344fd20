"""Megatest's scheduling keys: ``[setup] launch-delay``, ``reruns``, ``allow-auto-rerun``,
``run-wait``, ``[jobgroups]`` (megatest.config), and a test's jobgroup (its testconfig).

Read when a run is planned, as Megatest's runner reads them when ``-run``
starts; the home's launches apply them (:mod:`mtpkt.agents.home.assign`,
:mod:`mtpkt.agents.home.launches`, :mod:`mtpkt.agents.home.reruns`):

* ``launch-delay``: seconds between two launches of a run (launch.scm:1338-1345);
* ``[jobgroups] GROUP N``: at most N tests of the group (``[test_meta] jobgroup``,
  runs.scm:1345) LAUNCHED or running at once, over all runs (runs.scm:203-231,
  db.scm:2905-2931);
* ``reruns``: 0 turns off the second pass Megatest makes over a run once its
  first has launched everything (runs.scm:338-354, 613-621); any other number
  leaves it at one pass more;
* ``allow-auto-rerun STATE/STATUS …``: records of the tests the testpatt names in
  one of these are run again (runs.scm:453-462, db.scm:2798-2815);
* ``run-wait yes``: a pass is over when every test has ended, not once the last
  has launched (runs.scm:1573-1597).

``runqueue`` (how many tests Megatest's runner registers ahead) has no use here:
every test of a run is recorded when the run is planned (docs/area.md says so).
"""

import logging
from collections.abc import Mapping
from pathlib import Path

import attrs

from mtpkt.agents.area.configdata import Config, ConfigError

__all__ = ["AutoRerun", "Schedule", "read_jobgroup", "read_schedule", "warn_once"]

_log = logging.getLogger(__name__)
_warned: set[str] = set()
_WARNED_MAX = 10_000


def warn_once(log: logging.Logger, message: str, *args: object) -> None:
    """Log a warning the first time this process meets it: a run is planned again on each
    agent for each of its tests, and one line a config file deserves should stay one."""
    text = message % args
    if text in _warned:
        return
    if len(_warned) >= _WARNED_MAX:
        _warned.clear()
    _warned.add(text)
    log.warning("%s", text)


@attrs.frozen
class AutoRerun:
    """One ``allow-auto-rerun`` entry, as Megatest splits it at ``/`` (runs.scm:455-459)."""

    state: str
    """The state a record must be in; "" (``/FAIL``) matches none, as in Megatest's query."""
    status: str | None
    """The status it must have; None (no ``/``) for any."""

    def matches(self, state: str, status: str) -> bool:
        """Whether a record in ``state``/``status`` is run again."""
        return state == self.state and self.status in (None, status)


@attrs.frozen
class Schedule:
    """The scheduling keys of megatest.config, as a run's plan read them."""

    launch_delay: float = 0.0
    """Seconds between two launches of the run; 0 when not set (Megatest: 1)."""
    jobgroups: Mapping[str, float] = attrs.field(factory=dict)
    """``[jobgroups]``: the limit of each group that has a number."""
    second_pass: bool = True
    """Whether the run gets Megatest's second pass (``reruns`` not 0)."""
    auto_rerun: tuple[AutoRerun, ...] = ()
    """``allow-auto-rerun``: records that run again."""
    run_wait: bool = False
    """``[setup] run-wait yes``: a pass ends when every test has ended, not once the last
    one has launched (runs.scm:1573-1597)."""

    def auto_reruns(self, state: str, status: str) -> bool:
        """Whether ``allow-auto-rerun`` runs a record in ``state``/``status`` again."""
        return any(entry.matches(state, status) for entry in self.auto_rerun)


def read_schedule(config: Config, env: Mapping[str, str], cwd: Path) -> Schedule:
    """The scheduling keys of megatest.config, values computed in the run's environment.

    Raises:
        ConfigError: a value cannot be computed; ``launch-delay`` is not a number
            (Megatest prints an error, configf.scm:512-520); a ``[jobgroups]`` limit is 0
            or less (no test of the group could ever launch: Megatest waits for ever,
            runs.scm:226-231).
    """

    def value(section: str, key: str) -> str | None:
        text = config.get(section, key, env=env, cwd=cwd)
        return None if text is None else text.strip()

    return Schedule(
        launch_delay=_launch_delay(config, value("setup", "launch-delay")),
        jobgroups=_jobgroups(config, env, cwd),
        second_pass=_second_pass(config, value("setup", "reruns")),
        auto_rerun=_auto_rerun(config, value("setup", "allow-auto-rerun")),
        run_wait=value("setup", "run-wait") == "yes",
    )


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _where(config: Config, section: str, key: str) -> str:
    entry = config.entry(section, key)
    return str(entry.origin) if entry else config.path


def _error(config: Config, section: str, key: str, message: str) -> ConfigError:
    entry = config.entry(section, key)
    line = entry.origin.line if entry else 1
    return ConfigError(entry.origin.path if entry else config.path, line, message)


def _launch_delay(config: Config, text: str | None) -> float:
    if text is None:
        return 0.0
    seconds = _number("".join(text.split()))  # blanks removed, as configf:lookup-number does
    if seconds is None:
        raise _error(config, "setup", "launch-delay", f"launch-delay {text!r} is not a number")
    return max(seconds, 0.0)


def _jobgroups(config: Config, env: Mapping[str, str], cwd: Path) -> dict[str, float]:
    limits = {}
    for group, text in config.items("jobgroups", env=env, cwd=cwd):
        limit = _number(text.strip())
        if limit is None:
            warn_once(
                _log,
                "%s: [jobgroups] %s %r is not a number: no limit, as in Megatest"
                " (runs.scm:204-207)",
                _where(config, "jobgroups", group),
                group,
                text,
            )
        elif limit <= 0:
            raise _error(
                config,
                "jobgroups",
                group,
                f"[jobgroups] {group} {text.strip()}: no test of the group could ever launch",
            )
        else:
            limits[group] = limit
    return limits


def _second_pass(config: Config, text: str | None) -> bool:
    if text is None:
        return True
    reruns = _number(text)
    if reruns is None:
        warn_once(
            _log,
            "%s: reruns %r is not a number: not used, as in Megatest (runs.scm:338-339)",
            _where(config, "setup", "reruns"),
            text,
        )
        return True
    return reruns > 0  # it can only lower Megatest's run count of 1 (runs.scm:352-354)


def _auto_rerun(config: Config, text: str | None) -> tuple[AutoRerun, ...]:
    entries = []
    for word in (text or "").split():
        parts = word.split("/")  # Megatest's infix split: "/FAIL" is "" and "FAIL"
        entry = AutoRerun(parts[0], parts[1] if len(parts) > 1 else None)
        if "" in (entry.state, entry.status):
            warn_once(
                _log,
                "%s: allow-auto-rerun %s matches no record (an empty %s), as in Megatest"
                " (runs.scm:455-462, db.scm:2802-2805)",
                _where(config, "setup", "allow-auto-rerun"),
                word,
                "status" if entry.state else "state",
            )
        entries.append(entry)
    return tuple(entries)


def read_jobgroup(config: Config) -> str:
    """A test's jobgroup: ``[test_meta] jobgroup`` (runs.scm:1345), "" for none. A
    ``[requirements] jobgroup``, which Megatest does not read, is named in a warning.

    Raises:
        ConfigError: the value cannot be computed.
    """
    if config.has("requirements", "jobgroup"):
        warn_once(
            _log,
            "%s: [requirements] jobgroup is not used: Megatest reads a test's jobgroup from"
            " [test_meta] (runs.scm:1345)",
            _where(config, "requirements", "jobgroup"),
        )
    return (config.get("test_meta", "jobgroup") or "").strip()
