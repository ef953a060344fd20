"""Ctrl-C while NNG blocks: socket calls in a worker thread, interrupts as a flag.

A pynng call that waits (a request, a receive) cannot be interrupted from the
thread that makes it, so the commands that talk to the home make such calls
through :func:`in_thread`, see Ctrl-C as a flag (:func:`interrupts_as_flag`),
and close a socket only once no worker may still wait on it
(:func:`close_when_idle`).
"""

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

__all__ = ["ABORT_JOIN", "close_when_idle", "in_thread", "interrupts_as_flag"]

ABORT_JOIN: Final = 5.0
"""Seconds Ctrl-C waits for a socket call to end once its socket is closed."""

_T = TypeVar("_T")

_LEFT_RUNNING: list[threading.Event] = []
"""Ends of the workers :func:`in_thread` gave up waiting for."""

_INTERRUPTED = threading.Event()
"""Set by Ctrl-C inside :func:`interrupts_as_flag`."""


def in_thread(call: Callable[[], _T], name: str, *, stop: Callable[[], None] | None = None) -> _T:
    """``call()`` in a worker thread, so that Ctrl-C is seen while NNG blocks (pynng #49).

    On Ctrl-C, ``stop()`` (if given) asks the call to end soon, and the worker is
    waited for a while (:data:`ABORT_JOIN`) before the interrupt goes on; without
    ``stop`` the interrupt goes on at once. A worker still running then is left to
    end with the process: its socket must not be closed under it (NNG may panic,
    nng #2238), which :func:`close_when_idle` sees to. The wait is on an event of our
    own: in Python 3.11 a ``Thread.join`` interrupted by Ctrl-C can release the
    thread's state lock and mark it stopped while it still runs (the bpo-45274
    branch of ``Thread._wait_for_tstate_lock``).

    Meanwhile Ctrl-C only sets a flag, which the wait checks: the default handler's
    ``KeyboardInterrupt`` is lost when it is raised inside a finalizer that happens to
    run then (a pynng socket's ``__del__`` at a garbage collection, say).
    """
    result: list[_T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the caller's thread as it is
            failure.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name=name, daemon=True)
    with interrupts_as_flag():
        try:
            _check_interrupt()
            thread.start()  # inside the try: Ctrl-C may come while start() waits for the thread
            while not done.wait(0.1):
                _check_interrupt()
            _check_interrupt()
        except BaseException:
            if stop is not None:
                stop()
                if thread.ident is not None:
                    done.wait(ABORT_JOIN)
            if not done.is_set():
                _LEFT_RUNNING.append(done)
            raise
    if failure:
        raise failure[0]
    return result[0]


def close_when_idle(close: Callable[[], None]) -> None:
    """``close()``, unless a worker :func:`in_thread` gave up on may still wait in NNG on
    what it would close: then that is left to the end of the process."""
    if all(done.is_set() for done in _LEFT_RUNNING):
        close()


def _check_interrupt() -> None:
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_as_flag() -> Iterator[None]:
    """Within the block, Ctrl-C sets a flag that :func:`in_thread` turns into
    ``KeyboardInterrupt`` (as does the end of the block), instead of raising it at once.

    The default handler's ``KeyboardInterrupt`` is lost when it is raised inside a
    finalizer that happens to run then (a pynng socket's ``__del__`` during a garbage
    collection, say). Only in the main thread, and only where Python's own handler is
    in place (not where SIGINT is ignored); nested blocks change nothing.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _INTERRUPTED.clear()
    signal.signal(signal.SIGINT, lambda signum, frame: _INTERRUPTED.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _check_interrupt()
