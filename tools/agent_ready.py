"""``mtpkt agent`` says it is ready once the home has answered, and says so when it does not.

Printing "ready" as soon as the agent started misled: an agent pointed at the
wrong port said "ready", then retried for ever in its log. :class:`Readiness`,
looked at by the agent's main loop, prints the "ready" line once a pull has
been answered, and, if none has been after :data:`UNANSWERED_AFTER` seconds,
one line on stderr saying what is wrong the way ``mtpkt send`` says it:
nothing listens at that address, or nothing answers there. The agent keeps
trying, backing off, meanwhile.
"""

import time
from collections.abc import Callable
from typing import Final, TextIO

__all__ = ["UNANSWERED_AFTER", "Readiness"]

UNANSWERED_AFTER: Final = 3.0
"""Seconds without an answer from the home before the agent says so."""


class Readiness:
    """Says "ready" once the home answered, or once why it has not.

    Args:
        answered: pulls the home has answered so far.
        refused: whether the home's address refuses connections (nothing listens).
        ready: the "ready" line.
        home: the home's address, as the agent dials it.
        out: where "ready" goes (stdout); err: where the problem goes (stderr).
    """

    def __init__(
        self,
        answered: Callable[[], int],
        refused: Callable[[], bool],
        *,
        ready: str,
        home: str,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self._answered = answered
        self._refused = refused
        self._ready = ready
        self._home = home
        self._out, self._err = out, err
        self._began = time.monotonic()
        self._said_ready = self._said_problem = False

    def step(self) -> None:
        """Look once (from the agent's main loop)."""
        if self._said_ready:
            return
        if self._answered():
            self._said_ready = True
            print(self._ready, file=self._out, flush=True)
            if self._said_problem:
                print(f"the home at {self._home} answers now", file=self._err, flush=True)
        elif not self._said_problem and time.monotonic() - self._began > UNANSWERED_AFTER:
            self._said_problem = True
            why = (
                "connection refused: is mtpkt home running, at that address?"
                if self._refused()
                else "no answer: is mtpkt home running there, and is the address right?"
            )
            print(
                f"no answer from the home at {self._home} ({why}); still trying",
                file=self._err,
                flush=True,
            )
