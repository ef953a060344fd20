"""The envelope every packet carries: kind, version, id, time and origin."""

import getpass
import os
import socket
import time
from functools import cache
from typing import ClassVar

import attrs

__all__ = ["ID_SIZE", "Envelope", "default_origin", "new_id"]

ID_SIZE = 16
"""Length in bytes of a packet id."""


def new_id() -> bytes:
    """A fresh random packet id (16 bytes from the OS's random source)."""
    return os.urandom(ID_SIZE)


@cache
def default_origin() -> str:
    """``user@host`` of this process: who sent a packet when not told otherwise."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (bare containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _current_version(packet: "Envelope") -> int:
    return type(packet).VERSION


@attrs.frozen(kw_only=True)
class Envelope:
    """Fields common to every packet. Not a packet kind itself."""

    kind: ClassVar[str]
    """The kind tag on the wire (``run``, ``step`` …); never reused for another kind."""
    VERSION: ClassVar[int] = 1
    """The newest schema version of this kind that this code writes and reads."""

    v: int = attrs.field(default=attrs.Factory(_current_version, takes_self=True))
    """Schema version of the kind this packet was written with. A packet read from an older
    version is read as one of the current version, its later fields at their defaults."""
    id: bytes = attrs.field(factory=new_id, metadata={"size": ID_SIZE})
    """16 random bytes naming this packet; receivers dedupe by it."""
    ts: float = attrs.field(factory=time.time)
    """When the packet was made, seconds since the Unix epoch (sender's clock)."""
    origin: str = attrs.field(factory=default_origin)
    """Who sent it: ``user@host`` for the command line, the agent name for agents."""
