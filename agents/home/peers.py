"""What the home asks of an agent's heartbeats and pulls before it acts on them.

A frame with the area's MAC comes from a holder of the key, yet its fields are
still input: an agent name becomes the ``host`` of tests and a key of the
home's books, an interval decides when the agent counts as lost, and slot
counts decide how many tests it is given. Values no agent sends are refused
with a reason instead of being recorded.
"""

import math
from typing import Final

from mtpkt.agents.area.paths import PathError, check_name
from mtpkt.pkts.link import Heartbeat, Pull

__all__ = ["MAX_INTERVAL", "MAX_NAME", "problem"]

MAX_INTERVAL: Final = 86400.0
"""Longest heartbeat interval taken, in seconds (a day)."""
MAX_NAME: Final = 255
"""Longest agent name taken (a host name's limit)."""


def problem(packet: Heartbeat | Pull) -> str:
    """Why the home must refuse this heartbeat or pull, or "" if it may act on it."""
    try:
        check_name("agent name", packet.origin)
    except PathError as exc:
        return str(exc)
    if len(packet.origin) > MAX_NAME or not packet.origin.isprintable():
        return f"agent name {packet.origin[:40]!r}… is not a host name"
    if isinstance(packet, Heartbeat):
        if not (math.isfinite(packet.interval) and 0 < packet.interval <= MAX_INTERVAL):
            return f"heartbeat interval {packet.interval} is not within (0, {MAX_INTERVAL:.0f}] s"
        if packet.slots < 0 or packet.busy < 0:
            return f"slots {packet.slots} and busy {packet.busy} must not be negative"
    elif not 0 <= packet.free <= packet.slots:
        return f"free slots {packet.free} must be between 0 and slots {packet.slots}"
    return ""
