"""``mtpkt completion bash|zsh``: print the shell completion script of ``mtpkt``.

The script is generated from the command line's own parsers (by shtab), so it
completes every command, sub-command and option this version has, and the
choices of those that have them; options that take a directory or a file
complete paths. Generate it again after an upgrade.

install:
  bash:  mtpkt completion bash > ~/.local/share/bash-completion/completions/mtpkt
         (bash-completion loads it the next time mtpkt is completed)
  zsh:   mkdir -p ~/.zfunc && mtpkt completion zsh > ~/.zfunc/_mtpkt
         and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath)
"""

import argparse
import sys
from typing import Any, Final

from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.options import command_parser

__all__ = ["SHELLS", "add_parser", "run", "script"]

SHELLS: Final = ("bash", "zsh")
"""The shells a script can be printed for."""

_DIRECTORIES: Final = frozenset({"DIR"})
_FILES: Final = frozenset({"FILE", "PATH"})
"""Metavars of options whose value is a directory, or a file: they complete paths."""


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt completion``."""
    parser = command_parser(
        commands, "completion", "print the bash or zsh completion script of mtpkt", __doc__
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell the script is for")
    parser.set_defaults(run=run)


def _mark_paths(parser: argparse.ArgumentParser) -> None:
    """Make options whose metavar says DIR, FILE or PATH complete paths (shtab's hints)."""
    import shtab

    for action in parser._actions:  # argparse keeps the options and sub-parsers only there
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _mark_paths(sub)
        elif action.metavar in _DIRECTORIES:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif action.metavar in _FILES:
            action.complete = shtab.FILE  # type: ignore[attr-defined]


def script(shell: str) -> str:
    """The completion script of ``mtpkt`` for ``shell`` (one of :data:`SHELLS`)."""
    import shtab

    from mtpkt.tools.cli import build_parser  # here: cli imports this module

    parser = build_parser()
    _mark_paths(parser)
    text: str = shtab.complete(parser, shell=shell)
    return text


def run(args: argparse.Namespace) -> int:
    """Print the script."""
    sys.stdout.write(script(args.shell))
    return ExitCode.OK
