"""When the home counts an agent as lost, and when its unfinished tests become DEAD.

An agent heartbeats every ``interval`` seconds (its beats say how often). The
home counts it *lost* once it has heard nothing for :data:`LOST_AFTER`
intervals, and marks its unfinished tests ``COMPLETED/DEAD`` once it has stayed
silent for the home's grace period more, unless it comes back first. Silence is
measured on the home's clock, from the later of the last beat and the moment
the home started (or woke from a stall): agents are not blamed for the home's
own absence.
"""

from typing import Final, Literal

__all__ = ["GRACE", "LOST_AFTER", "Liveness", "dead", "liveness", "lost"]

LOST_AFTER: Final = 2
"""Heartbeat intervals of silence after which an agent counts as lost."""
GRACE: Final = 60.0
"""Seconds a lost agent has to come back before its unfinished tests become DEAD, unless
``mtpkt home --agent-grace`` says otherwise."""

Liveness = Literal["offline", "alive", "lost", "dead"]


def lost(silent: float, interval: float) -> bool:
    """Whether an agent silent for ``silent`` seconds, beating every ``interval``, is lost."""
    return silent > LOST_AFTER * interval


def dead(silent: float, interval: float, grace: float) -> bool:
    """Whether an agent has been silent so long that its unfinished tests are DEAD."""
    return silent >= LOST_AFTER * interval + grace


def liveness(offline: bool, silent: float, interval: float, grace: float) -> Liveness:
    """How the home sees an agent after ``silent`` seconds without a heartbeat.

    Returns:
        ``offline`` (it said goodbye), ``alive`` (heard from within
        :data:`LOST_AFTER` intervals), ``lost`` (silent longer, within ``grace``
        more seconds), or ``dead`` (silent beyond that: its unfinished tests are
        marked DEAD).
    """
    if offline:
        return "offline"
    if dead(silent, interval, grace):
        return "dead"
    return "lost" if lost(silent, interval) else "alive"
