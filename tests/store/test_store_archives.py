"""Archive records: the state before, the file-only changes that keep a record's times, the
listing and forgetting, and a version 4 run database upgraded to hold the state before."""

from pathlib import Path

import attrs

from mtpkt.store import ArchiveRow, Store, StoreQuery, schema
from tests.support.dbs import rows
from tests.support.storekit import TARGET, MakeStore, Sender, State, Status, old_run_db

KEY = ("t", "")
COMMENT = "step 'check' exited with 4"


def _ended(make_store: MakeStore) -> Store:
    """A store holding test ``t``: run on node1 from ts 100 to 130, ended KILLED/FAIL."""
    store = make_store()
    node = Sender()
    store.apply([node.change("t", state=State.RUNNING, host="node1", ts=100.0)])
    store.apply(
        [
            node.change(
                "t", state=State.KILLED, status=Status.FAIL, host="node1", comment=COMMENT, ts=130.0
            )
        ]
    )
    return store


def _archive(state_before: str = "KILLED") -> ArchiveRow:
    return ArchiveRow(
        path="/a/t.tar.gz", sha256="0" * 64, size=2048, files=3, state_before=state_before
    )


def _record(dbdir: Path) -> tuple[object, ...]:
    sql = "SELECT state, status, host, comment, event_time, run_duration, archived FROM tests"
    return rows(dbdir / "1.db", sql)[0]


def test_archived_and_back_keeps_everything_but_the_state(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = _ended(make_store)
    before = _record(dbdir)
    assert before == ("KILLED", "FAIL", "node1", COMMENT, 130.0, 30.0, 0)
    assert store.record_archive(TARGET, "nightly", KEY, _archive())
    home = Sender(origin="home")

    def moved(state: State, ts: float) -> None:  # as the home's chores say it: only the state
        change = home.change("t", state=state, status=Status.FAIL, comment=COMMENT, ts=ts)
        store.apply([attrs.evolve(change, host="node1")])

    moved(State.ARCHIVED, 500.0)
    assert _record(dbdir) == ("ARCHIVED", *before[1:-1], 1)
    found = store.archive(TARGET, "nightly", KEY)
    assert found is not None
    assert (found.state_before, found.size, found.files) == ("KILLED", 2048, 3)
    moved(State.KILLED, 600.0)
    assert _record(dbdir) == (*before[:-1], 1)
    # Any other change is an event of the test: its time is the packet's.
    store.apply([home.change("t", state=State.NOT_STARTED, ts=700.0)])
    assert _record(dbdir)[4] == 700.0


def test_archives_are_listed_and_forgotten(make_store: MakeStore, dbdir: Path) -> None:
    store = _ended(make_store)
    store.apply([Sender(origin="node2").change("u", "a/1", state=State.COMPLETED)])
    assert store.record_archive(TARGET, "nightly", KEY, _archive())
    with StoreQuery(dbdir) as query:
        listed = query.archives(1)
    assert [(r.testname, r.item_path, r.state, r.path, r.size, r.files) for r in listed] == [
        ("t", "", "KILLED", "/a/t.tar.gz", 2048, 3)
    ]
    assert listed[0].archived_at is not None
    assert store.forget_archives(TARGET, "nightly", [KEY, ("u", "a/1"), ("nosuch", "")]) == [KEY]
    assert store.archive(TARGET, "nightly", KEY) is None
    assert _record(dbdir)[-1] == 0
    with StoreQuery(dbdir) as query:
        assert query.archives(1) == []
    assert store.forget_archives(TARGET, "nosuch", [KEY]) == []


def test_a_version_4_run_database_gains_the_state_before(
    make_store: MakeStore, dbdir: Path
) -> None:
    old_run_db(
        make_store,
        dbdir,
        4,
        "INSERT INTO tests(id, run_id, testname, state, status) VALUES"
        " (1, 1, 't', 'ARCHIVED', 'PASS')",
        "INSERT INTO archives(test_id, path, sha256, size, files, archived_at)"
        " VALUES (1, '/a/t.tar.gz', 'ab', 10, 1, 5.0)",
    )
    store = make_store()  # the home upgrades every run database when it starts
    found = store.archive(TARGET, "nightly", KEY)
    assert found is not None
    assert (found.path, found.state_before) == ("/a/t.tar.gz", "")  # restores as COMPLETED
    version = rows(dbdir / "1.db", "SELECT val FROM metadat WHERE var = 'schema_version'")
    assert version == [(str(schema.RUN.version),)]
