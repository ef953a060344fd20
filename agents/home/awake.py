"""Noticing that this process itself stood still, so that agents are not blamed for it.

The home marks an agent lost when it has heard nothing from it for twice its
heartbeat interval, and its tests DEAD after a grace period more. Both are
measured on the home's wall clock. If the home itself does not run for a while
(SIGSTOP, a suspended virtual machine, a wall clock stepped forward, a disk that
blocked a commit for seconds), the agents' heartbeats wait unread in the socket
and, when the home runs again, every agent looks silent for as long as the home
slept. :class:`Awake` notices the gap between two of its periodic checks and
moves the point from which silence counts to the moment the home woke: agents
get their full intervals again, as after a restart of the home.
"""

import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ["STALL", "Awake"]

_log = logging.getLogger("home")

STALL: Final = 1.5
"""Seconds beyond the expected period between two checks that count as a stall."""


class Awake:
    """Since when silence counts: this process's start, or the end of its last stall.

    Call :meth:`since` from a loop that runs every ``period`` seconds.

    Args:
        period: seconds the calling loop means to take between two calls.
        what: the loop's name, for the warning logged after a stall.
        clock: the wall clock (heartbeats are stamped with it).
    """

    def __init__(self, period: float, what: str, *, clock: Callable[[], float] = time.time) -> None:
        self._period = period
        self._what = what
        self._clock = clock
        self._last = clock()
        self._since = self._last
        self.stalls = 0
        """Stalls noticed so far."""

    def restart(self) -> None:
        """Count silence from now: the process starts serving."""
        self._last = self._since = self._clock()

    def since(self) -> float:
        """The wall-clock time from which an agent's silence counts."""
        now = self._clock()
        gap = now - self._last
        self._last = now
        if gap > self._period + STALL:
            self.stalls += 1
            self._since = now
            _log.warning(
                "%s did not run for %.1f s (the home was stopped, suspended, starved of CPU"
                " or its clock jumped): agents get two heartbeat intervals from now"
                " before they count as lost",
                self._what,
                gap,
            )
        return self._since
