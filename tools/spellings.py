"""Megatest's single-dash options typed to ``mtpkt``: refused with the option to use instead.

``mtpkt send run -target ubuntu/x86_64`` would be read by argparse as ``-t arget``
and fail with a puzzling "unrecognized arguments". Megatest's users type its
spellings out of habit, so :func:`megatest_spelling` names the mtpkt option
that does the same, and the ``megatest`` command that takes Megatest's own
command line (docs/megatest-cli.md).
"""

from collections.abc import Sequence
from typing import Final

__all__ = ["MEGATEST_OPTIONS", "megatest_spelling"]

MEGATEST_OPTIONS: Final = {
    "-target": "-t/--target",
    "-reqtarg": "-t/--target",
    "-runname": "-r/--runname",
    "-testpatt": "--testpatt",
    "-itempatt": "--testpatt TEST/ITEM",
    "-run": "mtpkt send run",
    "-runall": "mtpkt send run",
    "-runtests": "mtpkt send run --testpatt",
    "-rerun": "mtpkt send rerunclean",
    "-rerun-clean": "mtpkt send rerunclean",
    "-rerun-all": "mtpkt send run",
    "-preclean": "mtpkt send run --preclean",
    "-run-wait": "--wait",
    "-runwait": "--wait",
    "-remove-runs": "mtpkt send clean",
    "-kill-runs": "mtpkt send kill",
    "-archive": "mtpkt send archive",
    "-list-runs": "mtpkt runs",
    "-list-targets": "megatest -list-targets",
}
"""Megatest's options (megatest.scm) and what mtpkt calls them."""


def megatest_spelling(argv: Sequence[str]) -> str:
    """The one-line refusal of the first Megatest option in ``argv``; "" when there is none.

    Words after ``--`` are values, never options.
    """
    for word in argv:
        if word == "--":
            return ""
        name = word.split("=", 1)[0]
        if name in MEGATEST_OPTIONS:
            return (
                f"{name} is Megatest's spelling: mtpkt takes {MEGATEST_OPTIONS[name]};"
                " Megatest's own options work with the megatest command (docs/megatest-cli.md)"
            )
    return ""
