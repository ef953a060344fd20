"""A full disk, a crash between commits: nothing acknowledged is lost, nothing lands twice.

The tests run as root, where a read-only file or directory does not stop
writes, so a full disk is simulated below SQLite, two ways:

* while a batch is written: SQLite's ``max_page_count`` set on the store's
  own connections through an apsw connection hook, so a database cannot grow
  past the size it had when opened, until the test lifts the limit;
* while it is committed: an apsw VFS (the OS layer SQLite writes through)
  whose writes to chosen files fail with ``SQLITE_FULL``, as a full disk does.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from mtpkt.pkts.status import StatusPacket, Step
from mtpkt.store import StoreError
from tests.support.storekit import (
    TARGET,
    MakeReader,
    MakeStore,
    Sender,
    State,
    Status,
    ids_of,
    seqs_of,
)


class DiskFull:
    """Caps the databases named ``name`` at their size when opened, until :meth:`lift`."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.connections: list[apsw.Connection] = []

    def __call__(self, conn: apsw.Connection) -> None:
        if Path(conn.filename).name in self.names:
            conn.pragma("max_page_count", 1)  # SQLite raises it to the current size
            self.connections.append(conn)

    def lift(self) -> None:
        for conn in self.connections:
            conn.pragma("max_page_count", 2**31)
        self.names.clear()


@pytest.fixture
def disk_full() -> Iterator[DiskFull]:
    hook = DiskFull()
    apsw.connection_hooks.append(hook)
    yield hook
    apsw.connection_hooks.remove(hook)


def bulky(node: Sender, count: int) -> list[Step]:
    """Steps big enough to need new pages: the database must grow to take them."""
    return [node.step("t", f"i{n % 7}", logfile="log/" + "x" * 400) for n in range(count)]


@pytest.mark.parametrize("full", ["1.db", "main.db"])
def test_full_disk_commits_nothing_then_a_retry_commits_each_packet_once(
    make_store: MakeStore, make_reader: MakeReader, disk_full: DiskFull, full: str
) -> None:
    node, home = Sender(), Sender(origin="home")
    store = make_store()
    store.apply([node.change("t", "i0")])
    store.close()

    disk_full.names.add(full)
    store = make_store()
    reader = make_reader()
    batch: list[StatusPacket] = [
        *bulky(node, 100),
        node.change("t", "i1", State.COMPLETED, Status.PASS),
    ]
    batch += [home.ack() for _ in range(100)]
    with pytest.raises(StoreError, match=f"cannot write .*{full}: database or disk is full"):
        store.apply(batch)
    assert store.head() == reader.head() == 1
    assert seqs_of(reader.history()) == [1]
    run_id = store.run_id(TARGET, "nightly")
    assert run_id is not None
    assert store.steps(run_id) == []
    assert {(t.item_path, t.state) for t in store.tests(run_id)} == {
        ("i0", "RUNNING"),
        ("", "RUNNING"),
    }

    disk_full.lift()
    committed = store.apply(batch + batch[:3])
    assert seqs_of(committed) == list(range(2, 2 + len(batch)))
    assert ids_of(committed) == [packet.id for packet in batch]
    assert store.apply(batch) == []
    assert len(store.steps(run_id)) == 100
    assert ids_of(reader.history(after=1, limit=10_000)) == [packet.id for packet in batch]
    store.close()
    assert make_store().apply(batch) == []


class FullFiles(apsw.VFS):
    """The default VFS, except that writes to files named in :attr:`full` fail: disk full."""

    def __init__(self) -> None:
        self.full: set[str] = set()
        self.base = apsw.vfs_names()[0]  # the default VFS before this one, e.g. "unix"
        super().__init__("full-files", base=self.base, makedefault=True)

    def xOpen(self, name: str | apsw.URIFilename | None, flags: list[int]) -> apsw.VFSFile:
        return _File(self, name, flags)


class _File(apsw.VFSFile):
    def __init__(self, vfs: FullFiles, name: str | apsw.URIFilename | None, flags: list[int]):
        path = name.filename() if isinstance(name, apsw.URIFilename) else name
        self._vfs, self._name = vfs, Path(path or "").name
        super().__init__(vfs.base, name, flags)

    def xWrite(self, data: bytes, offset: int) -> None:
        if self._name in self._vfs.full:
            raise apsw.FullError("disk full (simulated)")
        super().xWrite(data, offset)


@pytest.fixture
def full_files() -> Iterator[FullFiles]:
    vfs = FullFiles()
    yield vfs
    vfs.unregister()


def test_main_db_commit_fails_after_the_run_db_committed(
    make_store: MakeStore, make_reader: MakeReader, full_files: FullFiles
) -> None:
    node, home = Sender(), Sender(origin="home")
    store = make_store()
    reader = make_reader()
    first: list[StatusPacket] = [node.change("t", "1"), home.ack()]
    store.apply(first)

    full_files.full.add("main.db-wal")
    second: list[StatusPacket] = [
        node.change("t", "1", State.COMPLETED, Status.PASS),
        home.ack(),
        node.step("u"),
    ]
    with pytest.raises(StoreError, match=r"cannot commit to .*main\.db: .*full"):
        store.apply(second)
    # 1.db did commit: its packets are held and the stream's head moved past them;
    # readers go by main.db's head, which did not move.
    assert store.head() == 5
    assert reader.head() == 2

    full_files.full.clear()
    third: list[StatusPacket] = [node.change("t", "2", State.COMPLETED, Status.FAIL)]
    committed = store.apply(second + third)
    assert committed == [(6, second[1]), (7, third[0])]  # 4 went with the failed commit
    assert reader.head() == 7
    history = reader.history()
    assert seqs_of(history) == [1, 2, 3, 5, 6, 7]
    assert sorted(ids_of(history)) == sorted(p.id for p in first + second + third)
    (run,) = store.runs()  # repaired: t's items PASS and FAIL, u not started
    assert (run.state, run.status, run.pass_count, run.fail_count) == ("RUNNING", "FAIL", 0, 1)


def test_a_later_run_db_commit_fails(
    make_store: MakeStore, make_reader: MakeReader, full_files: FullFiles
) -> None:
    a, b = Sender(runname="a"), Sender(origin="node2", runname="b")
    store = make_store()
    first = [a.change("t"), b.change("t")]
    store.apply(first)  # runs 1 and 2
    full_files.full.add("2.db-wal")
    batch: list[StatusPacket] = [
        a.change("t", state=State.COMPLETED, status=Status.PASS),
        b.change("t"),
        a.step("t"),
    ]
    with pytest.raises(StoreError, match=r"cannot commit to .*2\.db: .*full"):
        store.apply(batch)
    full_files.full.clear()
    assert ids_of(store.apply(batch)) == [batch[1].id]  # 1.db had committed the others
    assert sorted(ids_of(make_reader().history())) == sorted(p.id for p in first + batch)
    runs = {run.runname: run for run in store.runs()}
    assert (runs["a"].state, runs["a"].status, runs["a"].pass_count) == ("COMPLETED", "PASS", 1)
    assert (runs["b"].state, runs["b"].status) == ("RUNNING", "n/a")


def copy_db(source: Path, destination: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{destination}{suffix}")
        else:
            Path(f"{destination}{suffix}").unlink(missing_ok=True)


def test_crash_between_run_and_main_commits_is_repaired_on_open(
    make_store: MakeStore, make_reader: MakeReader, dbdir: Path, tmp_path: Path
) -> None:
    node, home = Sender(), Sender(origin="home")
    store = make_store()
    first: list[StatusPacket] = [node.change("t", "1"), home.ack()]
    store.apply(first)
    store.close()
    copy_db(dbdir / "main.db", tmp_path / "main-before.db")

    store = make_store()
    second: list[StatusPacket] = [
        node.change("t", "1", State.COMPLETED, Status.FAIL),
        node.change("u", "", State.COMPLETED, Status.PASS),
        home.ack(),
    ]
    assert seqs_of(store.apply(second)) == [3, 4, 5]
    store.close()
    # As if the process died after committing 1.db and before committing main.db:
    copy_db(tmp_path / "main-before.db", dbdir / "main.db")

    store = make_store()
    assert store.head() == 4  # 1.db holds 3 and 4; the Ack (5) was never committed
    assert make_reader().head() == 4
    (run,) = store.runs()
    assert (run.state, run.status, run.pass_count, run.fail_count) == ("COMPLETED", "FAIL", 1, 1)
    third: list[StatusPacket] = [node.change("u", "", State.RUNNING)]
    # The Ack is applied now, the run's packets are not applied again.
    assert store.apply(second + third) == [(5, second[2]), (6, third[0])]
    assert ids_of(make_reader().history()) == [p.id for p in first + second + third]
