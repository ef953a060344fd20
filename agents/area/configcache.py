"""A run's resolved configs, kept in its directory so that a later plan of the run can tell
what changed (the seed roadmap's config caching).

Planning a run reads megatest.config, runconfigs.config and each planned
test's testconfig (:func:`~mtpkt.agents.area.plan_run`); :func:`resolve`
turns what it read into plain values as that run sees them: ``#{…}``
expanded (the reader did that). A ``[system …]`` value is kept as written,
its command, not its output: what such a command prints often depends on
what the runs themselves write (fullrun's ``DEADVAR [system ls]`` lists the
area, to which every run adds its ``tmp/``; a testconfig's ``[items]`` made
from a file a prerequisite writes, :mod:`~mtpkt.agents.area.deferred`), and
planning must not read that as a change: Megatest, which has no STALE, gives
those tests their verdicts, and so must mtpkt. A changed command is a
change. runconfigs.config
counts with its ``[default]`` and target sections only, the ones the run
reads, as Megatest's own cache of it has them (``launch.scm`` 917 and 998, where
``sections`` is ``default`` and the target).

The result is kept as one JSON file in the run's directory (``$MT_RUNPATH``,
:func:`~mtpkt.agents.area.paths.run_root`), :data:`CACHE_NAME`::

    {"format": 1, "target": "ubuntu/nfs/none", "runname": "r1",
     "configs": {"megatest.config": {"fields": {"sysname": "TEXT", …}, …},
                 "runconfigs.config": {"default": {…}, "ubuntu/nfs/none": {…}},
                 "tests/runfirst/testconfig": {"ezsteps": {…}, …}}}

One file, not one per config: the home replaces it as a whole
(:mod:`mtpkt.agents.home.stale`), so a crash never leaves configs of two
plans side by side that would then look changed. A
testconfig is kept under ``tests/<test>/testconfig`` whatever directory
``[tests-paths]`` gives the test.

:func:`changes` compares a plan's resolution with the cache: a value
changed, added or removed, or keys of a section in another order (steps
and items run in the order written) is a change; a testconfig that the
cache does not have (a test new to the run) is not. The home turns changes
into STALE records (:mod:`mtpkt.agents.home.stale`).

Megatest caches its configs as well (``.megatest.cfg-<version>-<hash>`` and
``.runconfigs.cfg-…`` in the run directory, ``launch.scm`` 884-907 and
1006-1015; the test's ``.testconfig`` in its work area, ``launch.scm``
743-748), but reads them back instead of the files. mtpkt reads the files
anew for every run and uses the cache only to tell what changed.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, TypeGuard

import attrs

from mtpkt.agents.area.configdata import Config, ConfigError, Deferred, Entry
from mtpkt.agents.area.model import Area, RunConfig, TestConfig

__all__ = [
    "CACHE_NAME",
    "Change",
    "ConfigRead",
    "Resolved",
    "changes",
    "config_reads",
    "decode",
    "describe",
    "encode",
    "resolve",
]

CACHE_NAME: Final = ".mtpkt-configs.json"
"""The cache's file name in the run's directory."""
FORMAT: Final = 1
"""The cache's format version; a cache of another is read as none."""
SHOWN: Final = 6
"""Changes :func:`describe` names before it only counts the rest."""

Resolved = dict[str, dict[str, dict[str, str]]]
"""Config name → section → key → value, each in the order written."""


@attrs.frozen
class ConfigRead:
    """One config file as a plan read it."""

    name: str
    """``megatest.config``, ``runconfigs.config`` or ``tests/<test>/testconfig``."""
    config: Config
    env: Mapping[str, str]
    """The environment its values are resolved in."""
    cwd: Path
    """Their working directory."""
    sections: tuple[str, ...] | None = None
    """The sections that count (None: all of them)."""


@attrs.frozen
class Change:
    """One value that resolves differently: ``runconfigs.config [linux/x86] GREETING``."""

    config: str
    section: str
    key: str
    """The key, or ``(order)`` when only the order of the section's keys changed."""


def config_reads(
    area: Area,
    runconfig: RunConfig,
    tests: Mapping[str, TestConfig],
    env: Mapping[str, str],
    runpath: Path,
) -> tuple[ConfigRead, ...]:
    """The configs of one plan, each with what its ``[system]`` values run with: the area's
    environment and directory for megatest.config (as ``[env-override]`` is computed), the
    run's environment for the others, in the area (runconfigs, launch.scm:633-635) or in
    the run's directory (testconfigs, where ``[items]`` commands run)."""
    return (
        ConfigRead("megatest.config", area.config, area.env, area.home),
        ConfigRead(
            "runconfigs.config", runconfig.config, env, area.home, ("default", runconfig.target)
        ),
        *(
            ConfigRead(f"tests/{name}/testconfig", test.config, env, runpath)
            for name, test in tests.items()
        ),
    )


def _value(read: ConfigRead, section: str, entry: Entry) -> str:
    if isinstance(entry.value, Deferred):  # its command, not its output (module doc)
        return f"[system {entry.value.command}]"
    try:
        return read.config.resolve(entry, env=read.env, cwd=read.cwd)
    except ConfigError as exc:  # the run fails where it needs the value, not here
        return f"(not resolved: {exc})"


def resolve(reads: Sequence[ConfigRead]) -> Resolved:
    """Every value of the configs as the run sees it (``[system]`` values as written; a value
    that cannot be resolved stands as ``(not resolved: <its error>)``)."""
    resolved: Resolved = {}
    for read in reads:
        sections = read.config.sections
        names = list(sections) if read.sections is None else read.sections
        resolved[read.name] = {
            name: {key: _value(read, name, entry) for key, entry in sections[name].items()}
            for name in names
            if name in sections
        }
    return resolved


def changes(cached: Resolved, resolved: Resolved) -> list[Change]:
    """What resolves differently from the cache, config by config (those it has)."""
    found: list[Change] = []
    for name, sections in resolved.items():
        before = cached.get(name)
        if before is None:
            continue
        for section in [*sections, *(s for s in before if s not in sections)]:
            old, new = before.get(section, {}), sections.get(section, {})
            keys = [key for key, value in new.items() if old.get(key) != value]
            keys += [key for key in old if key not in new]
            if not keys and list(old) != list(new):
                keys = ["(order)"]
            found += [Change(name, section, key) for key in keys]
    return found


def describe(found: Sequence[Change]) -> str:
    """One line naming the changes: ``configs changed: runconfigs.config [linux/x86]
    GREETING, [default] X; tests/unit/testconfig [items] A`` (the first :data:`SHOWN`)."""
    parts: list[str] = []
    last = ""
    for change in found[:SHOWN]:
        what = f"[{change.section}] {change.key}"
        if change.config == last:
            parts[-1] += f", {what}"
        else:
            parts.append(f"{change.config} {what}")
            last = change.config
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return f"configs changed: {'; '.join(parts)}{more}"


def _is_resolved(value: object) -> TypeGuard[Resolved]:
    """Whether ``value`` has the shape of :data:`Resolved` (the file may be anyone's)."""
    return isinstance(value, dict) and all(
        isinstance(sections, dict)
        and all(
            isinstance(keys, dict)
            and all(isinstance(key, str) and isinstance(text, str) for key, text in keys.items())
            for keys in sections.values()
        )
        for sections in value.values()
    )


def encode(target: str, runname: str, configs: Resolved) -> bytes:
    """The cache file of run ``runname`` of ``target`` holding ``configs``."""
    data = {"format": FORMAT, "target": target, "runname": runname, "configs": configs}
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


def decode(data: bytes, target: str, runname: str) -> Resolved:
    """The configs of a cache file that :func:`encode` wrote for this run.

    Raises:
        ValueError: it is not JSON, not of this format or not of this run.
    """
    found = json.loads(data)
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise ValueError(f"not a cache of format {FORMAT}")
    if (found.get("target"), found.get("runname")) != (target, runname):
        raise ValueError(f"not the cache of run {target}/{runname}")
    configs = found.get("configs")
    if not _is_resolved(configs):
        raise ValueError("its configs are not sections of text values")
    return configs
