"""Addresses and probes: the address a peer dials, and whether (and why) a dial fails.

A dialer of :mod:`bus` dials without blocking and retries in the
background, so a peer that refuses or a TLS handshake that fails shows only as
requests that time out. The probes here make one blocking dial to tell those
apart, for error messages.
"""

import socket
import threading
import time
from typing import Final
from urllib.parse import urlsplit

import pynng

from mtpkt.bus import nng
from mtpkt.bus.errors import BusError
from mtpkt.bus.tls import Tls

__all__ = ["PROBE_WAIT", "dial_address", "handshake_error", "refused"]

PROBE_WAIT: Final = 0.5
"""Seconds :func:`refused` waits for one dial to be accepted or refused."""
_WILDCARD_HOSTS: Final = frozenset({"", "*", "0.0.0.0", "::"})


def dial_address(address: str, *, host: str | None = None) -> str:
    """Turn an address something listens on into one a peer on another host can dial.

    A wildcard tcp host (``tcp://*:5555``, ``tcp://0.0.0.0:5555``, ``tcp://:5555``)
    becomes ``host`` (default: this machine's host name). Other addresses
    (``ipc://``, a named host) come back unchanged.

    Args:
        address: what a socket listens on, best the ``address`` a :class:`Replier`
            or :class:`Publisher` reports (its tcp port is the real one).
        host: the name or IP peers should use for this machine.

    Returns:
        An address to dial.

    Raises:
        ValueError: a tcp address with port 0 (ask the listening socket for its real port).
    """
    parts = urlsplit(address)
    if not parts.scheme.startswith(("tcp", "tls+tcp", "ws", "wss")):
        return address
    port = parts.port
    if port is None or port == 0:
        raise ValueError(f"cannot dial {address}: no port (use the address the listener reports)")
    hostname = parts.hostname or ""
    if hostname not in _WILDCARD_HOSTS:
        return address
    name = host or socket.gethostname()
    if ":" in name:  # IPv6 literal
        name = f"[{name}]"
    return f"{parts.scheme}://{name}:{port}{parts.path}"


def refused(address: str, *, within: float, tls: Tls | None = None) -> bool:
    """Whether ``address`` refuses connections (nothing listens there) for ``within`` seconds.

    Asked again every 50 ms meanwhile, so that a peer starting up is found. A
    peer that accepts counts as not refusing, and so does one that neither
    accepts nor refuses at once (a host far away or behind a firewall): only
    its requests' timeout can tell. So does one whose TLS handshake fails
    (:func:`handshake_error` tells that).
    """
    deadline = time.monotonic() + within
    while isinstance(_dial_once(address, tls), pynng.ConnectionRefused):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


def handshake_error(address: str, tls: Tls) -> str:
    """Why a TLS connection to ``address`` fails, from one blocking dial: NNG's reason for a
    failed handshake (a certificate not trusted by one side or the other, a name it does
    not carry, a peer that does not speak TLS …), or ``""`` if the handshake succeeded or
    nothing could be told (refused, no answer in :data:`PROBE_WAIT`, bad address).

    A non-blocking dial, as every socket of :mod:`bus` makes, retries such a
    failure silently.
    """
    failure = _dial_once(address, tls)
    if isinstance(failure, pynng.CryptoError | pynng.AuthenticationError):
        return str(failure)
    if isinstance(failure, pynng.NNGException) and "shutdown" in str(failure).lower():
        return f"{failure} (the peer closed the connection: it may not speak TLS)"
    return ""


def _dial_once(address: str, tls: Tls | None) -> BaseException | None:
    """One blocking dial of ``address``, in a thread so that it cannot hang the caller: the
    NNG error it ended with, or ``None`` (connected, or no outcome within :data:`PROBE_WAIT`).
    """
    try:
        address = nng.endpoint(address, tls, f"probe {address}")
        # Referenced until the socket is closed, at the end (see bus.nng.tls_options).
        options = nng.tls_options(tls, "dial", address, f"probe {address}")
        sock = pynng.Req0(**options)
    except (BusError, pynng.NNGException):  # the caller's own dial says what is wrong
        return None
    outcome: list[BaseException] = []

    def dial() -> None:
        try:
            sock.dial(address, block=True)
        except pynng.NNGException as exc:  # malformed, unknown transport …: the caller decides
            outcome.append(exc)

    thread = threading.Thread(target=dial, name=f"probe {address}", daemon=True)
    thread.start()
    thread.join(PROBE_WAIT)
    sock.close()  # ends a dial still waiting
    thread.join(PROBE_WAIT)
    return outcome[0] if outcome else None
