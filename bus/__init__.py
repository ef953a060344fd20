"""Transport between mtpkt processes over NNG (pynng).

Everything that touches pynng lives in this package (in :mod:`bus.sockets`);
the rest of mtpkt sees typed functions and classes of ours. Frames on every
socket are the signed frames of :mod:`pkts`.

The agent's side of the status path sits on top: a durable :class:`Spool`
that every status packet goes into before it is sent, a :class:`Sender` that
deletes packets only when the home's receipt names them, and a
:class:`Heartbeater`.
"""

from bus.sender import Heartbeater as Heartbeater
from bus.sender import Sender as Sender
from bus.sender import SenderStats as SenderStats
from bus.sockets import BusError as BusError
from bus.sockets import BusTimeout as BusTimeout
from bus.sockets import Publisher as Publisher
from bus.sockets import Replier as Replier
from bus.sockets import Requester as Requester
from bus.sockets import Subscriber as Subscriber
from bus.sockets import dial_address as dial_address
from bus.spool import MAX_PACKET_SIZE as MAX_PACKET_SIZE
from bus.spool import Spool as Spool
from bus.spool import SpoolError as SpoolError
from bus.spool import SpoolInUse as SpoolInUse

__all__ = [
    # Errors
    "BusError",
    "BusTimeout",
    "SpoolError",
    "SpoolInUse",
    # Sockets
    "Publisher",
    "Replier",
    "Requester",
    "Subscriber",
    "dial_address",
    # Status path of an agent
    "MAX_PACKET_SIZE",
    "Heartbeater",
    "Sender",
    "SenderStats",
    "Spool",
]
