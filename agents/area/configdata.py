"""A Megatest config file as data: ordered sections of entries, each with where it was written.

What :func:`~mtpkt.agents.area.config.read_config` builds and the rest of the
area reads: a :class:`Config` of sections, each key an :class:`Entry` whose
value is text or a :class:`Deferred` ``[system cmd]`` computed when read, and
whose :class:`Origin` names file and line for every error about it.

A ``#{scheme ...}`` that fails while no run is being planned (the area read
when ``mtpkt home`` starts) stands in a value as a placeholder
(:meth:`Config.placeholder`); reading a value that holds one raises its
:class:`ConfigError`, naming where it was written (:meth:`Config.check`).
"""

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.errors import AreaError

__all__ = [
    "COMMAND_TIMEOUT",
    "Config",
    "ConfigError",
    "Deferred",
    "Entry",
    "Origin",
    "format_config",
    "run_bash",
]

COMMAND_TIMEOUT: Final = 300.0
"""Seconds a ``#{shell}``, ``#{system}`` or ``[system]`` command may take."""
_PLACEHOLDER: Final = re.compile("\x00(\\d+)\x00")


class ConfigError(AreaError):
    """A config file cannot be read, or a value in it cannot be computed.

    ``str(error)`` is one line: ``path:line: message``.
    """

    def __init__(self, path: str | os.PathLike[str], line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


@attrs.frozen
class Origin:
    """Where a value was written."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def run_bash(
    command: str, origin: Origin, *, env: Mapping[str, str], cwd: Path, what: str
) -> "subprocess.CompletedProcess[bytes]":
    """Run ``bash -c command`` for a config value: no stdin, output captured, time-limited.

    Args:
        command: the shell command.
        origin: where the config asks for it (errors name it).
        env: the command's environment.
        cwd: its working directory.
        what: the start of the error's message, e.g. ``[system cmd]``.

    Returns:
        The finished command, whatever its exit code.

    Raises:
        ConfigError: it could not run, or took longer than :data:`COMMAND_TIMEOUT`.
    """
    try:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(origin.path, origin.line, f"{what}: {exc}") from None


@attrs.frozen
class Deferred:
    """A ``key [system cmd]`` value: the command's output, computed when the value is read."""

    command: str
    """The shell command; its output lines are joined with spaces."""

    def run(self, origin: Origin, env: Mapping[str, str], cwd: Path) -> str:
        """Run the command (``bash -c``) and return its output as one line.

        Raises:
            ConfigError: the command could not run, failed or took too long.
        """
        what = f"[system {self.command}]"
        done = run_bash(self.command, origin, env=env, cwd=cwd, what=what)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            reason = f": {detail[-1]}" if detail else ""
            raise ConfigError(
                origin.path, origin.line, f"{what} exited with {done.returncode}{reason}"
            )
        return " ".join(done.stdout.decode(errors="replace").split("\n")).strip()


@attrs.frozen
class Entry:
    """One key's value and where it came from."""

    value: str | Deferred
    origin: Origin


@attrs.frozen
class _Failed:
    origin: Origin
    message: str


@attrs.define
class Config:
    """A config file read into ordered sections of ordered keys.

    Values are read with :meth:`get` (or :meth:`items`), which computes
    ``[system]`` values and raises :class:`ConfigError` for values that need a
    ``#{scheme}`` that failed.
    """

    path: str
    sections: dict[str, dict[str, Entry]] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)
    """Things worth knowing that are not errors: skipped includes, unset variables."""
    _failed: list[_Failed] = attrs.field(factory=list, alias="_failed")

    def has(self, section: str, key: str | None = None) -> bool:
        """Whether the section (and key) exists."""
        keys = self.sections.get(section)
        return keys is not None and (key is None or key in keys)

    def keys(self, section: str) -> list[str]:
        """The keys of a section, in the order written; [] for no such section."""
        return list(self.sections.get(section, {}))

    def entry(self, section: str, key: str) -> Entry | None:
        """The raw entry, uncomputed."""
        return self.sections.get(section, {}).get(key)

    def find_var(self, sections: Sequence[str], name: str) -> Entry | None:
        """A variable as ``#{rget name}`` finds it: in the first of ``sections`` that has it.

        ``name`` also finds ``!name``, a variable that is kept from the environment
        but can be read (the seed roadmap's ``!VARS``); a section's plain ``name``
        comes first. ``#{rget !name}`` names the entry exactly, as in Megatest.
        """
        for section in sections:
            keys = self.sections.get(section, {})
            entry = keys.get(name)
            if entry is None and not name.startswith("!"):
                entry = keys.get(f"!{name}")
            if entry is not None:
                return entry
        return None

    def get(
        self,
        section: str,
        key: str,
        default: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> str | None:
        """A value as text, or ``default`` when there is no such key.

        Args:
            section: section name.
            key: key name.
            default: returned when the key is absent.
            env: environment for a ``[system]`` value's command (default: this process's).
            cwd: working directory for that command (default: the config file's directory).

        Raises:
            ConfigError: the value needs a ``#{scheme}`` that failed, or its ``[system]``
                command failed.
        """
        entry = self.entry(section, key)
        if entry is None:
            return default
        return self.resolve(entry, env=env, cwd=cwd)

    def items(
        self, section: str, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> list[tuple[str, str]]:
        """Every key of a section with its computed value, in order (see :meth:`get`)."""
        return [
            (key, self.resolve(entry, env=env, cwd=cwd))
            for key, entry in self.sections.get(section, {}).items()
        ]

    def resolve(
        self, entry: Entry, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> str:
        """Compute an entry's value (see :meth:`get`)."""
        value = entry.value
        if isinstance(value, Deferred):
            self.check(value.command, entry.origin)
            return value.run(
                entry.origin, os.environ if env is None else env, cwd or Path(self.path).parent
            )
        self.check(value, entry.origin)
        return value

    def placeholder(self, origin: Origin, message: str) -> str:
        """Record a ``#{scheme}`` at ``origin`` that failed with ``message``; the text that
        stands for it in values, so that reading one raises (see :meth:`check`)."""
        self._failed.append(_Failed(origin, message))
        return f"\x00{len(self._failed) - 1}\x00"

    def check(self, text: str, origin: Origin) -> None:
        """Raise the error of the first failed ``#{scheme}`` that ``text`` depends on."""
        match = _PLACEHOLDER.search(text)
        if match is None:
            return
        use = self._failed[int(match.group(1))]
        where = "" if use.origin == origin else f" (used at {origin})"
        raise ConfigError(use.origin.path, use.origin.line, f"{use.message}{where}")

    def failed_uses(self) -> list[Origin]:
        """Where the file (and its includes) has a ``#{scheme}`` that failed."""
        return [use.origin for use in self._failed]


def format_config(config: Config) -> str:
    """Write a config back as text that reads back the same (plain values only)."""
    out: list[str] = []
    for section, keys in config.sections.items():
        out.append(f"[{section}]")
        for key, entry in keys.items():
            value = entry.value
            if isinstance(value, Deferred):
                out.append(f"{key} [system {value.command}]")
                continue
            first, *rest = value.split("\n")
            out.append(f"{key} {first}" if first else key)
            out.extend(f"  {line}" for line in rest)
        out.append("")
    return "\n".join(out)
