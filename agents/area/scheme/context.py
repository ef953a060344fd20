"""``#{scheme …}`` in a Megatest config: what the code sees, and its value as config text.

Megatest evaluates ``#{scheme code}`` as ``((lambda (ht) code) config)``
(``configf.scm`` lines 100 and 130) in its own process, so the code sees
Megatest's command line and environment, and its value is written into the
line with ``conc`` (line 138). Here the code runs in the evaluator of this
package with the builtins of :mod:`.builtins` and these, which stand for
Megatest's:

* ``(getenv "V")``, ``(get-environment-variable "V")``: the environment of the
  read as it stands at that line (``[env-override]`` lines above it
  included), never this process's; ``#f`` when unset;
* ``(args:get-arg "-target")``: the command line of the run being planned:
  ``-target``, ``-runname``, ``-testpatt``, and ``:KEY`` for each of the
  area's ``[fields]`` (``:sysname`` …, as ``keys:target-set-args`` sets them,
  ``runs.scm`` line 2351); any other option, or any option when no run is
  being planned, is ``#f`` as for a Megatest command not given it;
* ``*toppath*``: the area's directory;
* ``(get-host-name)``: this host's name;
* ``(create-directory path [parents])``: makes the directory (and its parents
  when the flag is true) and returns the path, as Chicken's does; the only
  effect on files, a relative path taken from where the read runs commands,
  refused where commands are not allowed;
* ``(tests:get-all)``: the area's tests, a hash table of name → directory
  (``tests.scm`` line 43), for ``hash-table-keys``;
* ``(tests:filter-test-names names testpatt)``: the names a testpatt selects,
  matched as Megatest's ``tests:match`` does (``tests.scm`` lines 87, 267, 281):
  the test part of each comma-separated pattern, ``%`` as any text and
  case-insensitive, else ``*`` as any text, the rest a regular expression;
* ``(db:dbfile-path …)``: the area's database directory (Megatest's is a
  per-user cache under ``/tmp``, ``common.scm`` line 665; mtpkt has one
  directory for the area's databases, ``[setup] dbdir``).
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.scheme.builtins import CORE
from mtpkt.agents.area.scheme.evaluator import Limits, evaluate
from mtpkt.agents.area.scheme.reader import Source
from mtpkt.agents.area.scheme.values import (
    BuiltinError,
    HashTable,
    Value,
    builtin,
    check_string,
    is_true,
    to_text,
)

__all__ = ["RunArgs", "SchemeContext", "config_builtins", "evaluate_config", "filter_test_names"]


@attrs.frozen
class RunArgs:
    """The command line of the run being planned, as ``args:get-arg`` answers it."""

    target: str
    runname: str
    testpatt: str = "%"

    def get(self, option: str, fields: Sequence[str]) -> str | None:
        """The value of ``-target``, ``-runname``, ``-testpatt`` or ``:KEY``; None for any
        other option."""
        known = {"-target": self.target, "-runname": self.runname, "-testpatt": self.testpatt}
        if option in known:
            return known[option]
        parts = self.target.split("/")
        if option.startswith(":") and len(parts) == len(fields):
            return dict(zip(fields, parts, strict=True)).get(option[1:])
        return None


@attrs.frozen
class SchemeContext:
    """What ``#{scheme}`` in a config sees besides the environment of the read."""

    args: RunArgs | None = None
    """The run being planned; None when the area is read without one (``mtpkt home``
    starting): every option is then ``#f``."""
    fields: tuple[str, ...] = ()
    """The area's ``[fields]``, for ``:KEY`` options."""
    toppath: str | None = None
    """The area's directory (``*toppath*``)."""
    tests: Callable[[], Mapping[str, str]] | None = None
    """The area's tests, name → directory (``tests:get-all``); None while megatest.config
    is read."""
    dbdir: Callable[[], str] | None = None
    """The area's database directory (``db:dbfile-path``); None while megatest.config,
    which says where it is, is read."""

    @property
    def planning(self) -> bool:
        """Whether a run is being planned: an error then fails the read at once."""
        return self.args is not None


def _option(context: SchemeContext) -> Callable[[Value], Value]:
    def get_arg(option: Value) -> Value:
        name = check_string(option, "args:get-arg")
        value = None if context.args is None else context.args.get(name, context.fields)
        return False if value is None else value

    return get_arg


def _getenv(env: Mapping[str, str]) -> Callable[[Value], Value]:
    def getenv(name: Value) -> Value:
        return env.get(check_string(name, "getenv"), False)

    return getenv


def _create_directory(cwd: Path | None) -> Callable[..., Value]:
    def create_directory(path: Value, parents: Value = False) -> Value:
        """Chicken 4's ``create-directory``: returns the path (``~`` expanded); without
        ``parents`` a directory that exists already is an error. A relative path is taken
        from ``cwd``, where the read runs commands."""
        name = os.path.expanduser(check_string(path, "create-directory"))
        if cwd is None:
            raise BuiltinError(f"create-directory {name!r}: not allowed here")
        try:
            if is_true(parents):
                os.makedirs(cwd / name, exist_ok=True)
            else:
                os.mkdir(cwd / name)
        except OSError as exc:
            raise BuiltinError(f"cannot create directory {name!r}: {exc.strerror}") from None
        return name

    return create_directory


def _glob_like_match(pattern: str, name: str) -> bool:
    """Megatest's ``tests:glob-like-match`` (``tests.scm`` line 267).

    Raises:
        BuiltinError: the pattern is no regular expression.
    """
    like = "%" in pattern
    negated = pattern.startswith("~")
    text = pattern[1:] if negated else pattern
    text = text.replace("%", ".*") if like else text.replace("*", ".*")
    try:
        matched = re.fullmatch(text, name, re.IGNORECASE if like else 0) is not None
    except re.error as exc:
        raise BuiltinError(f"testpatt {pattern!r} is not a valid pattern: {exc}") from None
    return not matched if negated else matched


def filter_test_names(names: Sequence[str], testpatt: str) -> list[str]:
    """Megatest's ``tests:filter-test-names`` (``tests.scm`` lines 87 and 281): the names
    whose test part of some pattern matches, each once, in order. An empty testpatt
    selects nothing.

    Raises:
        BuiltinError: a pattern is no regular expression.
    """
    tests = [part.split("/", 1)[0] for part in testpatt.split(",") if part]
    chosen: list[str] = []
    for name in names:
        if name not in chosen and any(_glob_like_match(test, name) for test in tests):
            chosen.append(name)
    return chosen


def _filter_test_names(names: Value, testpatt: Value) -> Value:
    if not isinstance(names, tuple):
        raise BuiltinError("tests:filter-test-names needs a list of test names")
    found = [check_string(name, "tests:filter-test-names") for name in names]
    return tuple(filter_test_names(found, check_string(testpatt, "tests:filter-test-names")))


def config_builtins(
    context: SchemeContext, env: Mapping[str, str], *, effects_in: Path | None
) -> dict[str, Value]:
    """The builtins of ``#{scheme}`` in a config: :data:`~.builtins.CORE` and Megatest's.

    Args:
        context: the run and the area.
        env: the environment of the read (read as it is when the code runs).
        effects_in: where ``create-directory`` takes a relative path from; None: it may
            make no directory.
    """
    names: dict[str, Value] = dict(CORE)
    register = functools.partial(builtin, names)
    register("getenv", "get-environment-variable", least=1, most=1)(_getenv(env))
    register("args:get-arg", least=1, most=1)(_option(context))
    register("get-host-name", most=0)(socket.gethostname)
    register("create-directory", least=1, most=2)(_create_directory(effects_in))
    register("tests:filter-test-names", least=2, most=2)(_filter_test_names)

    def all_tests() -> Value:
        if context.tests is None:
            raise BuiltinError("the tests are not known while megatest.config is read")
        return HashTable(dict(context.tests()))

    def dbfile_path(*_run_id: Value) -> Value:
        if context.dbdir is None:
            raise BuiltinError("the database directory is not known while megatest.config is read")
        return context.dbdir()

    register("tests:get-all", most=0)(all_tests)
    register("db:dbfile-path")(dbfile_path)
    names["*toppath*"] = context.toppath if context.toppath is not None else False
    return names


LIMITS: Final = Limits()
"""Limits of one ``#{scheme}``: a config line that loops fails within a second or so."""


def evaluate_config(
    code: str,
    context: SchemeContext,
    *,
    env: Mapping[str, str],
    where: tuple[str, int],
    effects_in: Path | None,
) -> str:
    """The config text of ``#{scheme code}`` written at ``where`` (file, line), evaluated
    in the environment of the read (``env``) and its working directory (``effects_in``,
    None where commands are not allowed: see :func:`config_builtins`).

    Raises:
        SchemeError: the code does not read or cannot be evaluated, or its value has no
            text (a procedure); the error names the file, the line and the form.
    """
    source = Source(where[0], code, line=where[1])
    value = evaluate(source, config_builtins(context, env, effects_in=effects_in), LIMITS)
    try:
        return to_text(value)
    except BuiltinError as exc:
        raise source.error(str(exc), 0, len(code)) from None
