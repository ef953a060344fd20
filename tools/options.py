"""Options the ``mtpkt`` commands share, and the argparse types that read their values.

One definition each, so that ``--area``, ``-t``/``-r``, ``--testpatt``,
``--timeout`` and the home's addresses read and explain themselves the same in
every command that takes them.
"""

import argparse
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from mtpkt.pkts import State, Status
from mtpkt.tools.tls_options import add_tls_options

__all__ = [
    "DEFAULT_TIMEOUT",
    "STATES",
    "STATUSES",
    "add_publish",
    "add_testpatt",
    "add_timeout",
    "area_option",
    "clean_options",
    "command_parser",
    "grace_seconds",
    "query_parser",
    "run_options",
    "seconds",
    "statuses",
    "wait_options",
    "where_options",
    "whole_number",
    "word_list",
]

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds a command waits for the home's answer by default."""

_TESTPATT_HELP: Final = (
    "comma-separated test/itempath patterns, %% as wildcard, ~ to exclude (default: %%)"
)


# -- the parsers ----------------------------------------------------------------------------


def command_parser(
    commands: "argparse._SubParsersAction[Any]",
    name: str,
    summary: str,
    doc: str,
    parents: Iterable[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """Register a command's sub-parser: ``summary`` in ``mtpkt --help``, ``doc`` (the command
    module's docstring, its examples laid out as written) as its description."""
    return commands.add_parser(  # type: ignore[no-any-return]
        name,
        help=summary,
        description=doc.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )


# -- types of values ------------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds (an argparse ``type``)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def grace_seconds(text: str) -> float:
    """Zero or more seconds (an argparse ``type``)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds, 0 or more")
    return value


def whole_number(noun: str, least: int, too_small: str) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``least``.

    Args:
        noun: what a value that is no whole number is not, e.g. ``a number of records``.
        too_small: what is said of one below ``least``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{text!r}: {too_small}")
        return value

    return parse


def word_list(kind: str, words: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse ``type``: comma-separated words of ``words`` (any case), as spelt there,
    each once; an unknown one is an error that lists them."""
    known = {word.upper(): word for word in words}

    def parse(text: str) -> tuple[str, ...]:
        chosen: list[str] = []
        for part in text.split(","):
            word = known.get(part.strip().upper())
            if word is None:
                plural = f"{kind}es" if kind.endswith("s") else f"{kind}s"
                raise argparse.ArgumentTypeError(
                    f"unknown {kind} {part.strip()!r} ({plural}: {', '.join(words)})"
                )
            if word not in chosen:
                chosen.append(word)
        return tuple(chosen)

    return parse


STATES: Final = word_list("state", [state.value for state in State])
"""Comma-separated states, e.g. ``RUNNING,KILLED`` (any case), as Megatest spells them."""
STATUSES: Final = word_list("status", [status.value for status in Status])
"""Comma-separated statuses, e.g. ``FAIL,ABORT`` (any case), as Megatest spells them."""


def statuses(text: str) -> tuple[Status, ...]:
    """Comma-separated statuses as :class:`Status` values (an argparse ``type``)."""
    return tuple(Status(word) for word in STATUSES(text))


# -- options --------------------------------------------------------------------------------


def area_option(group: "argparse._ActionsContainer") -> None:
    """``--area DIR``, as every command takes it."""
    group.add_argument(
        "--area",
        type=Path,
        metavar="DIR",
        help="the test-suite area (default: $MT_RUN_AREA_HOME, else the current directory)",
    )


def query_parser(
    commands: "argparse._SubParsersAction[Any]", name: str, summary: str, doc: str
) -> argparse.ArgumentParser:
    """Register a query's sub-parser (``mtpkt runs``, ``tests``, ``agents``) with ``--area``
    and ``--json``; ``doc`` (the module's docstring) is its description."""
    options = argparse.ArgumentParser(add_help=False)
    area_option(options)
    options.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (a list of objects) for scripts instead of a table",
    )
    return command_parser(commands, name, summary, doc, parents=[options])


def where_options() -> argparse.ArgumentParser:
    """Options that say which area, home, key and TLS settings: those of the commands that
    dial the home (``mtpkt agent``, ``send`` and ``tail``)."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("area and home")
    area_option(where)
    where.add_argument(
        "--home",
        metavar="ADDR",
        help="the home's request address (default: the one in AREA/.mtpkt/home.json)",
    )
    where.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the area's secret, mode 0600 (default: AREA/.mtpkt/secret)",
    )
    add_tls_options(options, role="dial")
    return options


def add_publish(group: "argparse._ActionsContainer") -> None:
    """``--publish ADDR``: the home's live stream, for the commands that follow it."""
    group.add_argument(
        "--publish",
        metavar="ADDR",
        help="the home's live stream address (default: the one in AREA/.mtpkt/home.json)",
    )


def add_timeout(group: "argparse._ActionsContainer") -> None:
    """``--timeout S``: how long to wait for the home's answer."""
    group.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the home's answer (default: {DEFAULT_TIMEOUT:g})",
    )


def clean_options(parser: argparse.ArgumentParser) -> None:
    """``--keep-records`` and ``--archives``: what ``mtpkt send clean`` removes besides the
    run directories."""
    parser.add_argument(
        "--keep-records",
        action="store_true",
        help="keep the tests' database records; only their directories go",
    )
    parser.add_argument(
        "--archives",
        action="store_true",
        help="also delete the tests' archives (send archive) and their records; without it"
        " the archive files stay",
    )


def run_options(group: "argparse._ActionsContainer", *, required: bool) -> None:
    """``-t TARGET`` and ``-r RUNNAME``: the run (``required``), or filters on the runs."""
    if required:
        group.add_argument(
            "-t",
            "--target",
            required=True,
            help="the run's key values joined by /, e.g. ubuntu/x86_64",
        )
        group.add_argument("-r", "--runname", required=True, help="the run's name, e.g. nightly")
    else:
        group.add_argument(
            "-t", "--target", default="", help="only this target's runs (%% in a part: any text)"
        )
        group.add_argument(
            "-r", "--runname", default="", help="only runs of this name (%% for any text: 'r%%')"
        )


def add_testpatt(group: "argparse._ActionsContainer", *, lead: str = "") -> None:
    """``--testpatt PATT`` (Megatest's syntax), its help led by ``lead``."""
    group.add_argument("--testpatt", default="%", metavar="PATT", help=lead + _TESTPATT_HELP)


def wait_options(*, chore: bool = False) -> argparse.ArgumentParser:
    """``--wait``, ``--wait-timeout`` and ``--publish``: following a run once it is sent
    (``mtpkt send``); with ``chore``, waiting for the home to finish a ``clean`` or
    ``archive``."""
    options = argparse.ArgumentParser(add_help=False)
    wait = options.add_argument_group("waiting")
    wait.add_argument(
        "--wait",
        action="store_true",
        help="then wait until the home has done it and print what it did; exit 4 if it could not"
        if chore
        else "then follow the run until every selected test has settled; exit 3 if any"
        " ended FAIL, ABORT, DEAD, KILLED …",
    )
    wait.add_argument(
        "--wait-timeout",
        type=seconds,
        metavar="S",
        help="give up waiting after S seconds (exit 8; the"
        f" {'home goes on with it' if chore else 'run goes on'})",
    )
    add_publish(wait)
    return options
