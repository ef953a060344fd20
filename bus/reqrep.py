"""Request and reply over NNG: :class:`Replier` (REP, served by worker threads) and
:class:`Requester` (REQ, one context per request).

REQ re-sends a request after a reconnect, and a request that timed out may
still have been handled: a request can arrive twice, so every handler must be
idempotent (NNG's req documentation).
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Self

import pynng

from mtpkt.bus import nng
from mtpkt.bus.errors import BusError, BusTimeout
from mtpkt.bus.tls import Tls

__all__ = ["Replier", "Requester"]

logger = logging.getLogger(__name__)


IDLE_RECV: Final = 2.0
"""Seconds an idle Replier worker waits in one receive. Closing the socket ends a receive at
once, so this only bounds how long a worker may miss the stop flag; a short one (it was
0.1 s) made a home with 32 workers wake 320 times a second for nothing."""
REPLY_FLUSH: Final = 0.05
"""Seconds :meth:`Replier.close` leaves a reply sent just before to leave the socket."""
REPLY_GRACE: Final = 0.3
"""Seconds :meth:`Replier.close` waits for the handlers still running to send their
replies before it closes the socket."""


class Replier(nng.Closing):
    """A listening REP socket served by worker threads, each on its own NNG context.

    ``handler`` gets each request frame and returns the reply frame. Requests
    may arrive more than once (REQ re-sends after a reconnect), so the handler
    must be idempotent. An exception in the handler is logged and the request
    gets no reply (its requester times out); the worker keeps serving.

    The socket listens as soon as the object is made; :meth:`start` starts the
    workers. Requests larger than :data:`~bus.nng.RECV_MAX_SIZE` are dropped silently
    by NNG and never reach the handler; the handler still has to check a
    frame's size (the codec's ``max_size`` does).

    Args:
        address: where to listen, e.g. ``tcp://0.0.0.0:5555`` or ``ipc:///path``;
            tcp port 0 picks a free port (see :attr:`address`).
        handler: request frame in, reply frame out (None: no reply, the requester
            times out and may retry); called from several threads at once.
        workers: how many requests can be handled at the same time.
        name: shown in logs and thread names.
        tls: listen with TLS (on ``tls+tcp://``); mutual if the settings hold a CA.

    Raises:
        BusError: the address cannot be listened on (in use, malformed, not tcp with TLS …).
    """

    def __init__(
        self,
        address: str,
        handler: Callable[[bytes], bytes | None],
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
        address = nng.endpoint(address, tls, self._name)
        self._tls = nng.tls_options(tls, "listen", address, self._name)
        self._socket = nng.open_socket(pynng.Rep0, self._name, recv_timeout=IDLE_RECV, **self._tls)
        self._address = nng.listen(self._socket, address, self._name)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # a worker left a handler
        self._busy = 0  # workers in a handler or sending its reply (lock held)
        self._replied = -math.inf  # monotonic time the last reply was handed to NNG
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
                    continue  # now and then, so the stop flag is seen (pynng #49)
                except pynng.Closed:
                    return
                with self._lock:
                    self._busy += 1
                try:
                    if not self._answer(context, request):
                        return
                finally:
                    with self._lock:
                        self._busy -= 1
                        self._idle.notify_all()
        finally:
            nng.close_context(context)

    def _answer(self, context: Any, request: bytes) -> bool:
        """Handle one request and send its reply; False once the socket is closed."""
        reply = self._handle(request)
        if reply is None:
            return True
        try:
            context.send(reply)
        except pynng.Closed:
            return False
        except pynng.NNGException as exc:
            logger.warning("%s: reply not sent: %s", self._name, exc)
        else:
            self._replied = time.monotonic()
        return True

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

        The socket is closed once no worker is in a handler, or
        :data:`REPLY_GRACE` seconds later: the reply of a handler still running
        then is lost (its requester times out and retries: handlers are
        idempotent). Closing ends the receives of the idle workers. Handlers
        cannot be interrupted; close waits up to ``timeout`` seconds for them to
        return and logs the ones that did not.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            threads = list(self._threads)
            deadline = time.monotonic() + REPLY_GRACE
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
        # NNG may drop what is still queued when the socket closes: give a reply just sent
        # the time to leave.
        time.sleep(max(0.0, self._replied + REPLY_FLUSH - time.monotonic()))
        self._socket.close()  # also ends receives of workers still running
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s: %s still in its handler after close", self._name, thread.name)

    def __enter__(self) -> Self:
        self.start()
        return self


class Requester(nng.Closing):
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
        self._address = address = nng.endpoint(address, tls, name)
        self._timeout = timeout
        # A failed handshake is retried silently: a timeout is all a request sees of it.
        self._hint = " (or the TLS handshake fails: see the certificates)" if tls else ""
        self._tls = nng.tls_options(tls, "dial", address, name)
        self._socket = nng.open_socket(pynng.Req0, name, recv_timeout=timeout, **self._tls)
        nng.dial(self._socket, address, name)

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
            nng.set_context_ms(context, b"send-timeout", seconds)
            context.send(frame)
            nng.set_context_ms(context, b"recv-timeout", max(0.001, deadline - time.monotonic()))
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
            nng.close_context(context)

    def close(self) -> None:
        """Close the socket; requests waiting in other threads end with :class:`BusError`."""
        self._socket.close()
