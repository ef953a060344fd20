"""Transport between mtpkt processes over NNG (pynng).

Everything that touches pynng lives in this package (the sockets of :mod:`bus.sockets`,
by concern in :mod:`bus.reqrep`, :mod:`bus.pubsub`, :mod:`bus.probe` and :mod:`bus.nng`;
and :mod:`bus.tls`); the rest of mtpkt sees typed functions and classes of ours. Frames on every
socket are the signed frames of :mod:`pkts`.

With :class:`Tls` settings, tcp endpoints speak TLS (``tls+tcp://``), mutual
where the listener is given a CA; frames are signed either way.

The agent's side of the status path sits on top: a durable :class:`Spool`
that every status packet goes into before it is sent, a :class:`Sender` that
deletes packets only when the home's receipt names them, and a
:class:`Heartbeater`.
"""

from mtpkt.bus.errors import BusError as BusError
from mtpkt.bus.errors import BusTimeout as BusTimeout
from mtpkt.bus.probe import dial_address as dial_address
from mtpkt.bus.probe import handshake_error as handshake_error
from mtpkt.bus.pubsub import Publisher as Publisher
from mtpkt.bus.pubsub import Subscriber as Subscriber
from mtpkt.bus.reqrep import Replier as Replier
from mtpkt.bus.reqrep import Requester as Requester
from mtpkt.bus.sender import Heartbeater as Heartbeater
from mtpkt.bus.sender import Sender as Sender
from mtpkt.bus.sender import SenderStats as SenderStats
from mtpkt.bus.spool import MAX_PACKET_SIZE as MAX_PACKET_SIZE
from mtpkt.bus.spool import Spool as Spool
from mtpkt.bus.spool import SpoolError as SpoolError
from mtpkt.bus.spool import SpoolInUse as SpoolInUse
from mtpkt.bus.tls import Tls as Tls
from mtpkt.bus.tls import TlsError as TlsError
from mtpkt.bus.tls import is_tls_address as is_tls_address
from mtpkt.bus.tls import plain_address as plain_address
from mtpkt.bus.tls import tls_address as tls_address

__all__ = [
    # Errors
    "BusError",
    "BusTimeout",
    "SpoolError",
    "SpoolInUse",
    "TlsError",
    # Sockets
    "Publisher",
    "Replier",
    "Requester",
    "Subscriber",
    "dial_address",
    "handshake_error",
    # TLS for tcp endpoints
    "Tls",
    "is_tls_address",
    "plain_address",
    "tls_address",
    # Status path of an agent
    "MAX_PACKET_SIZE",
    "Heartbeater",
    "Sender",
    "SenderStats",
    "Spool",
]
