"""The ``megatest`` command's arguments, read with Megatest's syntax (megatest.scm:259-418).

Megatest's options are single-dash words (``-step NAME``) and ``:key value``
pairs; the words that are no option (``-runstep``'s command) are its
"remaining arguments". Options mtpkt supports are listed here, the ones that
take a value in :data:`VALUED` and the ones that do not in :data:`FLAGS`;
any other word starting with ``-`` or ``:`` is refused (:class:`ArgsError`).
"""

from collections.abc import Sequence
from typing import Final

import attrs

__all__ = [
    "ACTIONS",
    "FLAGS",
    "QUERY_ACTIONS",
    "RUN_ACTIONS",
    "VALUED",
    "Args",
    "ArgsError",
    "parse",
]

VALUED: Final = (
    "-step",
    "-runstep",
    "-logpro",
    "-setlog",
    "-set-toplog",
    "-m",
    "-env2file",
    "-test-files",
    "-target",
    "-runname",
    ":runname",
    "-testpatt",
    "-item",
    "-state",
    "-status",
    ":state",
    ":status",
    ":value",
    ":expected",
    ":expected_value",
    ":tol",
    ":category",
    ":variable",
    ":units",
    ":comment",
    ":first_err",
    ":first_warn",
    # run management and queries (megatest.scm:259-418)
    "-reqtarg",
    "-runtests",
    "-modepatt",
    "--modepatt",
    "-tagexpr",
    "-rerun",
    "-set-state-status",
    "-set-run-status",
    "-list-runs",
    "-archive",
    "-section",
    "-var",
    "-dumpmode",
    "-sort",
    # accepted for old scripts; mtpkt has no meaning for them (tools/mt_lists.py)
    "-server",
    "-transport",
    "-debug",
)
"""Options followed by a value."""
_QUERY_FLAGS: Final = (
    "-list-targets",
    "-list-db-targets",
    "-show-keys",
    "-showkeys",
    "-show-runconfig",
    "-show-config",
    # accepted for old scripts; mtpkt has no meaning for them (tools/mt_lists.py)
    "-list-servers",
    "-kill-servers",
    "-clean-cache",
    "-no-cache",
)
FLAGS: Final = (
    "-test-status",
    "-set-values",
    "-load-test-data",
    "-summarize-items",
    "-test-paths",
    "-h",
    "-help",
    "--help",
    # run management and queries (megatest.scm:259-418)
    "-run",
    "-runall",
    "-run-wait",
    "-runwait",
    "-rerun-clean",
    "-rerun-all",
    "-preclean",
    "-remove-runs",
    "-keep-records",
    "-kill-runs",
    "-lock",
    "-unlock",
    "-get-run-status",
    *_QUERY_FLAGS,
)
"""Options without a value."""
ACTIONS: Final = (
    "-step",
    "-runstep",
    "-test-status",
    "-set-values",
    "-load-test-data",
    "-setlog",
    "-set-toplog",
    "-summarize-items",
    "-env2file",
    "-test-paths",
    "-test-files",
)
"""The in-test options that do something; the others qualify them."""
RUN_ACTIONS: Final = (
    "-run",
    "-runall",
    "-runtests",
    "-rerun-clean",
    "-rerun-all",
    "-run-wait",
    "-runwait",
    "-remove-runs",
    "-set-state-status",
    "-set-run-status",
    "-get-run-status",
    "-archive",
    "-lock",
    "-unlock",
    "-kill-runs",
)
"""Options that manage runs through the area's home (:mod:`mtpkt.tools.mt_manage`)."""
QUERY_ACTIONS: Final = ("-list-runs", "-server", *_QUERY_FLAGS)
"""Options that read the area and its databases, or have no meaning here
(:mod:`mtpkt.tools.mt_lists`)."""


class ArgsError(ValueError):
    """Arguments the command cannot take; the message is one line."""


@attrs.frozen
class Args:
    """Parsed arguments: each option's value (``""`` for a flag) and the remaining words."""

    options: dict[str, str]
    rest: tuple[str, ...]

    def get(self, *names: str) -> str | None:
        """The value of the first of ``names`` given (Megatest's ``(or (args:get-arg a) …)``)."""
        for name in names:
            if name in self.options:
                return self.options[name]
        return None

    def has(self, name: str) -> bool:
        """Whether the option was given."""
        return name in self.options


def parse(argv: Sequence[str]) -> Args:
    """Read ``argv`` (without the program name) as Megatest does: an option's last value wins.

    Raises:
        ArgsError: an option mtpkt does not support, or one without its value.
    """
    options: dict[str, str] = {}
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        if word in VALUED:
            value = next(words, None)
            if value is None:
                raise ArgsError(f"{word} needs a value")
            options[word] = value
        elif word in FLAGS:
            options[word] = ""
        elif word[:1] in ("-", ":") and len(word) > 1 and not word[1:2].isdigit():
            raise ArgsError(f"{word} is not supported by mtpkt's megatest (see megatest -h)")
        else:
            rest.append(word)
    return Args(options, tuple(rest))
