"""Text that every role writes the same way: a one-line error, a test instance's name,
where a record stands.

Logs, error lines, comments and tables all name test instances, echo errors
and say how tests stand; these helpers keep them alike everywhere.
"""

from typing import Final

from mtpkt.pkts.enums import State, Status

__all__ = ["UNKNOWN_AGENT", "counted", "display_name", "end_label", "one_line", "unknown_agent"]

UNKNOWN_AGENT: Final = "waiting for agent "
"""How the comment of a test of a run pinned to an agent the home does not know starts
(:func:`unknown_agent`): the home writes it, ``send --wait`` prints it."""


def unknown_agent(name: str) -> str:
    """The comment of a test waiting for agent ``name``, which no one has heard of."""
    return f"{UNKNOWN_AGENT}{name}, which the home does not know"


def one_line(what: BaseException | str) -> str:
    """``what`` as one line: each run of white space (line breaks included) becomes one
    space, other control characters are written as escapes (``\\x1b``), and an error
    without a message gives its type's name.

    Errors echo what a user typed or what SQLite said, and either may hold a
    newline; scripts read the last line of stderr, and a log line must stay one.
    """
    text = " ".join(str(what).split())
    if not text and isinstance(what, BaseException):
        return type(what).__name__
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def display_name(test: str, item: str = "") -> str:
    """How a test instance is named to people: ``test/item``, or ``test`` without an item."""
    return f"{test}/{item}" if item else test


def end_label(state: str, status: str, *, with_status: bool = True) -> str:
    """Where a record stands, in one word: its status once ``COMPLETED`` (``PASS``), else its
    state and status (``KILLED/ABORT``), or its state alone (``RUNNING``) when the status is
    ``n/a`` or ``with_status`` is false.

    It works on the words (a :class:`State` and a :class:`Status` are words too), so that
    records read from a database show as they are, a word mtpkt does not know included.

    Args:
        with_status: whether a record that is not COMPLETED shows its status too: the
            live view shows it only once a test has settled, ``mtpkt runs`` never.
    """
    state, status = str(state), str(status)
    if state == State.COMPLETED:
        return status
    if not with_status or status == Status.NA:
        return state
    return f"{state}/{status}"


def counted(count: int, word: str) -> str:
    """``1 test``, ``2 tests``: a count and its word, plural by an ``s`` when not one."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
