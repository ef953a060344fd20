"""Reader for Megatest's config file format.

The format (Megatest's ``configf.scm``)::

    # a comment
    [section]
    key value is the rest of the line
    long a value continued \\
         on the next line (the backslash joins the lines)
    multi first line
      indented lines continue the previous value, joined with a newline
    items [system ls /data]          (a value computed by a shell command when needed)
    path #{getenv HOME}/x            (also #{get section key}, #{rget VAR}, #{shell cmd},
                                      #{system cmd}, #{realpath p}, #{mtrah p},
                                      #{scheme (code)})
    # #{system make-it}              (even in a comment, as in Megatest: the command runs)
    [include other.config]           (relative to this file; a missing file is skipped)
    [%/%/nightly]                    (a wildcard section: its keys go to every matching section)

This module reads the lines; :mod:`~mtpkt.agents.area.expand` expands the
``#{...}`` in them, and :mod:`~mtpkt.agents.area.configdata` holds what is read
(:class:`Config`, :class:`Entry`, :class:`ConfigError` …, importable from here too).

Where this reader differs from Megatest, on purpose:

* ``#{scheme ...}`` runs in a small evaluator of its own
  (:mod:`mtpkt.agents.area.scheme`), not in Chicken Scheme: what it does not
  have is an error naming the file and line. Without a run being planned, a
  failing one fails the value that uses it when that value is read, and a
  section header or include path at once.
* A line is a comment or blank when it is one after expansion too, as in
  Megatest (``#{scheme (unsetenv "X")}`` alone on a line gives
  ``#<unspecified>``, a comment).
* ``$VAR`` in an environment section is expanded here (``$VAR`` and
  ``${VAR}``, unset variables give "") instead of by ``echo`` in a shell, so
  there is no globbing or quote removal.
* An unset ``#{getenv}`` or missing ``#{get}`` gives "" (Megatest writes
  ``#f``), and is recorded in :attr:`Config.notes`.
"""

import copy
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

from mtpkt.agents.area.configdata import (
    Config,
    ConfigError,
    Deferred,
    Entry,
    Origin,
    format_config,
)
from mtpkt.agents.area.expand import Expander
from mtpkt.agents.area.scheme import SchemeContext

__all__ = ["Config", "ConfigError", "Deferred", "Entry", "Origin", "format_config", "read_config"]

MAX_INCLUDE_DEPTH: Final = 32
"""Includes nested at the most (deeper is taken for a loop)."""
MAX_FILE_SIZE: Final = 16 * 1024 * 1024
"""Largest config file read (bytes)."""

_COMMENT = re.compile(r"^\s*#(?!\{)")
_EXPANDED_COMMENT = re.compile(r"^\s*#")
_BLANK = re.compile(r"^\s*$")
_SETTINGS = re.compile(r"^\[configf:settings\s+(\S+)\s+(\S+)\]\s*$")
_INCLUDE = re.compile(r"^\[include\s+(.*)\]\s*$")
_SCRIPTINC = re.compile(r"^\[scriptinc\s+(\S+)([^\]]*)\]\s*$")
_SECTION = re.compile(r"^\[(.*)\]\s*$")
_KEY_SYSTEM = re.compile(r"^(\S+)\s+\[system\s+(\S+.*)\]\s*$")
_KEY_VALUE = re.compile(r"^(\S+)(?:\s+(.*))?$", re.DOTALL)
_CONTINUED = re.compile(r"^(\s+)(\S.*)$", re.DOTALL)
_ENV_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class _Reader:
    """State of one read: the config being built, its expander, the settings."""

    def __init__(
        self, config: Config, expander: Expander, *, env_section: Callable[[str], bool]
    ) -> None:
        self.config = config
        self.expander = expander
        self.env = expander.env  # the same dict: what an env section sets, #{getenv} sees
        self.env_section = env_section
        self.trim_trailing_spaces = False
        # Comments are expanded for what their #{...} do, into a config that shares the
        # sections (so #{get} works) but keeps its notes and placeholders to itself.
        self.comment_expander = copy.copy(expander)
        self.comment_expander.config = Config(path=config.path, sections=config.sections)

    def read(self, path: Path, section: str, depth: int) -> None:
        """Read one file into the config, starting in ``section``."""
        if depth > MAX_INCLUDE_DEPTH:
            raise ConfigError(path, 1, f"includes nested over {MAX_INCLUDE_DEPTH} deep (a loop?)")
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_FILE_SIZE + 1)
        except OSError as exc:
            raise ConfigError(path, 1, f"cannot read: {exc.strerror or exc}") from None
        if len(raw) > MAX_FILE_SIZE:
            raise ConfigError(path, 1, f"larger than {MAX_FILE_SIZE} bytes: not a config file")
        self.read_text(_decode(raw, path), str(path), section, depth)

    def read_text(self, text: str, name: str, section: str, depth: int) -> None:
        """Read config text (a file's, or a script's output), starting in ``section``."""
        continued: str | None = None  # the key an indented line would continue
        lead: str | None = None  # the first continuation line's indent, trimmed from the rest
        for number, logical in _logical_lines(text):
            origin = Origin(name, number)
            if _COMMENT.match(logical) or _BLANK.match(logical):
                continued = lead = None
                if "#{" in logical:
                    self._expand_comment(logical, origin)
                continue
            line = self.expander.expand(logical, origin)
            if self.trim_trailing_spaces:
                line = line.rstrip()
            if _EXPANDED_COMMENT.match(line) or _BLANK.match(line):  # configf.scm: after expansion
                continued = lead = None
                continue
            if (match := _CONTINUED.match(line)) is not None:
                if continued is not None:
                    whitespace, rest = match.groups()
                    indent = "" if lead is None else whitespace.replace(lead, "", 1)
                    lead = whitespace if lead is None else lead
                    self._append(section, continued, indent + rest, origin)
                continue
            continued = lead = None
            if line.startswith("["):
                opened = self._bracket_line(line, origin, section, depth)
                if opened is not False:
                    section = opened if isinstance(opened, str) else section
                    continue
            continued = self._key_line(line, section, origin)
        self._close_section(section)

    def _expand_comment(self, line: str, origin: Origin) -> None:
        """Expand a comment line and drop it, as Megatest does: its reader expands every
        line before it tells what the line is (configf.scm:161-183, 284-307), so a
        ``#{system}`` in a comment runs. Megatest only warns when that fails; so does this."""
        try:
            self.comment_expander.expand(line, origin)
        except ConfigError as exc:
            self.config.notes.append(f"{exc} (in a comment, which is otherwise ignored)")

    def _bracket_line(self, line: str, origin: Origin, section: str, depth: int) -> str | bool:
        """Handle a ``[...]`` line: the section it opens, or True if it opens none.

        Raises:
            ConfigError: the line starts with ``[`` but is no bracket form.
        """
        if (match := _SETTINGS.match(line)) is not None:
            if match.group(1) == "trim-trailing-spaces":
                self.trim_trailing_spaces = match.group(2) != "no"
            return True
        if (match := _INCLUDE.match(line)) is not None:
            self._include(match.group(1).strip(), origin, section, depth)
            return True
        if (match := _SCRIPTINC.match(line)) is not None:
            self._script_include(match.group(1), match.group(2).strip(), origin, section, depth)
            return True
        if (match := _SECTION.match(line)) is None:
            # Megatest would read "[ezsteps" as a key named "[ezsteps": a typo that
            # silently drops a section. Refuse it instead.
            raise ConfigError(
                origin.path, origin.line, f"{line.strip()!r}: section header without ']'"
            )
        name = match.group(1)
        self.config.check(name, origin)
        self._close_section(section)
        self.config.sections.setdefault(name, {})
        return name

    def _key_line(self, line: str, section: str, origin: Origin) -> str | None:
        """Store a ``key value`` line; returns the key (which indented lines may continue)."""
        if (match := _KEY_SYSTEM.match(line)) is not None:
            key, command = match.groups()
            self._store(section, key, Deferred(command), origin)
            return None
        match = _KEY_VALUE.match(line)
        if match is None:  # cannot happen for a non-blank line that starts with no space
            raise ConfigError(origin.path, origin.line, f"cannot parse {line!r}")
        key, value = match.group(1), match.group(2) or ""
        if self.env_section(section):
            value = self.expand_env(value)
            # A #{scheme} placeholder holds NUL, which no environment variable can: such a
            # value stays in the config only, where reading it raises.
            if not key.startswith("!") and ":" not in key and "\x00" not in value:
                self.env[key] = value
        self._store(section, key, value, origin)
        return key

    def _store(self, section: str, key: str, value: str | Deferred, origin: Origin) -> None:
        keys = self.config.sections.setdefault(section, {})
        keys.pop(key, None)  # a key written again moves to the end, as in Megatest
        keys[key] = Entry(value, origin)

    def _append(self, section: str, key: str, text: str, origin: Origin) -> None:
        entry = self.config.sections[section][key]
        if isinstance(entry.value, Deferred):
            raise ConfigError(origin.path, origin.line, f"a [system] value ({key}) cannot continue")
        self.config.sections[section][key] = Entry(f"{entry.value}\n{text}", entry.origin)

    def expand_env(self, value: str) -> str:
        """``$VAR`` and ``${VAR}`` from the environment as read so far; unset gives ""."""
        return _ENV_VAR.sub(lambda m: self.env.get(m.group(1) or m.group(2), ""), value)

    def _include(self, spec: str, origin: Origin, section: str, depth: int) -> None:
        self.config.check(spec, origin)
        if depth >= MAX_INCLUDE_DEPTH:
            raise ConfigError(
                origin.path, origin.line, f"includes nested over {MAX_INCLUDE_DEPTH} deep (a loop?)"
            )
        path = Path(os.path.expanduser(spec))
        if not path.is_absolute():
            path = Path(origin.path).parent / path
        path = Path(os.path.normpath(path))
        if not path.is_file():
            self.config.notes.append(f"{origin}: [include {spec}]: {path} not found, skipped")
            return
        self.read(path, section, depth + 1)

    def _script_include(
        self, script: str, params: str, origin: Origin, section: str, depth: int
    ) -> None:
        path = Path(script) if Path(script).is_absolute() else Path(origin.path).parent / script
        if not (path.is_file() and os.access(path, os.X_OK)):
            self.config.notes.append(f"{origin}: [scriptinc {script}]: not an executable, skipped")
            return
        done = self.expander.run(f"{path} {params}", origin)
        if done.returncode != 0:
            raise ConfigError(origin.path, origin.line, f"[scriptinc {script}] failed")
        self.read_text(_decode(done.stdout, path), f"{path} (output)", section, depth + 1)

    def _close_section(self, section: str) -> None:
        """A wildcard section's keys go to every matching section, then it is dropped."""
        if "%" in section:
            pattern = re.compile(".*".join(re.escape(part) for part in section.split("%")))
        elif len(section) > 2 and section.startswith("/") and section.endswith("/"):
            try:
                pattern = re.compile(section[1:-1])
            except re.error:
                return
        else:
            return
        entries = self.config.sections.pop(section, {})
        for name, keys in self.config.sections.items():
            if pattern.fullmatch(name):
                for key, entry in entries.items():
                    keys.pop(key, None)
                    keys[key] = entry


def _decode(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(path, line, "not UTF-8 text") from None
    if "\x00" in text:
        raise ConfigError(path, text[: text.index("\x00")].count("\n") + 1, "contains a NUL byte")
    return text


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, each with the number of its first line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        start = index
        line = lines[index].removesuffix("\r")
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + lines[index].removesuffix("\r")
        yield start + 1, line
        index += 1


def read_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    env_section: Callable[[str], bool] | None = None,
    rget: Callable[[str], str | None] | None = None,
    target: str | None = None,
    sections: tuple[str, ...] = (),
    cwd: Path | None = None,
    allow_commands: bool = True,
    scheme: SchemeContext | None = None,
) -> tuple[Config, dict[str, str]]:
    """Read a Megatest config file (and its includes).

    Args:
        path: the file.
        env: environment for ``#{getenv}``, ``$VAR`` and commands (default: this process's).
        env_section: sections whose values are environment settings: ``$VAR`` is
            expanded in them and each key is set in the environment as it is read.
        rget: how ``#{rget VAR}`` finds a runconfig value; by default it looks in
            this file's ``target`` section, then ``[default]``.
        target: the target, for ``#{rget}`` while reading runconfigs.config.
        sections: sections that exist before reading (so wildcard sections apply to them).
        cwd: working directory for commands (default: the file's directory).
        allow_commands: run ``#{shell}``, ``#{system}``, ``[scriptinc]`` and Scheme's
            ``create-directory`` while reading; when False they are errors (``[system]``
            values stay deferred).
        scheme: what ``#{scheme}`` sees: the run being planned and the area (default:
            no run, the area from ``MT_RUN_AREA_HOME``).

    Returns:
        The config, and the environment as the file left it.

    Raises:
        ConfigError: the file (or an include) cannot be read or parsed.
    """
    path = Path(path)
    config = Config(path=str(path))
    for name in sections:
        config.sections.setdefault(name, {})
    expander = Expander(
        config,
        env=dict(os.environ if env is None else env),
        rget=rget,
        target=target,
        cwd=cwd or path.parent,
        allow_commands=allow_commands,
        scheme=scheme,
    )
    reader = _Reader(config, expander, env_section=env_section or (lambda _section: False))
    reader.read(path, "default", 0)
    return config, reader.env
