"""Typed NNG sockets: with :mod:`bus.tls`, the only module of mtpkt that imports :mod:`pynng`.

Four roles, each a small class that owns one NNG socket:

* :class:`Replier` listens (REP) and serves requests with worker threads;
* :class:`Requester` dials (REQ) and waits for one reply per request;
* :class:`Publisher` listens (PUB) and never blocks;
* :class:`Subscriber` dials (SUB) and receives everything published.

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

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

import pynng
from pynng import lib as _nng_lib
from pynng.exceptions import check_err as _check_err

from mtpkt import pkts
from mtpkt.bus.tls import Role, Tls, TlsError, is_tls_address, tls_address

__all__ = [
    "POLL_INTERVAL",
    "PROTOCOL_HEADROOM",
    "QUEUE_LENGTH",
    "RECV_MAX_SIZE",
    "BusError",
    "BusTimeout",
    "Publisher",
    "Replier",
    "Requester",
    "Subscriber",
    "dial_address",
    "handshake_error",
    "refused",
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
_WILDCARD_HOSTS: Final = frozenset({"", "*", "0.0.0.0", "::"})


class BusError(Exception):
    """A transport failure; ``str(error)`` is one line naming the address."""


class BusTimeout(BusError):
    """No reply within the time allowed (also what a peer that is down looks like)."""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _log_pipe(role: str, event: str) -> Callable[[Any], None]:
    # Log only: closing a socket from inside a pipe callback can deadlock NNG (nng #1247, #1665).
    def callback(pipe: Any) -> None:
        logger.debug("%s: pipe %s %s", role, pipe.id, event)

    return callback


def _endpoint(address: str, tls: Tls | None, role: str) -> str:
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


def _tls_options(tls: Tls | None, role: Role, address: str, name: str) -> dict[str, Any]:
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


def _open(factory: Callable[..., Any], role: str, *, recv_timeout: float, **options: Any) -> Any:
    """A pynng socket with our timeouts, size limit and logging pipe callbacks."""
    sock = factory(
        recv_timeout=_ms(recv_timeout),
        send_timeout=_ms(SEND_TIMEOUT),
        recv_max_size=RECV_MAX_SIZE,
        reconnect_time_min=_ms(RECONNECT_MIN),
        reconnect_time_max=_ms(RECONNECT_MAX),
        **options,
    )
    # Callbacks go in before listen/dial so no pipe event is missed.
    sock.add_post_pipe_connect_cb(_log_pipe(role, "connected"))
    sock.add_post_pipe_remove_cb(_log_pipe(role, "removed"))
    return sock


def _listen(sock: Any, address: str, role: str) -> str:
    """Listen on ``address``; return the address really listened on (tcp port 0 resolved)."""
    try:
        listener = sock.listen(address)
    except pynng.NNGException as exc:
        sock.close()
        raise BusError(f"{role} cannot listen on {address}: {exc}") from None
    url: str = listener.url
    return url


def _dial(sock: Any, address: str, role: str) -> None:
    try:
        # block=False: the dial succeeds now and connects in the background whenever it can.
        sock.dial(address, block=False)
    except pynng.NNGException as exc:
        sock.close()
        raise BusError(f"{role} cannot dial {address}: {exc}") from None


def _close_context(context: Any) -> None:
    # Closed explicitly before its socket is gone; pynng's __del__ would otherwise
    # raise "Object closed" as an unraisable exception.
    try:
        context.close()
    except pynng.NNGException:
        pass  # the socket was closed first, which closed the context with it


def _set_context_ms(context: Any, option: bytes, seconds: float) -> None:
    # pynng's Context has no option setters; a per-call timeout needs nng_ctx_set_ms.
    _check_err(_nng_lib.nng_ctx_set_ms(context.context, option, _ms(seconds)))


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


class _Closing:
    """Closes itself at the end of a ``with`` block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Replier(_Closing):
    """A listening REP socket served by worker threads, each on its own NNG context.

    ``handler`` gets each request frame and returns the reply frame. Requests
    may arrive more than once (REQ re-sends after a reconnect), so the handler
    must be idempotent. An exception in the handler is logged and the request
    gets no reply (its requester times out); the worker keeps serving.

    The socket listens as soon as the object is made; :meth:`start` starts the
    workers. Requests larger than :data:`RECV_MAX_SIZE` are dropped silently
    by NNG and never reach the handler; the handler still has to check a
    frame's size (the codec's ``max_size`` does).

    Args:
        address: where to listen, e.g. ``tcp://0.0.0.0:5555`` or ``ipc:///path``;
            tcp port 0 picks a free port (see :attr:`address`).
        handler: request frame in, reply frame out; called from several threads at once.
        workers: how many requests can be handled at the same time.
        name: shown in logs and thread names.
        tls: listen with TLS (on ``tls+tcp://``); mutual if the settings hold a CA.

    Raises:
        BusError: the address cannot be listened on (in use, malformed, not tcp with TLS …).
    """

    def __init__(
        self,
        address: str,
        handler: Callable[[bytes], bytes],
        *,
        workers: int = 4,
        name: str = "",
        tls: Tls | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a Replier needs at least one worker, not {workers}")
        self._name = name or f"replier {address}"
        self._handler = handler
        self._workers = workers
        address = _endpoint(address, tls, self._name)
        self._tls = _tls_options(tls, "listen", address, self._name)
        self._socket = _open(pynng.Rep0, self._name, recv_timeout=POLL_INTERVAL, **self._tls)
        self._address = _listen(self._socket, address, self._name)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def address(self) -> str:
        """The address really listened on: for ``tcp://127.0.0.1:0`` it holds the chosen port."""
        return self._address

    def start(self) -> None:
        """Start the worker threads (once; later calls do nothing)."""
        with self._lock:
            if self._closed:
                raise BusError(f"{self._name} is closed")
            if self._threads:
                return
            for index in range(self._workers):
                # Contexts are opened here, in the caller's thread, so errors surface at start.
                context = self._socket.new_context()
                thread = threading.Thread(
                    target=self._serve,
                    args=(context,),
                    name=f"{self._name} worker {index}",
                    daemon=True,
                )
                self._threads.append(thread)
            for thread in self._threads:
                thread.start()

    def _serve(self, context: Any) -> None:
        try:
            while not self._stop.is_set():
                try:
                    request: bytes = context.recv()
                except pynng.Timeout:
                    continue  # a short timeout, so the stop flag is seen (pynng #49)
                except pynng.Closed:
                    return
                reply = self._handle(request)
                if reply is None:
                    continue
                try:
                    context.send(reply)
                except pynng.Closed:
                    return
                except pynng.NNGException as exc:
                    logger.warning("%s: reply not sent: %s", self._name, exc)
        finally:
            _close_context(context)

    def _handle(self, request: bytes) -> bytes | None:
        try:
            return self._handler(request)
        except Exception:
            # Any handler bug must not end the worker: the request goes unanswered
            # (its requester times out and retries), the next one is served.
            logger.exception("%s: handler failed on a %d-byte request", self._name, len(request))
            return None

    def close(self, *, timeout: float = 5.0) -> None:
        """Stop the workers and close the socket (later calls do nothing).

        Idle workers stop within :data:`POLL_INTERVAL`. The socket is closed at
        most three of those later, so the reply of a handler still running is
        lost (its requester times out and retries: handlers are idempotent).
        Handlers cannot be interrupted; close waits up to ``timeout`` seconds
        for them to return and logs the ones that did not.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            threads = list(self._threads)
        deadline = time.monotonic() + POLL_INTERVAL * 3
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._socket.close()  # also ends receives of workers still running
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s: %s still in its handler after close", self._name, thread.name)

    def __enter__(self) -> Self:
        self.start()
        return self


PROBE_WAIT: Final = 0.5
"""Seconds :func:`refused` waits for one dial to be accepted or refused."""


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

    A non-blocking dial, as every socket here makes, retries such a failure silently.
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
        address = _endpoint(address, tls, f"probe {address}")
        # Referenced until the socket is closed, at the end (see _tls_options).
        options = _tls_options(tls, "dial", address, f"probe {address}")
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


class Requester(_Closing):
    """A REQ socket dialing one address.

    Thread-safe: each :meth:`request` uses its own NNG context, so several
    threads can wait for replies at once. The dial does not block; requests
    made before the peer is up wait for it (within their timeout).

    A request may reach the peer twice (REQ re-sends after a reconnect), and a
    request that timed out may still have been handled: whatever is sent must be
    safe to handle again.

    Args:
        address: the peer's address, e.g. ``tcp://home:5555``.
        timeout: default seconds :meth:`request` waits for a reply.
        tls: dial with TLS (``tls+tcp://``), checking the peer's certificate.

    Raises:
        BusError: the address is malformed, its transport unknown, or not tcp with TLS.
    """

    def __init__(self, address: str, *, timeout: float = 5.0, tls: Tls | None = None) -> None:
        name = f"requester {address}"
        self._address = address = _endpoint(address, tls, name)
        self._timeout = timeout
        # A failed handshake is retried silently: a timeout is all a request sees of it.
        self._hint = " (or the TLS handshake fails: see the certificates)" if tls else ""
        self._tls = _tls_options(tls, "dial", address, name)
        self._socket = _open(pynng.Req0, name, recv_timeout=timeout, **self._tls)
        _dial(self._socket, address, name)

    @property
    def address(self) -> str:
        """The address dialed."""
        return self._address

    def request(self, frame: bytes, *, timeout: float | None = None) -> bytes:
        """Send one request and wait for its reply.

        Blocks up to ``timeout`` seconds in NNG (not interruptible by Ctrl-C
        before then, pynng #49); run it in a worker thread, or keep it short.

        Args:
            frame: the request.
            timeout: seconds to wait for the reply (default: the Requester's timeout).

        Returns:
            The reply frame.

        Raises:
            BusTimeout: no reply in time (also when the peer is down or the request was dropped).
            BusError: the Requester is closed, or NNG failed otherwise.
        """
        seconds = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        try:
            context = self._socket.new_context()
        except pynng.NNGException as exc:
            raise BusError(f"requester for {self._address} is closed ({exc})") from None
        try:
            # With no peer, REQ holds the send until one connects: both steps share one deadline.
            _set_context_ms(context, b"send-timeout", seconds)
            context.send(frame)
            _set_context_ms(context, b"recv-timeout", max(0.001, deadline - time.monotonic()))
            reply: bytes = context.recv()
            return reply
        except pynng.Timeout:
            raise BusTimeout(
                f"no reply from {self._address} within {seconds:g} s{self._hint}"
            ) from None
        except pynng.Closed:
            raise BusError(f"requester for {self._address} was closed") from None
        except pynng.NNGException as exc:
            raise BusError(f"request to {self._address} failed: {exc}") from None
        finally:
            _close_context(context)

    def close(self) -> None:
        """Close the socket; requests waiting in other threads end with :class:`BusError`."""
        self._socket.close()


class Publisher(_Closing):
    """A listening PUB socket. Lossy by design: use it only for what may be missed.

    Subscribers that join late miss earlier frames, and NNG drops frames for a
    subscriber that does not keep up (nanomsg #390, #1094; pynng #41, #42):
    up to :data:`QUEUE_LENGTH` frames wait per subscriber, then new ones are dropped.

    Args:
        address: where to listen; tcp port 0 picks a free port (see :attr:`address`).
        tls: listen with TLS (on ``tls+tcp://``); mutual if the settings hold a CA.

    Raises:
        BusError: the address cannot be listened on.
    """

    def __init__(self, address: str, *, tls: Tls | None = None) -> None:
        name = f"publisher {address}"
        address = _endpoint(address, tls, name)
        self._tls = _tls_options(tls, "listen", address, name)
        self._socket = _open(
            pynng.Pub0,
            name,
            recv_timeout=POLL_INTERVAL,
            send_buffer_size=QUEUE_LENGTH,  # per subscriber; NNG's default of 16 drops bursts
            **self._tls,
        )
        self._address = _listen(self._socket, address, name)

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


class Subscriber(_Closing):
    """A SUB socket dialing one publisher, subscribed to everything it publishes.

    Args:
        address: the publisher's address.
        tls: dial with TLS (``tls+tcp://``), checking the publisher's certificate.

    Raises:
        BusError: the address is malformed, its transport unknown, or not tcp with TLS.
    """

    def __init__(self, address: str, *, tls: Tls | None = None) -> None:
        name = f"subscriber {address}"
        self._address = address = _endpoint(address, tls, name)
        self._tls = _tls_options(tls, "dial", address, name)
        self._socket = _open(
            pynng.Sub0, name, recv_timeout=POLL_INTERVAL, recv_buffer_size=QUEUE_LENGTH, **self._tls
        )
        self._socket.subscribe(b"")
        _dial(self._socket, address, name)

    @property
    def address(self) -> str:
        """The address dialed."""
        return self._address

    def recv(self, timeout: float, *, stop: threading.Event | None = None) -> bytes | None:
        """The next frame, or ``None`` if none came within ``timeout`` seconds (or ``stop``
        was set).

        Waits in slices of :data:`POLL_INTERVAL`, so Ctrl-C and ``stop`` are seen promptly.

        Raises:
            BusError: the Subscriber is closed.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return None
            try:
                self._socket.recv_timeout = _ms(min(POLL_INTERVAL, remaining))
                frame: bytes = self._socket.recv()
                return frame
            except pynng.Timeout:
                continue
            except pynng.NNGException as exc:
                raise BusError(f"subscriber to {self._address} cannot receive: {exc}") from None

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()
