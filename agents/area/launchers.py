"""Launchers: how Megatest would start each test, and whether mtpkt can do the same.

Megatest starts a test with a *launcher* command (launch.scm:1391,
``common:get-launcher``, common.scm:2322-2353): ``[jobtools] launcher``; or,
with ``[jobtools] flexi-launcher`` set and not ``no``, the first
``[launchers]`` line whose testpatt matches the test and item names a host
type, and ``[host-types]`` gives that type's command (a host type without one
is passed over with a warning; no match falls back to ``[jobtools]
launcher``). A ``[host-types]`` value starting ``#MTLOWESTLOAD`` means "the
least loaded of these hosts, through ``remrun``".

Megatest's local launchers (``nbfake`` without ``NBFAKE_HOST``, ``exec``,
none at all) run the test on a host of the farm, as mtpkt's host agents do,
so such tests go to the agents. A launcher whose first word is a batch
system's submitter (``sbatch``, ``bsub``, ``qsub``, ``condor_submit``:
:data:`BATCH_SUBMITTERS`) sends each of its tests to that batch system as a
job of its own (:func:`is_batch`; the home's ``batchjobs`` does it, docs/batch.md).
Any other launcher (``sleeprunner``, ``remrun``, ``NBFAKE_HOST=… nbfake``)
cannot be honoured: the run goes on, on the agents, and the home says so
in one warning line per run (:func:`run_warning`). Values are computed only
for the launchers the run's tests would use, and a value that cannot be
computed is named in that line rather than stopping the run.

``[jobtools] maxload`` (runs.scm:948, default 3.0, a word that is no number
turns it off) is read and checked here (:func:`maxload`).
"""

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.configdata import Config, ConfigError, Origin
from mtpkt.agents.area.errors import AreaError
from mtpkt.agents.area.plan import Plan
from mtpkt.agents.area.testpatt import TestPatt

__all__ = [
    "BATCH_SUBMITTERS",
    "LOCAL_LAUNCHERS",
    "Launcher",
    "Launchers",
    "is_batch",
    "is_local",
    "launcher_words",
    "maxload",
    "plan_warning",
    "run_warning",
]

LOCAL_LAUNCHERS: Final = frozenset({"nbfake", "exec"})
"""Megatest's launchers that run the test on a host of the farm, as mtpkt's agents do."""
BATCH_SUBMITTERS: Final = frozenset({"sbatch", "bsub", "qsub", "condor_submit"})
"""The first words of launchers that submit to a batch system: Slurm, LSF, PBS/Torque,
HTCondor."""
MAXLOAD: Final = 3.0
"""``[jobtools] maxload`` when not set (runs.scm:948)."""


@attrs.frozen
class Launcher:
    """The launcher a test instance would get, or why it could not be computed."""

    command: str
    origin: Origin | None
    """Where the command was written; None for no launcher at all."""
    error: str = ""
    """Why the value could not be computed ("" when it was)."""

    def __str__(self) -> str:
        where = f" ({self.origin})" if self.origin else ""
        return f"{self.error}" if self.error else f"launcher {self.command!r}{where}"


def launcher_words(command: str) -> list[str]:
    """A launcher's words as Megatest splits them (at white space, launch.scm:1407), any
    leading ``exec`` passed over."""
    words = command.split()
    while words and words[0] == "exec":
        words = words[1:]
    return words


def is_local(command: str) -> bool:
    """Whether a launcher command is one of Megatest's local ones (``nbfake``, ``exec``,
    ``exec nbfake``, a path to ``nbfake``, or none), which run the test on a farm host."""
    words = launcher_words(command)
    if not words:
        return True
    return "=" not in words[0] and os.path.basename(words[0]) in LOCAL_LAUNCHERS


def is_batch(command: str) -> bool:
    """Whether a launcher command submits to a batch system (:data:`BATCH_SUBMITTERS`)."""
    words = launcher_words(command)
    return bool(words) and os.path.basename(words[0]) in BATCH_SUBMITTERS


class Launchers:
    """Megatest's choice of launcher for each test instance (``common:get-launcher``).

    Args:
        config: megatest.config.
        env: environment for computed values.
        cwd: their working directory.

    Raises:
        ConfigError: a ``[launchers]`` key is not a testpatt.
    """

    def __init__(self, config: Config, env: Mapping[str, str], cwd: Path) -> None:
        self.config = config
        self.env = env
        self.cwd = cwd
        self.notes: list[str] = []
        """Host types named in ``[launchers]`` that ``[host-types]`` does not have."""
        self._values: dict[tuple[str, str], Launcher] = {}
        flexi = self._value("jobtools", "flexi-launcher")
        self._patterns: list[tuple[TestPatt, str]] = []
        if flexi.command.strip() and flexi.command.strip() != "no":
            for key in config.keys("launchers"):
                entry = config.entry("launchers", key)
                assert entry is not None
                try:
                    patt = TestPatt.parse(key)
                except AreaError as exc:
                    raise ConfigError(entry.origin.path, entry.origin.line, str(exc)) from None
                host_type = self._value("launchers", key)
                self._patterns.append((patt, host_type.command.strip()))

    def _value(self, section: str, key: str) -> Launcher:
        """A value, computed once; its error kept rather than raised."""
        if (section, key) in self._values:
            return self._values[(section, key)]
        entry = self.config.entry(section, key)
        if entry is None:
            found = Launcher("", None)
        else:
            try:
                value = self.config.resolve(entry, env=self.env, cwd=self.cwd)
                found = Launcher(value.strip(), entry.origin)
            except ConfigError as exc:
                found = Launcher("", entry.origin, f"launcher not computed: {exc}")
        self._values[(section, key)] = found
        return found

    def every(self) -> list[Launcher]:
        """Every launcher an instance may get: each host type ``[launchers]`` names, then
        ``[jobtools] launcher``."""
        named = [self._value("host-types", host_type) for _, host_type in self._patterns]
        return [*named, self._value("jobtools", "launcher")]

    def of(self, test: str, item: str) -> Launcher:
        """The launcher of one test instance (common.scm:2322-2353)."""
        for patt, host_type in self._patterns:
            if not patt.matches(test, item):
                continue
            launcher = self._value("host-types", host_type)
            if launcher.origin is not None:
                return launcher
            note = f"no launcher found for host-type {host_type!r} ([launchers])"
            if note not in self.notes:
                self.notes.append(note)
        return self._value("jobtools", "launcher")


def run_warning(launchers: Launchers, instances: Iterable[tuple[str, str]]) -> str:
    """The one warning line of a run whose instances would use launchers mtpkt cannot honour,
    naming each and how many instances it has; "" when every launcher is local or a batch
    system's.

    Args:
        launchers: the area's launchers.
        instances: ``(test, item)`` of each instance the run plans.
    """
    counts: dict[Launcher, int] = {}
    for test, item in instances:
        launcher = launchers.of(test, item)
        if launcher.error or not (is_local(launcher.command) or is_batch(launcher.command)):
            counts[launcher] = counts.get(launcher, 0) + 1
    parts = [f"{launcher} for {n} test instance(s)" for launcher, n in counts.items()]
    if not parts and not launchers.notes:
        return ""
    what = "; ".join([*parts, *launchers.notes])
    if not parts:
        return f"warning: {what}"
    return (
        f"warning: {what}: not honoured (neither local nor a batch system), run on mtpkt's agents"
    )


def plan_warning(config: Config, plan: Plan, cwd: Path) -> str:
    """:func:`run_warning` for every instance of a planned run, values computed in the
    run's environment.

    Raises:
        ConfigError: a ``[launchers]`` key is not a testpatt.
    """
    launchers = Launchers(config, plan.env, cwd)
    return run_warning(launchers, ((i.ref.test, i.ref.item) for i in plan.instances()))


def maxload(config: Config, env: Mapping[str, str], cwd: Path) -> float | None:
    """``[jobtools] maxload``: the normalized load above which Megatest waits before
    launching (runs.scm:948, at least 0.5: common.scm:1561); None when it is a word that
    is no number, which turns it off.

    Raises:
        ConfigError: the value cannot be computed.
    """
    text = config.get("jobtools", "maxload", env=env, cwd=cwd)
    if text is None:
        return MAXLOAD
    try:
        return max(float(text.strip()), 0.5)
    except ValueError:
        return None
