"""``#{...}`` in Megatest config lines: the forms, and expanding a line with them.

A line is expanded as it is read, the last (innermost) ``#{name argument}``
first, until none is left (Megatest's ``configf.scm``). The forms, with their
short names:

* ``#{getenv VAR}`` (``gv``): the environment as read so far; unset gives "" and
  a note in :attr:`Config.notes` (Megatest writes ``#f``);
* ``#{get section key}`` (``g``): a value of this file read so far; missing
  gives "" and a note;
* ``#{rget VAR}`` (``runconfigs-get``): a runconfig value of the target;
* ``#{shell cmd}`` (``sh``): the command's output, lines joined with spaces;
  ``#{system cmd}``: its exit code;
* ``#{realpath p}`` (``rp``), ``#{mtrah p}``: a resolved path; a path under the
  area's home;
* ``#{scheme ...}`` (``scm``): the code's value, written as Megatest writes
  it, from the evaluator of :mod:`mtpkt.agents.area.scheme` with the read's
  :class:`~mtpkt.agents.area.scheme.SchemeContext` (the run being planned, the
  area) and its environment. Code that fails is an error naming file, line
  and form; while no run is being planned (the area read when ``mtpkt home``
  starts) the error waits in a placeholder instead, raised when a value
  holding it is read (:meth:`Config.placeholder`), so that a line that only
  works in a run does not keep the home from starting.

Each form is a function of the read's :class:`Expander`, its argument and its
origin, listed by name in :data:`FORMS`; an expander can be given other forms.
"""

import functools
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from mtpkt.agents.area.configdata import Config, ConfigError, Deferred, Origin, run_bash
from mtpkt.agents.area.scheme import SchemeContext, SchemeError, evaluate_config

__all__ = ["FORMS", "MAX_EXPANSIONS", "Expander", "Form"]

MAX_EXPANSIONS: Final = 1000
"""``#{...}`` expanded in one line at the most (each round removes one)."""

Form = Callable[["Expander", str, Origin], str]
"""One ``#{name argument}`` form: the text for ``argument`` (stripped) written at an origin."""


class Expander:
    """The ``#{...}`` forms of one read of a config file, and what they read.

    Args:
        config: the config being read: ``#{get}`` reads it, notes and placeholders go there.
        env: the environment as read so far; the reader adds to this very dict.
        rget: how ``#{rget VAR}`` finds a runconfig value (None: in ``config``'s
            ``target`` section, then ``[default]``).
        target: the target, for ``#{rget}`` while reading runconfigs.config.
        cwd: working directory for commands.
        allow_commands: whether ``#{shell}``, ``#{system}``, ``[scriptinc]`` and
            Scheme's ``create-directory`` may run.
        scheme: what ``#{scheme}`` sees (default: no run; ``*toppath*`` from
            ``MT_RUN_AREA_HOME`` in ``env``).
        forms: the forms by name (default: :data:`FORMS`).
    """

    def __init__(
        self,
        config: Config,
        *,
        env: dict[str, str],
        rget: Callable[[str], str | None] | None,
        target: str | None,
        cwd: Path,
        allow_commands: bool,
        scheme: SchemeContext | None = None,
        forms: Mapping[str, Form] | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self.rget = rget
        self.target = target
        self.cwd = cwd
        self.allow_commands = allow_commands
        self.scheme = scheme or SchemeContext(toppath=env.get("MT_RUN_AREA_HOME"))
        self.forms = FORMS if forms is None else forms
        names = "|".join(re.escape(name) for name in sorted(self.forms))
        self._pattern = re.compile(rf"^(.*)#\{{({names})\s+([^}}{{]*)\}}(.*)$", re.DOTALL)

    def expand(self, line: str, origin: Origin) -> str:
        """Expand every ``#{...}`` in a logical line, the last (innermost) first.

        Raises:
            ConfigError: a form failed, or the line holds over :data:`MAX_EXPANSIONS`.
        """
        for _ in range(MAX_EXPANSIONS):  # bounded: each round removes one #{...}
            match = self._pattern.match(line)
            if match is None:
                return line
            before, name, argument, after = match.groups()
            line = before + self.forms[name](self, argument.strip(), origin) + after
        raise ConfigError(origin.path, origin.line, "too many #{...} expansions in one line")

    def run(self, command: str, origin: Origin) -> "subprocess.CompletedProcess[bytes]":
        """Run a command the config asks for (``bash -c``, in ``cwd``, with ``env``).

        Raises:
            ConfigError: commands are not allowed, or it could not run or took too long.
        """
        self.config.check(command, origin)
        if not self.allow_commands:
            raise ConfigError(
                origin.path, origin.line, f"commands are not allowed here: {command!r}"
            )
        return run_bash(command, origin, env=self.env, cwd=self.cwd, what=f"cannot run {command!r}")


def _scheme(name: str, expander: Expander, argument: str, origin: Origin) -> str:
    try:
        return evaluate_config(
            argument,
            expander.scheme,
            env=expander.env,
            where=(origin.path, origin.line),
            effects_in=expander.cwd if expander.allow_commands else None,
        )
    except SchemeError as exc:
        message = f"#{{{name}}}: {exc.detail}"
    if expander.scheme.planning:
        raise ConfigError(origin.path, origin.line, message)
    return expander.config.placeholder(origin, message)


def _getenv(expander: Expander, name: str, origin: Origin) -> str:
    value = expander.env.get(name)
    if value is None:
        expander.config.notes.append(f"{origin}: #{{getenv {name}}}: {name} is not set, using ''")
        return ""
    return value


def _get(expander: Expander, argument: str, origin: Origin) -> str:
    config = expander.config
    parts = argument.split()
    if len(parts) != 2:
        why = f"#{{get {argument}}} needs a section and a key"
        raise ConfigError(origin.path, origin.line, why)
    entry = config.entry(parts[0], parts[1])
    if entry is None:
        config.notes.append(f"{origin}: #{{get {argument}}}: no such key, using ''")
        return ""
    if isinstance(entry.value, Deferred):
        if not expander.allow_commands:
            raise ConfigError(origin.path, origin.line, "commands are not allowed here")
        return config.resolve(entry, env=expander.env, cwd=expander.cwd)
    return entry.value


def _rget(expander: Expander, name: str, origin: Origin) -> str:
    config = expander.config
    if expander.rget is not None:
        value = expander.rget(name)
    else:  # reading runconfigs.config itself: the target's section, then [default]
        entry = config.find_var([s for s in (expander.target, "default") if s is not None], name)
        value = None if entry is None else config.resolve(entry, env=expander.env)
    if value is None:
        config.notes.append(f"{origin}: #{{rget {name}}}: not set, using ''")
        return ""
    return value


def _shell(expander: Expander, command: str, origin: Origin) -> str:
    done = expander.run(command, origin)
    if done.returncode != 0:
        raise ConfigError(
            origin.path, origin.line, f"#{{shell {command}}} exited with {done.returncode}"
        )
    return " ".join(done.stdout.decode(errors="replace").rstrip("\n").split("\n"))


def _system(expander: Expander, command: str, origin: Origin) -> str:
    return str(expander.run(command, origin).returncode)


def _realpath(expander: Expander, path: str, origin: Origin) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _mtrah(expander: Expander, path: str, origin: Origin) -> str:
    """The area's home, with an optional path under it."""
    home = expander.env.get("MT_RUN_AREA_HOME", str(expander.cwd))
    return f"{home}/{path}" if path else home


FORMS: Final[Mapping[str, Form]] = MappingProxyType(
    {
        "scheme": functools.partial(_scheme, "scheme"),
        "scm": functools.partial(_scheme, "scm"),
        "getenv": _getenv,
        "gv": _getenv,
        "get": _get,
        "g": _get,
        "rget": _rget,
        "runconfigs-get": _rget,
        "shell": _shell,
        "sh": _shell,
        "system": _system,
        "realpath": _realpath,
        "rp": _realpath,
        "mtrah": _mtrah,
    }
)
"""Every form by name: Megatest's names and their short forms."""
