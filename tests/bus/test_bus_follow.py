"""Follower.stop: a wait in another thread ends soon, with no socket closed under it."""

import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from mtpkt.bus import BusError
from mtpkt.bus.follow import Follower


@pytest.mark.timeout(30)
def test_stop_ends_a_poll_waiting_in_another_thread(
    key: bytes, ipc_address: Callable[[str], str], closing: contextlib.ExitStack
) -> None:
    # Nothing publishes or answers: the poll would wait its whole 20 s.
    follower = Follower(ipc_address("home"), ipc_address("stream"), key, timeout=20)
    closing.callback(follower.close)
    ended: list[BaseException] = []

    def poll() -> None:
        try:
            follower.poll(20)
        except BaseException as exc:
            ended.append(exc)

    worker = threading.Thread(target=poll, daemon=True)
    worker.start()
    time.sleep(0.3)  # inside the subscriber's wait by now
    stopped = time.monotonic()
    follower.stop()
    worker.join(5)

    assert not worker.is_alive()
    assert time.monotonic() - stopped < 1.0
    assert len(ended) == 1
    assert isinstance(ended[0], BusError)
    with pytest.raises(BusError, match="stopped"):
        follower.catch_up()  # and every later call, at once
