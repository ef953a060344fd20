"""Transport between mtpkt processes over NNG (pynng).

Everything that touches pynng lives in this package; the rest of mtpkt sees typed
functions and classes of ours. Frames on every socket are the signed frames of
:mod:`pkts`.

Four socket roles, each a small class that owns one NNG socket:

* :class:`Replier` listens (REP) and serves requests with worker threads;
* :class:`Requester` dials (REQ) and waits for one reply per request;
* :class:`Publisher` listens (PUB) and never blocks;
* :class:`Subscriber` dials (SUB) and receives everything published.

They live by concern: request/reply in :mod:`bus.reqrep`, publish/subscribe in
:mod:`bus.pubsub`, what every socket shares (options, listening, dialing) in
:mod:`bus.nng`, the address a peer dials and the probes that tell why a dial
fails in :mod:`bus.probe`, TLS settings in :mod:`bus.tls`.

Every socket sets ``recv_timeout``, ``send_timeout`` and ``recv_max_size``
(:data:`bus.nng.RECV_MAX_SIZE`: :data:`pkts.MAX_FRAME_SIZE` plus room for NNG's
own protocol header, which counts against the limit). **NNG drops a message
larger than ``recv_max_size`` silently**: the receiver never sees it, the sender
sees at most a timeout. NNG also closes the connection that carried it (tcp and
ipc alike); a REQ re-sends the request on every reconnect, so the connection
flaps until that request times out. Frames made by :mod:`pkts` never exceed
:data:`pkts.MAX_FRAME_SIZE`; receivers still check sizes with the codec.

Dialers dial with ``block=False``, so a dialer started before its listener
connects by itself once the listener is up, and reconnects after the listener
restarts. Pipe callbacks only log: closing a socket from a callback can
deadlock NNG (nng #1247, #1665).

A blocking NNG receive cannot be interrupted by Ctrl-C (pynng #49), so loops
here receive with a short timeout and check a stop flag between tries.

With :class:`Tls` settings, a ``tcp://`` address becomes ``tls+tcp://``
(listeners as TLS servers, dialers as clients that check the listener's
certificate), mutual where the listener is given a CA; frames are signed either
way. A dialer whose handshake fails sees no error, only no connection: its
requests time out (:func:`handshake_error` asks once, with a blocking dial, what
went wrong; :func:`refused` whether nothing listens there at all).

The agent's side of the status path sits on top: a durable :class:`Spool`
that every status packet goes into before it is sent, a :class:`Sender` that
deletes packets only when the home's receipt names them, and a
:class:`Heartbeater`.
"""

from mtpkt.bus.errors import BusError as BusError
from mtpkt.bus.errors import BusTimeout as BusTimeout
from mtpkt.bus.probe import dial_address as dial_address
from mtpkt.bus.probe import handshake_error as handshake_error
from mtpkt.bus.probe import refused as refused
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
    "refused",
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
