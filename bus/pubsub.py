"""Publish and subscribe over NNG: :class:`Publisher` (PUB) and :class:`Subscriber` (SUB).

Lossy by design (nanomsg #390, #1094; pynng #41, #42): use it only for what
may be missed, such as the live stream that followers refill from the home.
"""

import logging
import threading
import time

import pynng

from mtpkt.bus import nng
from mtpkt.bus.errors import BusError
from mtpkt.bus.tls import Tls

__all__ = ["Publisher", "Subscriber"]

logger = logging.getLogger(__name__)


class Publisher(nng.Closing):
    """A listening PUB socket. Lossy by design: use it only for what may be missed.

    Subscribers that join late miss earlier frames, and NNG drops frames for a
    subscriber that does not keep up (nanomsg #390, #1094; pynng #41, #42):
    up to :data:`~bus.nng.QUEUE_LENGTH` frames wait per subscriber, then new ones are dropped.

    Args:
        address: where to listen; tcp port 0 picks a free port (see :attr:`address`).
        tls: listen with TLS (on ``tls+tcp://``); mutual if the settings hold a CA.

    Raises:
        BusError: the address cannot be listened on.
    """

    def __init__(self, address: str, *, tls: Tls | None = None) -> None:
        name = f"publisher {address}"
        address = nng.endpoint(address, tls, name)
        self._tls = nng.tls_options(tls, "listen", address, name)
        self._socket = nng.open_socket(
            pynng.Pub0,
            name,
            recv_timeout=nng.POLL_INTERVAL,
            send_buffer_size=nng.QUEUE_LENGTH,  # per subscriber; NNG's default of 16 drops bursts
            **self._tls,
        )
        self._address = nng.listen(self._socket, address, name)

    @property
    def address(self) -> str:
        """The address really listened on (tcp port 0 resolved)."""
        return self._address

    def publish(self, frame: bytes) -> None:
        """Send ``frame`` to every subscriber connected now; never blocks.

        Raises:
            BusError: the Publisher is closed.
        """
        try:
            self._socket.send(frame, block=False)
        except pynng.TryAgain:
            logger.debug("publisher %s: frame dropped, queues full", self._address)
        except pynng.NNGException as exc:
            raise BusError(f"publisher on {self._address} cannot send: {exc}") from None

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()


class Subscriber(nng.Closing):
    """A SUB socket dialing one publisher, subscribed to everything it publishes.

    Args:
        address: the publisher's address.
        tls: dial with TLS (``tls+tcp://``), checking the publisher's certificate.

    Raises:
        BusError: the address is malformed, its transport unknown, or not tcp with TLS.
    """

    def __init__(self, address: str, *, tls: Tls | None = None) -> None:
        name = f"subscriber {address}"
        self._address = address = nng.endpoint(address, tls, name)
        self._tls = nng.tls_options(tls, "dial", address, name)
        self._socket = nng.open_socket(
            pynng.Sub0,
            name,
            recv_timeout=nng.POLL_INTERVAL,
            recv_buffer_size=nng.QUEUE_LENGTH,
            **self._tls,
        )
        self._socket.subscribe(b"")
        nng.dial(self._socket, address, name)

    @property
    def address(self) -> str:
        """The address dialed."""
        return self._address

    def recv(self, timeout: float, *, stop: threading.Event | None = None) -> bytes | None:
        """The next frame, or ``None`` if none came within ``timeout`` seconds (or ``stop``
        was set).

        Waits in slices of :data:`~bus.nng.POLL_INTERVAL`, so Ctrl-C and ``stop`` are seen promptly.

        Raises:
            BusError: the Subscriber is closed.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return None
            try:
                self._socket.recv_timeout = nng.ms(min(nng.POLL_INTERVAL, remaining))
                frame: bytes = self._socket.recv()
                return frame
            except pynng.Timeout:
                continue
            except pynng.NNGException as exc:
                raise BusError(f"subscriber to {self._address} cannot receive: {exc}") from None

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()
