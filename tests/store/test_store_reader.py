"""HistoryReader: committed packets by stream sequence number, from other threads."""

import threading
import time

import pytest

from mtpkt.pkts.status import StatusPacket
from mtpkt.store import Store, StoreError
from tests.support.storekit import MakeReader, MakeStore, Sender, ids_of, seqs_of


def fill(store: Store) -> dict[str, list[StatusPacket]]:
    """Two targets, three runs and some Acks, interleaved; returns the packets by run."""
    nightly = Sender("node1", "ubuntu/x86_64", "nightly")
    weekly = Sender("node2", "ubuntu/x86_64", "weekly")
    arm = Sender("node3", "ubuntu/arm64", "nightly")
    home = Sender("home")
    sent: dict[str, list[StatusPacket]] = {"nightly": [], "weekly": [], "arm": [], "acks": []}
    for n in range(10):
        batch: list[StatusPacket] = [
            nightly.change(f"t{n}"),
            weekly.step(f"t{n}"),
            arm.change(f"t{n}", "i"),
            home.ack(),
        ]
        for name, packet in zip(sent, batch, strict=True):
            sent[name].append(packet)
        store.apply(batch)
    return sent


def test_history_of_everything_in_seq_order(make_store: MakeStore, make_reader: MakeReader) -> None:
    sent = fill(make_store())
    reader = make_reader()
    assert reader.head() == 40
    history = reader.history()
    assert seqs_of(history) == list(range(1, 41))
    expected = [p for batch in zip(*sent.values(), strict=True) for p in batch]
    assert [packet for _, packet in history] == expected


def test_after_and_limit_page_through(make_store: MakeStore, make_reader: MakeReader) -> None:
    fill(make_store())
    reader = make_reader()
    assert seqs_of(reader.history(limit=3)) == [1, 2, 3]
    assert seqs_of(reader.history(after=3, limit=3)) == [4, 5, 6]
    assert seqs_of(reader.history(after=38)) == [39, 40]
    assert reader.history(after=40) == []
    assert reader.history(limit=0) == []
    pages, after = [], 0
    while page := reader.history(after=after, limit=7):
        pages.append(page)
        after = page[-1][0]
    assert [len(page) for page in pages] == [7, 7, 7, 7, 7, 5]


def test_filtered_by_target_and_runname(make_store: MakeStore, make_reader: MakeReader) -> None:
    sent = fill(make_store())
    reader = make_reader()
    nightly = reader.history(target="ubuntu/x86_64", runname="nightly")
    assert [p for _, p in nightly] == sent["nightly"]
    assert seqs_of(nightly) == list(range(1, 41, 4))
    assert [p for _, p in reader.history(target="ubuntu/x86_64", runname="weekly")] == sent[
        "weekly"
    ]
    x86 = reader.history(target="ubuntu/x86_64")
    assert sorted(ids_of(x86)) == sorted(p.id for p in sent["nightly"] + sent["weekly"])
    assert seqs_of(x86) == sorted(seqs_of(x86))
    both = reader.history(runname="nightly", after=20, limit=4)
    nightly_x86, nightly_arm = sent["nightly"], sent["arm"]
    assert [p for _, p in both] == [nightly_x86[5], nightly_arm[5], nightly_x86[6], nightly_arm[6]]
    assert seqs_of(both) == [21, 23, 25, 27]
    assert reader.history(target="ubuntu/x86_64", runname="missing") == []
    with pytest.raises(StoreError, match="the area's fields are os/arch"):
        reader.history(target="ubuntu")


def test_acks_come_with_a_filtered_history_when_asked(
    make_store: MakeStore, make_reader: MakeReader
) -> None:
    """``send --wait`` of a run follows that run and the Acks (which belong to no run)."""
    sent = fill(make_store())
    reader = make_reader()
    nightly = reader.history(target="ubuntu/x86_64", runname="nightly", acks=True)
    expected = [p for pair in zip(sent["nightly"], sent["acks"], strict=True) for p in pair]
    assert [p for _, p in nightly] == expected
    assert seqs_of(reader.history(runname="weekly", acks=True, after=30, limit=3)) == [32, 34, 36]


def test_reader_follows_a_writer_from_another_thread(
    make_store: MakeStore, make_reader: MakeReader
) -> None:
    store = make_store()
    store.apply([Sender("home").ack()])
    reader = make_reader()
    senders = [Sender(f"node{n}", runname=f"run{n % 3}") for n in range(4)]
    batches, size = 60, 20
    total = 1 + batches * size
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for n in range(batches):
                store.apply([sender.step(f"t{n}") for sender in senders for _ in range(5)])
        except BaseException as exc:  # handed over to the test's thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    seen: list[int] = []
    deadline = time.monotonic() + 20
    while len(seen) < total and time.monotonic() < deadline and not errors:
        seen += seqs_of(reader.history(after=seen[-1] if seen else 0, limit=97))
    writer.join()
    assert errors == []
    assert seen == list(range(1, total + 1))  # in order, no gaps, no repeats
    assert reader.head() == store.head() == total


def test_reader_of_a_closed_store(make_store: MakeStore, make_reader: MakeReader) -> None:
    store = make_store()
    sent = fill(store)
    store.close()
    history = make_reader().history(target="ubuntu/arm64", runname="nightly")
    assert [packet for _, packet in history] == sent["arm"]


def test_reader_sees_a_store_made_later(make_store: MakeStore, make_reader: MakeReader) -> None:
    store = make_store()
    reader = make_reader()
    assert reader.history() == []
    assert reader.head() == 0
    store.apply([Sender().change("a")])
    assert seqs_of(reader.history()) == [1]
    reader.close()
    reader.close()
    with pytest.raises(StoreError, match="closed"):
        reader.history()
