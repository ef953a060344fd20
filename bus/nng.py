"""What every socket of :mod:`bus` shares: pynng options, listening, dialing, closing.

Every socket is made by :func:`open_socket`, with ``recv_timeout``,
``send_timeout``, ``recv_max_size`` (:data:`RECV_MAX_SIZE`; NNG drops a larger
message silently) and pipe callbacks that only log. Listeners report the
address really listened on; dialers dial with ``block=False``.
"""

import abc
import logging
from collections.abc import Callable
from typing import Any, Final, Self

import pynng
from pynng import lib as _nng_lib
from pynng.exceptions import check_err as _check_err

from mtpkt import pkts
from mtpkt.bus.errors import BusError
from mtpkt.bus.tls import Role, Tls, TlsError, is_tls_address, tls_address

__all__ = [
    "POLL_INTERVAL",
    "PROTOCOL_HEADROOM",
    "QUEUE_LENGTH",
    "RECONNECT_MAX",
    "RECONNECT_MIN",
    "RECV_MAX_SIZE",
    "SEND_TIMEOUT",
    "Closing",
    "close_context",
    "dial",
    "endpoint",
    "listen",
    "ms",
    "open_socket",
    "set_context_ms",
    "tls_options",
]

logger = logging.getLogger(__name__)

PROTOCOL_HEADROOM: Final = 64
"""Bytes NNG's protocol headers add to a message before ``recv_max_size`` applies.

REQ/REP put a 4-byte request id (one more per device hop, at most 8) in front
of every message: with ``recv_max_size = pkts.MAX_FRAME_SIZE`` exactly, a frame
of the largest size the codec allows would be dropped silently.
"""
RECV_MAX_SIZE: Final = pkts.MAX_FRAME_SIZE + PROTOCOL_HEADROOM
"""The ``recv_max_size`` of every socket; larger messages are dropped silently by NNG."""
QUEUE_LENGTH: Final = 256
"""Messages a publisher queues per subscriber, and a subscriber queues unread, before dropping."""
POLL_INTERVAL: Final = 0.1
"""Seconds a worker blocks in one receive before it checks its stop flag."""
SEND_TIMEOUT: Final = 1.0
"""Seconds a reply or a publication may wait for room in NNG's queues."""
RECONNECT_MIN: Final = 0.1
"""Seconds a dialer waits before its first reconnect attempt."""
RECONNECT_MAX: Final = 2.0
"""Longest wait between reconnect attempts (NNG doubles the wait up to this)."""


def ms(seconds: float) -> int:
    """Seconds as the whole milliseconds NNG's options take (at least 1)."""
    return max(1, round(seconds * 1000))


def _log_pipe(role: str, event: str) -> Callable[[Any], None]:
    # Log only: closing a socket from inside a pipe callback can deadlock NNG (nng #1247, #1665).
    def callback(pipe: Any) -> None:
        logger.debug("%s: pipe %s %s", role, pipe.id, event)

    return callback


def endpoint(address: str, tls: Tls | None, role: str) -> str:
    """``address`` as the socket uses it: ``tls+tcp://`` with TLS settings, as given without.

    Raises:
        BusError: TLS settings for a transport other than tcp, or a ``tls+tcp://``
            address without them.
    """
    if tls is None and is_tls_address(address):
        raise BusError(f"{role}: {address} takes TLS only, and no TLS settings were given")
    try:
        return tls_address(address, tls)
    except TlsError as exc:
        raise BusError(f"{role}: {exc}") from None


def tls_options(tls: Tls | None, role: Role, address: str, name: str) -> dict[str, Any]:
    """The ``tls_config`` socket option, set at creation so it is there before listen/dial.

    The caller keeps the dict as long as the socket: pynng frees the config with its
    Python object, and NNG's documentation does not say that a socket-level option
    holds a reference of its own.
    """
    if tls is None:
        return {}
    try:
        return {"tls_config": tls.config(role, address)}
    except TlsError as exc:
        raise BusError(f"{name}: {exc}") from None


def open_socket(
    factory: Callable[..., Any], role: str, *, recv_timeout: float, **options: Any
) -> Any:
    """A pynng socket with our timeouts, size limit and logging pipe callbacks."""
    sock = factory(
        recv_timeout=ms(recv_timeout),
        send_timeout=ms(SEND_TIMEOUT),
        recv_max_size=RECV_MAX_SIZE,
        reconnect_time_min=ms(RECONNECT_MIN),
        reconnect_time_max=ms(RECONNECT_MAX),
        **options,
    )
    # Callbacks go in before listen/dial so no pipe event is missed.
    sock.add_post_pipe_connect_cb(_log_pipe(role, "connected"))
    sock.add_post_pipe_remove_cb(_log_pipe(role, "removed"))
    return sock


def listen(sock: Any, address: str, role: str) -> str:
    """Listen on ``address``; return the address really listened on (tcp port 0 resolved)."""
    try:
        listener = sock.listen(address)
    except pynng.NNGException as exc:
        sock.close()
        raise BusError(f"{role} cannot listen on {address}: {exc}") from None
    url: str = listener.url
    return url


def dial(sock: Any, address: str, role: str) -> None:
    """Dial ``address`` without waiting for the connection."""
    try:
        # block=False: the dial succeeds now and connects in the background whenever it can.
        sock.dial(address, block=False)
    except pynng.NNGException as exc:
        sock.close()
        raise BusError(f"{role} cannot dial {address}: {exc}") from None


def close_context(context: Any) -> None:
    """Close an NNG context of a socket that may be closed already."""
    # Closed explicitly before its socket is gone; pynng's __del__ would otherwise
    # raise "Object closed" as an unraisable exception.
    try:
        context.close()
    except pynng.NNGException:
        pass  # the socket was closed first, which closed the context with it


def set_context_ms(context: Any, option: bytes, seconds: float) -> None:
    """Set a time option (``b"send-timeout"`` …) of one NNG context."""
    # pynng's Context has no option setters; a per-call timeout needs nng_ctx_set_ms.
    _check_err(_nng_lib.nng_ctx_set_ms(context.context, option, ms(seconds)))


class Closing(abc.ABC):
    """Closes itself at the end of a ``with`` block."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the socket, and whatever else the role holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
