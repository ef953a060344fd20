"""Follower.stop: a wait in another thread ends soon, with no socket closed under it; and a
refill never yields a packet twice."""

import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from mtpkt import pkts
from mtpkt.bus import BusError, Publisher, Replier
from mtpkt.bus.follow import Follower
from mtpkt.pkts.link import Published
from tests.support.storekit import Sender


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


@pytest.mark.timeout(30)
def test_rows_committed_after_the_head_was_read_are_not_taken_again_from_the_stream(
    key: bytes, ipc_address: Callable[[str], str], closing: contextlib.ExitStack
) -> None:
    """The home reads its head, then the rows: a commit in between gives rows beyond the
    head. A live frame of those rows must not yield them a second time."""
    made = Sender()
    packets = [made.change("t", str(n)) for n in range(4)]

    def frame(seqs: tuple[int, ...], head: int) -> bytes:
        header = Published(origin="home", seqs=seqs, head=head)
        return pkts.seal([pkts.pack(header), *(pkts.pack(packets[s - 1]) for s in seqs)], key)

    home = Replier(ipc_address("home"), lambda request: frame((1, 2, 3), head=2), workers=1)
    closing.callback(home.close)
    home.start()
    stream = Publisher(ipc_address("stream"))
    closing.callback(stream.close)
    follower = Follower(home.address, stream.address, key)
    closing.callback(follower.close)

    assert [seq for seq, _ in follower.catch_up()] == [1, 2]  # 3 is beyond the head
    taken: list[int] = []
    deadline = time.monotonic() + 10
    while not taken and time.monotonic() < deadline:
        stream.publish(frame((3, 4), head=4))  # until the subscription is up
        taken = [seq for seq, _ in follower.poll(0.2)]
    assert taken == [3, 4]  # each once
