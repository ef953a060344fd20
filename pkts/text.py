"""Text that every role writes the same way: a one-line error, a test instance's name.

Logs, error lines, comments and tables all name test instances and echo
errors; these two helpers keep them alike everywhere.
"""

__all__ = ["display_name", "one_line"]


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
