"""Typed NNG sockets: with :mod:`bus.tls`, the only place in mtpkt that uses :mod:`pynng`.

Four roles, each a small class that owns one NNG socket:

* :class:`Replier` listens (REP) and serves requests with worker threads;
* :class:`Requester` dials (REQ) and waits for one reply per request;
* :class:`Publisher` listens (PUB) and never blocks;
* :class:`Subscriber` dials (SUB) and receives everything published.

They live by concern: request/reply in :mod:`bus.reqrep`, publish/subscribe in
:mod:`bus.pubsub`, what every socket shares (options, listening, dialing) in
:mod:`bus.nng`, the address a peer dials and the probes that tell why a dial
fails in :mod:`bus.probe`. This module gathers their names.

Every socket sets ``recv_timeout``, ``send_timeout`` and ``recv_max_size``
(:data:`RECV_MAX_SIZE`: :data:`pkts.MAX_FRAME_SIZE` plus room for NNG's own
protocol header, which counts against the limit). **NNG drops a message larger
than ``recv_max_size`` silently**: the receiver never sees it, the sender sees
at most a timeout. NNG also closes the connection that carried it (tcp and
ipc alike); a REQ re-sends the request on every reconnect, so the connection
flaps until that request times out. Frames made by :mod:`pkts` never exceed
:data:`pkts.MAX_FRAME_SIZE`; receivers still check sizes with the codec.

Dialers dial with ``block=False``, so a dialer started before its listener
connects by itself once the listener is up, and reconnects after the listener
restarts. Pipe callbacks only log: closing a socket from a callback can
deadlock NNG (nng #1247, #1665).

A blocking NNG receive cannot be interrupted by Ctrl-C (pynng #49), so loops
here receive with a short timeout and check a stop flag between tries.

Each role takes optional :class:`~bus.tls.Tls` settings: a ``tcp://`` address
then becomes ``tls+tcp://`` (listeners as TLS servers, dialers as clients that
check the listener's certificate). A dialer whose handshake fails sees no
error, only no connection: its requests time out (:func:`handshake_error`
asks once, with a blocking dial, what went wrong).
"""

from mtpkt.bus.errors import BusError as BusError
from mtpkt.bus.errors import BusTimeout as BusTimeout
from mtpkt.bus.nng import POLL_INTERVAL as POLL_INTERVAL
from mtpkt.bus.nng import PROTOCOL_HEADROOM as PROTOCOL_HEADROOM
from mtpkt.bus.nng import QUEUE_LENGTH as QUEUE_LENGTH
from mtpkt.bus.nng import RECV_MAX_SIZE as RECV_MAX_SIZE
from mtpkt.bus.probe import dial_address as dial_address
from mtpkt.bus.probe import handshake_error as handshake_error
from mtpkt.bus.probe import refused as refused
from mtpkt.bus.pubsub import Publisher as Publisher
from mtpkt.bus.pubsub import Subscriber as Subscriber
from mtpkt.bus.reqrep import Replier as Replier
from mtpkt.bus.reqrep import Requester as Requester

__all__ = [
    # Errors
    "BusError",
    "BusTimeout",
    # Limits every socket keeps
    "POLL_INTERVAL",
    "PROTOCOL_HEADROOM",
    "QUEUE_LENGTH",
    "RECV_MAX_SIZE",
    # Request and reply
    "Replier",
    "Requester",
    # Publish and subscribe
    "Publisher",
    "Subscriber",
    # Addresses and probes
    "dial_address",
    "handshake_error",
    "refused",
]
