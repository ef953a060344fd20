"""The agent's state files and the home's store on a real disk that fills up, then has room."""

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw
import pytest

from mtpkt import pkts
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host.report import Reporter
from mtpkt.agents.host.seen import SeenTasks
from mtpkt.bus import Spool
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import Store, StoreError
from mtpkt.store.connection import CHECKPOINT_EVERY, Database, connect, connect_readonly
from tests.support.disks import (
    break_readonly,
    ext4_image,
    fill,
    repair,
    require_mounts,
    tmpfs,
    unfill,
)

REF = TestRef("ubuntu/x86_64", "nightly", "build", "")
MOST = 5000
"""Puts tried at most before the disk must have refused one (bounded loops)."""


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs, unmounted at the end."""
    require_mounts()
    with tmpfs(tmp_path / "disk", "1m") as where:
        yield where


def read_seqs(spool: Spool) -> list[int]:
    packets = [pkts.unpack(data) for _, data in spool.pending(limit=MOST * 2, max_bytes=1 << 40)]
    return [packet.seq for packet in packets if isinstance(packet, pkts.status.Sequenced)]


def until_refused(write: Callable[[], object], error: type[Exception]) -> str:
    """Call ``write`` until it raises ``error`` (pages already there may take a few writes);
    the error's message."""
    for _ in range(MOST):
        try:
            write()
        except error as exc:
            return str(exc)
    raise AssertionError(f"the full disk took {MOST} writes")


def put_until_held(spool: Spool, reporter: Reporter) -> int:
    """Report steps until the spool holds one in memory; how many were reported."""
    for count in range(1, MOST + 1):
        reporter.step(REF, f"step{count}", pkts.StepState.START)
        if spool.held:
            return count
    raise AssertionError(f"the full disk took {MOST} puts")


def test_spool_holds_what_a_full_disk_refuses_and_writes_it_later(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(disk / "spool.db")
    try:
        reporter = Reporter("node7", spool.put, next_seq=spool.next_seq)
        fill(disk)
        put = put_until_held(spool, reporter)
        for index in range(3):  # more while held: behind the others, numbered all the same
            reporter.step(REF, f"late{index}", pkts.StepState.START)
        put += 3
        assert spool.next_seq == put + 1
        assert len(spool) == put
        assert read_seqs(spool) == list(range(1, put - spool.held + 1))  # only what is on disk
        assert not spool.flush()
        assert "cannot be written (database or disk is full)" in caplog.text
        unfill(disk)
        assert spool.flush()
        assert spool.held == 0
        assert "can be written again" in caplog.text
    finally:
        spool.close()
    again = Spool(disk / "spool.db")
    try:
        assert again.next_seq == put + 1
        assert read_seqs(again) == list(range(1, put + 1))
    finally:
        again.close()


def test_spool_closed_while_full_says_what_it_lost(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(disk / "spool.db")
    reporter = Reporter("node7", spool.put, next_seq=spool.next_seq)
    fill(disk)
    put = put_until_held(spool, reporter)
    held = spool.held
    with caplog.at_level(logging.ERROR):
        spool.close()
    assert f"{held} status packets (seq {put - held + 1} to {put}) could not be written" in (
        caplog.text
    )
    unfill(disk)
    again = Spool(disk / "spool.db")
    try:  # the next agent numbers on from what was written: the lost ones were never sent
        assert again.next_seq == put - held + 1
    finally:
        again.close()


def test_seen_keeps_the_ends_it_could_not_note(disk: Path) -> None:
    seen = SeenTasks(disk / "seen.db")
    try:
        first, second = pkts.new_id(), pkts.new_id()
        other = TestRef(REF.target, REF.runname, REF.test, "b")
        assert seen.add_many([(first, REF), (second, other)]) == {first, second}
        fill(disk)
        until_refused(lambda: seen.finish(first), apsw.Error)
        assert first in dict(seen.unfinished())
        unfill(disk)
        seen.finish(second)  # writes the first one's end too
        assert seen.unfinished() == []
    finally:
        seen.close()


def test_store_refuses_commits_on_a_full_disk_and_resumes(tmp_path: Path) -> None:
    """Commits fail whole, and resume once there is room."""
    require_mounts()
    with tmpfs(tmp_path / "disk", "8m") as disk:
        store_on(disk)


def store_on(disk: Path) -> None:
    store = Store(disk, ["os", "arch"], durable=True)
    try:
        made: list[StatusPacket] = []
        reporter = Reporter("node7", made.append)
        committed = 0
        for count in range(CHECKPOINT_EVERY - 1):  # the next commit would checkpoint
            made.clear()
            reporter.step(REF, f"step{count}", pkts.StepState.START)
            committed += len(store.apply(made))
        fill(disk)

        def write() -> None:
            nonlocal committed
            made.clear()  # (the reporter's sink)
            for count in range(40):
                reporter.step(REF, f"more{count}", pkts.StepState.START)
            committed += len(store.apply(made))

        assert "database or disk is full" in until_refused(write, StoreError)
        unfill(disk)
        again = store.apply(made)  # the refused batch, sent again
        assert len(again) == len(made)
        assert store.head() == committed + len(made)
    finally:
        store.close()


def test_a_checkpoint_without_room_loses_nothing(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The WAL keeps what a checkpoint could not copy into a database that cannot grow."""
    path = disk / "some.db"
    db = Database(path, connect(path, durable=True))
    try:
        with db.transaction() as conn:
            conn.execute("CREATE TABLE t (x BLOB)")
            conn.executemany("INSERT INTO t VALUES (?)", [(bytes(1000),)] * 200)
        fill(disk)
        db.checkpoint()  # logs, does not raise
        assert f"checkpoint of {path} failed: database or disk is full" in caplog.text
        unfill(disk)
        db.checkpoint()
    finally:
        db.close()
    check = connect_readonly(path)
    try:
        assert check.execute("SELECT count(*) FROM t").fetchall() == [(200,)]
    finally:
        check.close()


def test_a_spool_on_a_file_system_gone_read_only_holds_and_says_what_it_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same hold as for a full disk, for EROFS: no write fails up into the runner."""
    require_mounts(ext4=True)
    with ext4_image(tmp_path / "disk", tmp_path / "disk.img", "8m") as disk:
        spool = Spool(disk / "spool.db")
        reporter = Reporter("node7", spool.put, next_seq=spool.next_seq)
        for name in ("first", "second"):
            reporter.step(REF, name, pkts.StepState.START)
        break_readonly(disk)
        put = 2 + put_until_held(spool, reporter)
        held = spool.held
        assert held >= 1
        assert spool.next_seq == put + 1
        assert not spool.flush()
        assert "cannot be written" in caplog.text
        with caplog.at_level(logging.ERROR):
            spool.close()
        assert f"{held} status packets (seq {put - held + 1} to {put}) could not be written" in (
            caplog.text
        )
        repair(disk, tmp_path / "disk.img")
        again = Spool(disk / "spool.db")
        try:
            # The spool syncs as SQLite's WAL with synchronous=NORMAL does: a put survives
            # the agent's death, not the file system's. What the error kept of the puts
            # before it is a prefix, and numbering goes on from it.
            kept = read_seqs(again)
            assert kept == list(range(1, len(kept) + 1))
            assert len(kept) <= put - held
            assert again.next_seq == len(kept) + 1
        finally:
            again.close()
