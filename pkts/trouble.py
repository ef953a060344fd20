"""A problem logged once when it starts or changes, and once when it ends.

Loops that retry (a send to the home, a pull, a write to a database, the
dispatcher's tick) meet the same problem on every try; every role logs it the
same way, so that a home down for an hour is one warning and one recovery line,
not thousands.
"""

import logging

__all__ = ["Trouble"]


class Trouble:
    """Logs a problem when it starts or changes, not on every retry, and logs its end.

    Args:
        name: what is in trouble, at the start of each line.
        log: the logger to write to (the caller's own, so that lines say where they come from).
        level: the level of the problem's lines (its end is logged at INFO).
    """

    def __init__(self, name: str, log: logging.Logger, level: int = logging.WARNING) -> None:
        self._name = name
        self._log = log
        self._level = level
        self._current: str | None = None

    def report(self, problem: str) -> None:
        """Log ``problem`` at the given level if it is new; at DEBUG if it goes on."""
        if problem == self._current:
            self._log.debug("%s: still %s", self._name, problem)
            return
        self._log.log(self._level, "%s: %s (retrying)", self._name, problem)
        self._current = problem

    def clear(self) -> None:
        """The problem has ended: log that once (nothing if there was none)."""
        if self._current is not None:
            self._log.info("%s: recovered from: %s", self._name, self._current)
            self._current = None
