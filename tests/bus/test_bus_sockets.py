"""bus sockets over real NNG sockets: request/reply, timeouts, size limit, pub/sub."""

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable

import pytest

from mtpkt import pkts
from mtpkt.bus import BusError, BusTimeout, Publisher, Replier, Requester, Subscriber, dial_address
from mtpkt.bus.nng import POLL_INTERVAL, QUEUE_LENGTH, RECV_MAX_SIZE
from tests.support.procs import wait_until

Address = Callable[[str], str]


def echo(frame: bytes) -> bytes:
    return b"re:" + frame


def serve(
    closing: contextlib.ExitStack,
    address: str,
    handler: Callable[[bytes], bytes] = echo,
    *,
    workers: int = 2,
) -> Replier:
    replier = Replier(address, handler, workers=workers, name="test replier")
    closing.callback(replier.close)
    replier.start()
    return replier


def requester(closing: contextlib.ExitStack, address: str, *, timeout: float = 5.0) -> Requester:
    req = Requester(address, timeout=timeout)
    closing.callback(req.close)
    return req


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_request_reply(transport: str, closing: contextlib.ExitStack, ipc_address: Address) -> None:
    listen = ipc_address("rr") if transport == "ipc" else "tcp://127.0.0.1:0"
    replier = serve(closing, listen)
    if transport == "tcp":
        assert replier.address.startswith("tcp://127.0.0.1:")
        assert not replier.address.endswith(":0")  # the port really chosen
    else:
        assert replier.address == listen
    req = requester(closing, replier.address)
    assert req.request(b"hello") == b"re:hello"
    assert req.request(b"again", timeout=2.0) == b"re:again"


def test_dialer_started_before_its_listener_connects_later(
    closing: contextlib.ExitStack, ipc_address: Address
) -> None:
    address = ipc_address("late")
    req = requester(closing, address)
    result: list[bytes] = []
    asking = threading.Thread(target=lambda: result.append(req.request(b"early", timeout=10)))
    asking.start()
    closing.callback(asking.join, 10)
    time.sleep(0.2)  # the request is waiting, with nothing listening yet
    serve(closing, address)
    asking.join(10)
    assert result == [b"re:early"]


def test_concurrent_requests_are_served_by_several_workers(
    closing: contextlib.ExitStack,
) -> None:
    workers = 4
    # Each request waits at a barrier that only opens when `workers` handlers run at once.
    barrier = threading.Barrier(workers, timeout=5)

    def handler(frame: bytes) -> bytes:
        barrier.wait()
        return frame.upper()

    replier = serve(closing, "tcp://127.0.0.1:0", handler, workers=workers)
    req = requester(closing, replier.address)  # one Requester shared by all threads
    replies: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def ask(index: int) -> None:
        try:
            replies[index] = req.request(f"r{index}".encode(), timeout=10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(2 * workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not errors
    assert replies == {index: f"R{index}".encode() for index in range(2 * workers)}


def test_timeout_when_no_peer_is_bounded(
    closing: contextlib.ExitStack, ipc_address: Address
) -> None:
    address = ipc_address("nobody")
    req = requester(closing, address, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(BusTimeout, match=r"nobody\.ipc") as caught:
        req.request(b"anyone?")
    assert time.monotonic() - started < 2.0
    assert "\n" not in str(caught.value)
    # the tcp case: a port nothing listens on
    tcp = requester(closing, "tcp://127.0.0.1:9", timeout=0.3)
    with pytest.raises(BusTimeout, match=r"tcp://127\.0\.0\.1:9"):
        tcp.request(b"anyone?")


def test_handler_exception_does_not_kill_the_replier(
    closing: contextlib.ExitStack,
    ipc_address: Address,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(frame: bytes) -> bytes:
        if frame == b"boom":
            raise RuntimeError("handler bug")
        return echo(frame)

    replier = serve(closing, ipc_address("boom"), handler, workers=1)
    failed = "test replier: handler failed on a 4-byte request"
    req = requester(closing, replier.address)
    with caplog.at_level(logging.ERROR, logger="mtpkt.bus.reqrep"):
        for _ in range(3):  # more failures than workers: the worker survives each
            with pytest.raises(BusTimeout):
                req.request(b"boom", timeout=0.3)
        wait_until(lambda: [r.getMessage() for r in caplog.records].count(failed) == 3)
    assert req.request(b"fine") == b"re:fine"


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_frames_over_recv_max_size_are_dropped_silently(
    transport: str, closing: contextlib.ExitStack, ipc_address: Address
) -> None:
    """NNG drops a message over ``recv_max_size`` without a word: the sender only times out.

    The largest frame the codec makes still passes: the limit leaves room for
    the 4-byte REQ header that NNG counts against it.
    """
    seen: list[int] = []

    def handler(frame: bytes) -> bytes:
        seen.append(len(frame))
        return b"ok"

    listen = ipc_address("big") if transport == "ipc" else "tcp://127.0.0.1:0"
    replier = serve(closing, listen, handler)
    req = requester(closing, replier.address)
    assert req.request(b"x" * pkts.MAX_FRAME_SIZE) == b"ok"
    with pytest.raises(BusTimeout):
        req.request(b"x" * (RECV_MAX_SIZE + 1), timeout=0.5)
    assert req.request(b"small") == b"ok"  # and the connection is usable again
    assert seen == [pkts.MAX_FRAME_SIZE, len(b"small")]


def test_close_stops_workers_promptly(closing: contextlib.ExitStack) -> None:
    replier = serve(closing, "tcp://127.0.0.1:0", workers=4)
    before = {thread for thread in threading.enumerate() if "test replier" in thread.name}
    assert len(before) == 4
    started = time.monotonic()
    replier.close()
    assert time.monotonic() - started < 3 * POLL_INTERVAL + 0.2
    assert not any(thread.is_alive() for thread in before)
    replier.close()  # again: nothing happens


def test_replier_closed_mid_handler_does_not_hang(closing: contextlib.ExitStack) -> None:
    entered = threading.Event()
    release = threading.Event()
    closing.callback(release.set)

    def handler(frame: bytes) -> bytes:
        entered.set()
        release.wait(5)
        return frame

    replier = serve(closing, "tcp://127.0.0.1:0", handler, workers=1)
    req = requester(closing, replier.address)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            req.request(b"x", timeout=1)
        except BusError as exc:
            errors.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    assert entered.wait(5)
    started = time.monotonic()
    replier.close(timeout=0.2)  # the handler still runs: close gives up waiting for it
    assert time.monotonic() - started < 1.5
    release.set()
    asking.join(5)
    assert not asking.is_alive()
    assert [type(error) for error in errors] == [BusTimeout]  # no reply ever came


def test_listening_twice_on_one_address_names_it(closing: contextlib.ExitStack) -> None:
    replier = serve(closing, "tcp://127.0.0.1:0")
    with pytest.raises(BusError, match=re.escape(replier.address)):
        Replier(replier.address, echo)


def test_malformed_addresses_are_bus_errors() -> None:
    with pytest.raises(BusError, match="nope://x"):
        Requester("nope://x")
    with pytest.raises(BusError, match="nope://y"):
        Replier("nope://y", echo)


def test_requests_on_a_closed_requester_fail_at_once(closing: contextlib.ExitStack) -> None:
    replier = serve(closing, "tcp://127.0.0.1:0")
    req = Requester(replier.address)
    req.close()
    with pytest.raises(BusError, match="closed"):
        req.request(b"late")


def test_close_ends_a_request_waiting_in_another_thread(
    closing: contextlib.ExitStack, ipc_address: Address
) -> None:
    req = requester(closing, ipc_address("gone"), timeout=10)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            req.request(b"x")
        except BusError as exc:
            errors.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    time.sleep(0.1)
    started = time.monotonic()
    req.close()
    asking.join(5)
    assert time.monotonic() - started < 1.0
    assert len(errors) == 1
    assert not isinstance(errors[0], BusTimeout)


def connected_pair(closing: contextlib.ExitStack, address: str) -> tuple[Publisher, Subscriber]:
    publisher = Publisher(address)
    closing.callback(publisher.close)
    subscriber = Subscriber(publisher.address)
    closing.callback(subscriber.close)
    # Late joiners miss what was published before they connected: publish until one arrives.
    deadline = time.monotonic() + 10
    while subscriber.recv(0.05) != b"hello":
        assert time.monotonic() < deadline, "subscriber never connected"
        publisher.publish(b"hello")
    while subscriber.recv(0.1) is not None:  # the extra hellos
        pass
    return publisher, subscriber


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_pub_sub_delivers_to_a_connected_subscriber(
    transport: str, closing: contextlib.ExitStack, ipc_address: Address
) -> None:
    listen = ipc_address("pub") if transport == "ipc" else "tcp://127.0.0.1:0"
    publisher, subscriber = connected_pair(closing, listen)
    for index in range(20):
        publisher.publish(f"m{index}".encode())
        assert subscriber.recv(2.0) == f"m{index}".encode()
    started = time.monotonic()
    assert subscriber.recv(0.2) is None
    assert time.monotonic() - started < 1.0


def test_pub_sub_burst_arrives_in_order_up_to_the_queue_length(
    closing: contextlib.ExitStack,
) -> None:
    publisher, subscriber = connected_pair(closing, "tcp://127.0.0.1:0")
    sent = [f"b{index}".encode() for index in range(QUEUE_LENGTH // 2)]
    for frame in sent:
        publisher.publish(frame)
    received: list[bytes] = []
    while (got := subscriber.recv(0.5)) is not None and len(received) < len(sent):
        received.append(got)
    # Lossy by design, but a burst within the queue length is not dropped.
    assert received == sent


def test_publish_never_blocks_without_subscribers(ipc_address: Address) -> None:
    with Publisher(ipc_address("lonely")) as publisher:
        started = time.monotonic()
        for _ in range(1000):
            publisher.publish(b"nobody listens")
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("listen", "dial"),
    [
        ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5555"),
        ("tcp://0.0.0.0:5555", "tcp://node7:5555"),
        ("tcp://*:5555", "tcp://node7:5555"),
        ("tcp://:5555", "tcp://node7:5555"),
        ("tcp://[::]:5555", "tcp://node7:5555"),
        ("ipc:///tmp/home.ipc", "ipc:///tmp/home.ipc"),
    ],
)
def test_dial_address(listen: str, dial: str) -> None:
    assert dial_address(listen, host="node7") == dial


def test_dial_address_refuses_port_zero_and_uses_the_host_name() -> None:
    with pytest.raises(ValueError, match="port"):
        dial_address("tcp://127.0.0.1:0")
    assert not dial_address("tcp://0.0.0.0:7000").startswith("tcp://0.0.0.0")


def test_dial_address_of_a_real_wildcard_listener_is_dialable(
    closing: contextlib.ExitStack,
) -> None:
    replier = serve(closing, "tcp://0.0.0.0:0")
    req = requester(closing, dial_address(replier.address, host="127.0.0.1"))
    assert req.request(b"via wildcard") == b"re:via wildcard"
