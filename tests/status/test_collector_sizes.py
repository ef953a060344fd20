"""Big status packets: refused whole when they could not be published, published in
frames that stay under the size limit when they can."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.agents.home.collector import Collector
from mtpkt.agents.home.writer import PUBLISH_BYTES
from mtpkt.bus import Requester, Subscriber
from mtpkt.pkts.link import Published, Query, Receipt
from mtpkt.pkts.status import StatusChange
from mtpkt.store import Store

KEY = b"s" * 32
FIELDS = ["os", "arch"]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    store = Store(tmp_path / "db", FIELDS, durable=False)
    collector = Collector(
        store,
        KEY,
        listen=f"ipc://{tmp_path}/c.ipc",
        publish=f"ipc://{tmp_path}/p.ipc",
    )
    collector.start()
    yield collector
    collector.close()
    store.close()


def change(seq: int, comment: str) -> StatusChange:
    return StatusChange(
        origin="big",
        seq=seq,
        target="linux/x86",
        runname="r",
        test=f"t{seq}",
        state=pkts.State.RUNNING,
        status=pkts.Status.NA,
        comment=comment,
    )


def send(address: str, packets: list[StatusChange]) -> Receipt:
    requester = Requester(address, timeout=10)
    try:
        reply = pkts.decode(requester.request(pkts.encode_batch(packets, KEY)), KEY)
    finally:
        requester.close()
    assert isinstance(reply, Receipt)
    return reply


def test_a_packet_too_big_to_publish_is_refused(collector: Collector) -> None:
    too_big = change(1, "x" * (pkts.MAX_PACKET_SIZE - 40))
    assert len(pkts.pack(too_big)) > pkts.MAX_PACKET_SIZE
    receipt = send(collector.listen_address, [too_big])
    assert "a status packet of" in receipt.error
    assert receipt.ids == ()
    fine = change(1, "fine")
    assert send(collector.listen_address, [fine]).ids == (fine.id,)  # still serving


def test_big_packets_are_published_in_frames_under_the_limit(collector: Collector) -> None:
    subscriber = Subscriber(collector.publish_address)
    try:
        time.sleep(0.3)  # let the subscription reach the publisher
        packets = [change(seq, "y" * (PUBLISH_BYTES // 3)) for seq in range(1, 8)]
        for packet in packets:  # one a frame: a frame of all seven would be too big
            assert send(collector.listen_address, [packet]).ids == (packet.id,)
        seen: list[int] = []
        deadline = time.monotonic() + 20
        while len(seen) < len(packets) and time.monotonic() < deadline:
            frame = subscriber.recv(timeout=1.0)
            if frame is None:
                continue
            assert len(frame) <= pkts.MAX_FRAME_SIZE
            header, *body = pkts.decode_batch(frame, KEY)
            assert isinstance(header, Published)
            assert len(body) == len(header.seqs)
            seen += header.seqs
        assert seen == list(range(1, 8))
    finally:
        subscriber.close()

    # A query's answer is cut to size too; its head then says how far it went.
    requester = Requester(collector.listen_address, timeout=10)
    try:
        reply = requester.request(pkts.encode(Query(after=0, limit=100), KEY))
    finally:
        requester.close()
    header, *body = pkts.decode_batch(reply, KEY)
    assert isinstance(header, Published)
    assert 1 <= len(body) < len(packets)
    assert header.head == header.seqs[-1] == len(body)
