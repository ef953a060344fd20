"""The colour of every word the commands show about a test, a run or an agent: the one table
the live view, ``mtpkt runs``, ``tests`` and ``agents`` colour with.

Red comes from the outcome rules (:mod:`mtpkt.pkts.outcome`): a bad status
(``CHECK`` included) or a state that ended badly (``KILLED``, ``STUCK``,
``INCOMPLETE``) is red, and a ``STATE/STATUS`` label is red exactly when the
record it shows :func:`~mtpkt.pkts.outcome.ended_badly`. The rest: ``PASS``
green, the other good statuses (``WARN``, ``WAIVED``, ``SKIP``: good, but not a
plain pass) cyan, a test being run yellow, one not started (or archived) dim, a
STALE one (its configs changed since it ran) magenta.
"""

from typing import TYPE_CHECKING, Final

from mtpkt.pkts.enums import State, Status
from mtpkt.pkts.outcome import ACTIVE, BAD, ENDED_BADLY, GOOD, ended_badly, read_status

if TYPE_CHECKING:  # imported for real inside styled(): `mtpkt --help` stays quick
    from rich.text import Text

__all__ = ["BAD_STYLE", "STYLES", "style_of", "styled"]

BAD_STYLE: Final = "bold red"
"""The colour of what needs a look."""

_STATES: Final = frozenset(State)

STYLES: Final[dict[str, str]] = {
    **dict.fromkeys(GOOD, "cyan"),
    Status.PASS: "green",
    Status.NA: "dim",
    **dict.fromkeys(BAD, BAD_STYLE),
    **dict.fromkeys(ACTIVE, "yellow"),
    **dict.fromkeys(ENDED_BADLY, BAD_STYLE),
    State.COMPLETED: "green",
    **dict.fromkeys((State.NOT_STARTED, State.ARCHIVED, State.DELETED), "dim"),
    State.STALE: "magenta",  # completed, but its configs changed since
    Status.KEEP_TRYING: "dim",  # not started yet, neither good nor bad
    # Where a test instance stands in `mtpkt runs` (mtpkt.store.query.standing).
    "running": "yellow",
    "not_started": "dim",
    # An agent's liveness (mtpkt.pkts.liveness).
    "alive": "green",
    "lost": "yellow",
    "dead": BAD_STYLE,
    "offline": "dim",
}
"""The colour of each state, status, standing and liveness word."""


def style_of(word: str) -> str:
    """The colour of a word of :data:`STYLES`, or of a ``STATE/STATUS`` label
    (:func:`mtpkt.pkts.text.end_label`); other words are plain (``""``)."""
    if (style := STYLES.get(word)) is not None:
        return style
    state, slash, status = word.partition("/")
    if not slash or state not in _STATES:
        return ""
    if ended_badly(State(state), read_status(status)):
        return BAD_STYLE
    return STYLES[state]


def styled(word: str) -> "Text":
    """A word in its colour (:func:`style_of`)."""
    from rich.text import Text

    return Text(word, style=style_of(word))
