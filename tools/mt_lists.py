"""``megatest``'s query options: what the area's configs and databases say, as Megatest says it.

:func:`answer` handles the options of :data:`~mtpkt.tools.intest_args.QUERY_ACTIONS`
in the order megatest.scm takes them:

* ``-server``, ``-list-servers``, ``-kill-servers``, ``-clean-cache``, ``-no-cache``
  mean nothing here: each prints one line (stdout) saying what replaces it, and the
  command goes on (exit 0), so that old scripts keep working.
* ``-list-targets`` (megatest.scm:900-913): the sections of runconfigs.config, sorted
  (common.scm:949-961), wildcard sections applied and left out as the reader does;
  ``-target`` filters them (``%`` patterns, comma-separated); ``-dumpmode json``.
* ``-show-runconfig -target T`` (megatest.scm:959-980): runconfigs.config as read for
  the target, its ``[default]`` and target sections (the ones Megatest reads for it,
  launch.scm:917) in the ini layout of ``configf:config->ini`` (configf.scm:792-805:
  ``\\n[section]`` then ``var value``); ``-dumpmode sexp|json``; ``-section S -var V``
  prints only that value (from ``[default]`` when ``S`` lacks it). Megatest reads it
  without a target too; here the target is required (its sections are the point).
* ``-show-config`` (megatest.scm:982-1005): megatest.config as read; the default layout
  is a Scheme list of sections as Megatest's ``pp`` prints it (not its line breaking),
  ``-dumpmode ini|json``, ``-section S -var V``.
* ``-list-runs PATT`` and ``-list-db-targets``: :mod:`mtpkt.tools.mt_listruns`.
* ``-show-keys``/``-showkeys`` (megatest.scm:2027-2038): ``Keys: a, b`` on stderr, where
  Megatest's ``debug:print`` writes (common.scm:121).

JSON is mtpkt's rendering of the same data (``{section: {var: value}}``), not the layout
of Chicken's ``json-write``. An error is one line on stderr, ``megatest: …``, exit 1
(Megatest's code when its area cannot be set up).
"""

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, TextIO

from mtpkt.tools.intest_args import Args
from mtpkt.tools.mt_listruns import ListError, list_runs, target_of

if TYPE_CHECKING:
    from mtpkt.agents.area import Area, Config

__all__ = ["NO_MEANING", "answer", "ini_text", "sexp_text"]

NO_SERVERS: Final = "mtpkt has no servers; the area's home is `mtpkt home` (see `mtpkt agents`)"
NO_MEANING: Final = {
    "-server": f"{NO_SERVERS}, started by hand or by your service manager",
    "-list-servers": NO_SERVERS,
    "-kill-servers": f"{NO_SERVERS}; stop it with Ctrl-C or SIGTERM",
    "-clean-cache": "mtpkt keeps no config cache: every run reads the configs afresh",
    "-no-cache": "mtpkt keeps no config cache: every run reads the configs afresh",
}
"""Options with no meaning in mtpkt, and the line each prints."""
AREA_QUERIES: Final = (
    "-list-targets",
    "-show-runconfig",
    "-show-config",
    "-list-runs",
    "-list-db-targets",
    "-show-keys",
    "-showkeys",
)
"""The options that read the area."""

Sections = list[tuple[str, list[tuple[str, str]]]]
"""A config as sections of ``(var, value)``, in order."""


def answer(args: Args, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Answer the query options of ``args``; returns the exit code.

    Args:
        args: the command line.
        env: the environment (default: this process's): ``$MT_RUN_AREA_HOME``, ``$MT_TARGET``.
        out: where answers go (default: stdout).
    """
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    for option, line in NO_MEANING.items():
        if args.has(option):
            print(f"megatest: {option}: {line}", file=out)
    if not any(args.has(option) for option in AREA_QUERIES):
        return 0
    try:
        area = _area(env)
        if args.has("-list-targets"):
            _list_targets(area, args, out)
        if args.has("-show-runconfig"):
            _show_runconfig(area, args, env, out)
        if args.has("-show-config"):
            _show(_sections(area.config, None, area.env, area), args, "sexp", (), out)
        if args.has("-list-runs") or args.has("-list-db-targets"):
            list_runs(area, args, env, out)
        if args.has("-show-keys") or args.has("-showkeys"):
            print(f"Keys: {', '.join(area.fields)}", file=sys.stderr)
    except ListError as exc:
        print(f"megatest: {exc}", file=sys.stderr)
        return exc.code
    return 0


def _area(env: Mapping[str, str]) -> "Area":
    """The area ``$MT_RUN_AREA_HOME`` names, else the one the current directory is in.

    Raises:
        ListError: there is none, or its megatest.config cannot be read.
    """
    from pathlib import Path

    from mtpkt.agents.area import AreaError, not_an_area
    from mtpkt.tools.errors import CliError
    from mtpkt.tools.local_area import area_dir, load_area

    home = env.get("MT_RUN_AREA_HOME")
    where = area_dir(Path(home) if home else None)
    if why := not_an_area(where):
        raise ListError(f"{why}: cd into the area or set MT_RUN_AREA_HOME")
    try:
        return load_area(where)
    except (AreaError, CliError) as exc:
        raise ListError(str(exc)) from None


def _sections(
    config: "Config", names: Sequence[str] | None, env: Mapping[str, str], area: "Area"
) -> Sections:
    """The sections ``names`` of ``config`` (None: all) that have values, values computed.

    Raises:
        ListError: a value cannot be computed.
    """
    from mtpkt.agents.area import AreaError

    chosen = list(config.sections) if names is None else names
    try:
        return [
            (name, config.items(name, env=env, cwd=area.home))
            for name in chosen
            if config.keys(name)
        ]
    except AreaError as exc:
        raise ListError(str(exc)) from None


def _list_targets(area: "Area", args: Args, out: TextIO) -> None:
    """``-list-targets``: the sections of runconfigs.config (see the module)."""
    import re

    from mtpkt.agents.area import AreaError, read_config

    path = area.home / "runconfigs.config"
    names: list[str] = []
    if path.is_file():
        try:
            config, _ = read_config(path, env=area.env, cwd=area.home, scheme=area.scheme_context())
        except AreaError as exc:
            raise ListError(str(exc)) from None
        names = sorted(config.sections)
    if (patterns := args.get("-target")) is not None:
        # patt-list-match (common.scm:843-855): each pattern a regular expression, % as .*
        regexes = [re.compile(patt.replace("%", ".*")) for patt in patterns.split(",")]
        names = [name for name in names if any(rx.fullmatch(name) for rx in regexes)]
    mode = args.get("-dumpmode") or "alist"
    if mode not in ("alist", "json"):
        raise ListError(f"dump output format {mode} not supported for -list-targets")
    for line in [json.dumps(names)] if mode == "json" else names:
        print(line, file=out)


def _show_runconfig(area: "Area", args: Args, env: Mapping[str, str], out: TextIO) -> None:
    """``-show-runconfig``: runconfigs.config as read for the target (see the module)."""
    from mtpkt.agents.area import AreaError

    target = target_of(args, area.fields, env)
    if target is None:
        raise ListError("-show-runconfig needs -target (or -reqtarg, or $MT_TARGET)")
    try:
        runconfig = area.runconfig(target)
    except AreaError as exc:
        raise ListError(str(exc)) from None
    sections = _sections(runconfig.config, ("default", target), runconfig.env, area)
    _show(sections, args, "ini", ("default",), out)


def _show(
    sections: Sections, args: Args, default: str, fallback: Sequence[str], out: TextIO
) -> None:
    """Print ``sections`` in ``-dumpmode`` (else ``default``), or with ``-section S -var V``
    that one value, looked for in ``S`` then in the ``fallback`` sections."""
    section, var = args.get("-section"), args.get("-var")
    if section is not None and var is not None:
        values = dict(sections)
        for name in (section, *fallback):
            found = dict(values.get(name, [])).get(var)
            if found is not None:
                print(found, file=out)
                return
        return
    mode = args.get("-dumpmode") or default
    if mode == "ini":
        print(ini_text(sections), file=out, end="")
    elif mode in ("sexp", "sexpr"):
        print(sexp_text(sections), file=out)
    elif mode == "json":
        print(json.dumps({name: dict(pairs) for name, pairs in sections}), file=out)
    else:
        raise ListError(f"-dumpmode of {mode} not recognised")


def ini_text(sections: Sections) -> str:
    """``configf:config->ini``'s layout: ``\\n[section]`` then a ``var value`` line each."""
    lines: list[str] = []
    for name, pairs in sections:
        lines += ["", f"[{name}]", *(f"{var} {value}" for var, value in pairs)]
    return "".join(f"{line}\n" for line in lines)


def sexp_text(sections: Sections) -> str:
    """The sections as the Scheme list Megatest prints (``(("section" ("var" "value") …) …)``),
    a section a line."""

    def string(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rows = [
        "(" + " ".join([string(name), *(f"({string(k)} {string(v)})" for k, v in pairs)]) + ")"
        for name, pairs in sections
    ]
    return "(" + "\n ".join(rows) + ")"
