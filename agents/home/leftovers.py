"""What an agent left in its spool when it ended without sending it: the home sends it itself.

An agent in a batch job that was cancelled, timed out or lost its node may
leave status packets in its durable spool (``.mtpkt/agents/<name>/spool.db``,
on the area's shared disk). Before the home decides how such a test ended,
it sends those packets to itself through the same
:class:`~mtpkt.bus.Sender` an agent uses: each is committed once (by its id,
whatever was committed before) and deleted on the receipt. So what the test
reported before its job ended is never lost.
"""

import logging
import time
from pathlib import Path
from typing import Final

from mtpkt.bus import Sender, Spool, SpoolError, SpoolInUse, Tls

__all__ = ["LEFTOVER_WAIT", "send_leftovers"]

_log = logging.getLogger(__name__)

LEFTOVER_WAIT: Final = 10.0
"""Seconds the home gives its own sender to deliver what a spool holds."""


def send_leftovers(state_dir: Path, address: str, key: bytes, *, tls: Tls | None = None) -> bool:
    """Send what the spool in ``state_dir`` holds to the home at ``address``.

    Returns whether the spool is done with: none there, empty, or sent; False
    while another process (the agent itself) still holds it, or some of it
    could not be delivered in :data:`LEFTOVER_WAIT` seconds (call again later).
    """
    path = state_dir / "spool.db"
    if not path.exists():
        return True
    try:
        spool = Spool(path)
    except SpoolInUse:
        return False
    except SpoolError as exc:
        _log.warning("cannot read what %s left: %s", state_dir.name, exc)
        return True
    try:
        left = len(spool)
        if not left:
            return True
        _log.info("agent %s left %d status packet(s) unsent: sending them", state_dir.name, left)
        sender = Sender(spool, address, key, name=f"{state_dir.name} leftovers", tls=tls)
        sender.start()
        try:
            deadline = time.monotonic() + LEFTOVER_WAIT
            while len(spool) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            sender.stop()
        return not len(spool)
    finally:
        spool.close()
