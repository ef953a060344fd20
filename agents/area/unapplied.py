"""Megatest keys mtpkt does not apply: named in one warning line per run, or refused.

docs/area.md's table "Every Megatest config key" says, for each key Megatest
reads, what mtpkt does with it. Most are applied as Megatest applies them, or
do a job mtpkt's home does its own way. The keys here change what a test does
or how it ends in Megatest, and mtpkt does not do that (yet): a run whose
configs set one gets one warning line naming each such key and where it is
written (:func:`key_warning`), so a run never differs from Megatest's
silently. ``[subrun] runwait`` (a test that is a whole Megatest run of its
own, launch.scm:327-334) is refused instead: without it the test would be its
ezsteps alone and could pass where Megatest's would fail.

The home computes the line with the launcher warning
(:func:`run_warning`, :mod:`~mtpkt.agents.area.launchers`) when it plans a
run: it goes into its log and the comment of the run's first ``NOT_STARTED``
record, where ``mtpkt tail``, ``tests`` and ``send run --wait`` show it.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.configcache import ConfigRead
from mtpkt.agents.area.configdata import Config, ConfigError, Origin
from mtpkt.agents.area.launchers import plan_warning
from mtpkt.agents.area.plan import Plan

__all__ = ["UNAPPLIED", "Unapplied", "check_refused", "key_warning", "run_warning"]

MEGATEST: Final = "megatest.config"
TESTCONFIG: Final = "testconfig"


@attrs.frozen
class Unapplied:
    """A key mtpkt does not apply, and what happens instead."""

    file: str
    """:data:`MEGATEST` or :data:`TESTCONFIG`."""
    section: str
    key: str | None
    """None: any key of the section."""
    instead: str
    """What mtpkt does instead, for the warning line."""


UNAPPLIED: Final[tuple[Unapplied, ...]] = (
    Unapplied(
        MEGATEST, "setup", "testcopycmd", "mtpkt copies the test directory itself (launch.scm:1126)"
    ),
    Unapplied(
        MEGATEST,
        "setup",
        "dbdir-space-required",
        "free space is not checked before a run (runs.scm:349)",
    ),
    Unapplied(
        MEGATEST,
        "validvalues",
        "cleanrerun-states",
        "rerunclean reruns by mtpkt's outcome rules (megatest.scm:1625)",
    ),
    Unapplied(
        MEGATEST,
        "validvalues",
        "cleanrerun-statuses",
        "rerunclean reruns by mtpkt's outcome rules (megatest.scm:1627)",
    ),
    Unapplied(
        TESTCONFIG,
        "requirements",
        "waitor",
        "the tests it names are not added to the run (tests.scm:167, runs.scm:485-559)",
    ),
)
"""Each key mtpkt does not apply whose effect in Megatest changes what runs or how a
test ends."""


def _kind(name: str) -> str | None:
    """Which of Megatest's files a plan's config read is."""
    if name == MEGATEST:
        return MEGATEST
    if name.endswith("/testconfig"):
        return TESTCONFIG
    return None


def _where(origin: Origin, home: Path) -> str:
    """An origin with its path relative to the area's home when it is inside."""
    path = Path(origin.path)
    try:
        return f"{path.relative_to(home)}:{origin.line}"
    except ValueError:
        return str(origin)


def _found(read: ConfigRead, rule: Unapplied) -> Origin | None:
    """Where ``read`` sets ``rule``'s key (its first key, for a whole section)."""
    if rule.key is not None:
        entry = read.config.entry(rule.section, rule.key)
        return entry.origin if entry is not None else None
    for key in read.config.keys(rule.section):
        entry = read.config.entry(rule.section, key)
        if entry is not None:
            return entry.origin
    return None


def key_warning(reads: Iterable[ConfigRead], home: Path) -> str:
    """The warning line for the keys of :data:`UNAPPLIED` that a run's configs set: each
    named once, with the first place it is written and how many more files set it; ""
    when none does. Keys in :data:`UNAPPLIED`'s order, each at its first file by name.

    Args:
        reads: the configs the run's plan read (:attr:`~mtpkt.agents.area.plan.Plan.configs`).
        home: the area's home, so that places are named relative to it.
    """
    found: dict[Unapplied, list[Origin]] = {}
    for read in reads:
        kind = _kind(read.name)
        for rule in UNAPPLIED:
            if rule.file != kind:
                continue
            origin = _found(read, rule)
            if origin is not None:
                found.setdefault(rule, []).append(origin)
    parts = []
    for rule in UNAPPLIED:  # in the table's order, each at its first file by name
        if not (origins := sorted(found.get(rule, []), key=lambda o: (o.path, o.line))):
            continue
        key = f" {rule.key}" if rule.key is not None else ""
        more = f" (and {len(origins) - 1} more)" if len(origins) > 1 else ""
        parts.append(f"{_where(origins[0], home)} [{rule.section}]{key}{more}: {rule.instead}")
    if not parts:
        return ""
    return "warning: not applied by mtpkt: " + "; ".join(parts)


def check_refused(reads: Sequence[ConfigRead]) -> None:
    """Refuse a run with a test that is a Megatest run of its own.

    Raises:
        ConfigError: a testconfig has ``[subrun] runwait``, the key Megatest takes as the
            request for a nested run (launch.scm:327-334).
    """
    for read in reads:
        if _kind(read.name) != TESTCONFIG:
            continue
        entry = read.config.entry("subrun", "runwait")
        if entry is not None:
            raise ConfigError(
                entry.origin.path,
                entry.origin.line,
                "[subrun] runwait: a test that is a Megatest run of its own cannot be run"
                " by mtpkt yet (launch.scm:327-334)",
            )


def run_warning(config: Config, plan: Plan, home: Path) -> str:
    """A planned run's warning line: the launchers mtpkt does not honour
    (:func:`~mtpkt.agents.area.launchers.plan_warning`) and the keys of the run's configs
    it does not apply (:func:`key_warning`); "" for none.

    Args:
        config: megatest.config, for the launchers.
        plan: the run's plan; its configs are checked.
        home: the area's home.

    Raises:
        ConfigError: a ``[launchers]`` key is not a testpatt, or :func:`check_refused`.
    """
    check_refused(plan.configs)
    parts = [plan_warning(config, plan, home), key_warning(plan.configs, home)]
    return "; ".join(part for part in parts if part)
