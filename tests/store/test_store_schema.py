"""Database files, Megatest's table names, schema versions and the upgrade path."""

from pathlib import Path

import apsw
import pytest

from mtpkt.store import Store, StoreError, schema
from tests.support.dbs import rows
from tests.support.storekit import FIELDS, TARGET, MakeReader, MakeStore, Sender, State, Status


def columns(path: Path, table: str) -> list[str]:
    return [str(row[1]) for row in rows(path, f"PRAGMA table_info({table})")]


def sql(path: Path, statements: str, bindings: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = apsw.Connection(str(path))
    try:
        return list(conn.execute(statements, bindings))
    finally:
        conn.close()


def test_new_store_has_megatests_tables_and_columns(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    run_id = store.run_id(TARGET, "nightly")
    assert run_id == 1
    store.close()

    assert sorted(p.name for p in dbdir.glob("*.db")) == ["1.db", "main.db"]
    main, run = dbdir / "main.db", dbdir / "1.db"
    assert columns(main, "runs") == [
        "id", "os", "arch", "runname", "state", "status", "owner", "event_time", "comment",
        "fail_count", "pass_count", "last_update", "locked", "run_status",
    ]  # fmt: skip
    assert columns(main, "keys") == ["id", "fieldname", "fieldtype"]
    assert sql(main, "SELECT fieldname FROM keys ORDER BY id") == [("os",), ("arch",)]
    assert columns(main, "agents") == [
        "name", "pid", "slots", "busy", "interval", "state", "first_seen", "last_beat",
        "last_ts", "skew",
    ]  # fmt: skip
    assert columns(main, "origins") == ["origin", "last_seq"]
    assert "packet" in columns(main, "journal")
    assert columns(run, "tests") == [
        "id", "run_id", "testname", "host", "rundir", "item_path", "state", "status",
        "attemptnum", "run_duration", "comment", "event_time", "fail_count", "pass_count",
        "archived", "last_update", "final_logf", "job",
    ]  # fmt: skip
    assert columns(run, "test_steps") == [
        "id", "test_id", "stepname", "state", "status", "event_time", "comment", "logfile",
    ]  # fmt: skip
    assert "variable" in columns(run, "test_data")
    for path in (main, run):
        assert columns(path, "history") == [
            "seq", "packet_id", "origin", "origin_seq", "kind", "testname", "item_path",
            "received", "packet",
        ]  # fmt: skip
        version = schema.MAIN.version if path == main else schema.RUN.version
        assert sql(path, "SELECT val FROM metadat WHERE var = 'schema_version'") == [
            (str(version),)
        ]
        assert sql(path, "PRAGMA journal_mode") == [("wal",)]


def test_runs_row_of_a_new_run(make_store: MakeStore) -> None:
    store = make_store()
    run_id = store.run_id(TARGET, "nightly")
    (run,) = store.runs()
    assert (run.id, run.target, run.runname) == (run_id, TARGET, "nightly")
    assert (run.state, run.status, run.pass_count, run.fail_count) == ("NOT_STARTED", "n/a", 0, 0)
    assert store.tests(run.id) == []


def test_run_ids_are_unique_per_target_and_runname(make_store: MakeStore) -> None:
    store = make_store()
    first = store.run_id(TARGET, "nightly")
    assert store.run_id(TARGET, "nightly") == first
    assert store.run_id("ubuntu/arm64", "nightly") != first
    assert store.run_id(TARGET, "weekly") != first
    assert store.run_id(TARGET, "other", create=False) is None
    assert len(store.runs()) == 3
    store.close()
    assert make_store().run_id(TARGET, "nightly", create=False) == first


@pytest.mark.parametrize("target", ["ubuntu", "ubuntu/x86_64/extra", ""])
def test_target_must_have_one_part_per_field(make_store: MakeStore, target: str) -> None:
    store = make_store()
    with pytest.raises(StoreError, match="the area's fields are os/arch"):
        store.run_id(target, "nightly")
    with pytest.raises(StoreError, match="part"):
        store.apply([Sender(target=target).change("a")])
    assert store.runs() == []
    assert store.head() == 0


def test_main_db_made_with_other_fields_is_refused(make_store: MakeStore) -> None:
    make_store().close()
    with pytest.raises(StoreError, match="made with fields os/arch, the area has fields os/cpu"):
        make_store(("os", "cpu"))
    make_store().close()  # nothing was changed by the refusal


@pytest.mark.parametrize(
    "fields", [(), ("os", "os"), ("os", "runname"), ("os", "a b"), ("os", 'x"y'), ("ID",)]
)
def test_fields_that_cannot_name_columns_are_refused(
    make_store: MakeStore, fields: tuple[str, ...]
) -> None:
    with pytest.raises(StoreError):
        make_store(fields)


def test_one_writer_per_directory(make_store: MakeStore) -> None:
    store = make_store()
    with pytest.raises(StoreError, match="another store writer"):
        make_store()
    store.close()
    make_store()


def test_unwritable_directory_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create"):
        Store(tmp_path / "file" / "db", FIELDS)


@pytest.mark.parametrize("name", ["main.db", "1.db"])
def test_newer_schema_is_refused_without_writing(
    make_store: MakeStore, dbdir: Path, name: str
) -> None:
    store = make_store()
    store.run_id(TARGET, "nightly")
    store.close()
    path = dbdir / name
    newer = (schema.MAIN if name == "main.db" else schema.RUN).version + 1
    sql(path, f"UPDATE metadat SET val = '{newer}' WHERE var = 'schema_version'")
    before = path.read_bytes()
    with pytest.raises(
        StoreError, match=rf"{name} has schema version {newer}, newer than this mtpkt"
    ):
        make_store()
    assert path.read_bytes() == before


def test_reader_refuses_newer_main_db(
    make_store: MakeStore, make_reader: MakeReader, dbdir: Path
) -> None:
    make_store().close()
    sql(dbdir / "main.db", "UPDATE metadat SET val = '7' WHERE var = 'schema_version'")
    with pytest.raises(StoreError, match="newer"):
        make_reader()


def test_reader_needs_a_store(make_reader: MakeReader) -> None:
    with pytest.raises(StoreError, match=r"main\.db is missing"):
        make_reader()


# A main.db as an early build (or Megatest) left it: keys and runs, no schema
# version, no journal, agents, origins or history, and runs without owner and
# last_update.
VERSION_0_MAIN = """
CREATE TABLE keys (id INTEGER PRIMARY KEY, fieldname TEXT, fieldtype TEXT,
                   CONSTRAINT keyconstraint UNIQUE (fieldname));
INSERT INTO keys(fieldname, fieldtype) VALUES ('os', 'TEXT'), ('arch', 'TEXT');
CREATE TABLE runs (id INTEGER PRIMARY KEY, os TEXT, arch TEXT, runname TEXT,
                   state TEXT DEFAULT '', status TEXT DEFAULT '', event_time TIMESTAMP,
                   comment TEXT DEFAULT '', fail_count INTEGER DEFAULT 0,
                   pass_count INTEGER DEFAULT 0,
                   CONSTRAINT runsconstraint UNIQUE (runname, os, arch));
INSERT INTO runs(id, os, arch, runname, state, status, event_time)
    VALUES (7, 'ubuntu', 'x86_64', 'old', 'COMPLETED', 'PASS', 1700000000);
CREATE TABLE metadat (id INTEGER, var TEXT, val TEXT, CONSTRAINT metadat_constraint UNIQUE (var));
INSERT INTO metadat(var, val) VALUES ('MEGATEST_VERSION', '1.80');
"""

# A run database without test_data, history or the attemptnum and archived columns.
VERSION_0_RUN = """
CREATE TABLE tests (id INTEGER PRIMARY KEY, run_id INTEGER, testname TEXT, host TEXT,
                    rundir TEXT, item_path TEXT DEFAULT '', state TEXT, status TEXT,
                    run_duration INTEGER, comment TEXT, event_time TIMESTAMP,
                    fail_count INTEGER, pass_count INTEGER, last_update INTEGER,
                    CONSTRAINT testsconstraint UNIQUE (run_id, testname, item_path));
INSERT INTO tests(run_id, testname, item_path, state, status)
    VALUES (7, 'setup', '', 'COMPLETED', 'PASS');
CREATE TABLE test_steps (id INTEGER PRIMARY KEY, test_id INTEGER, stepname TEXT, state TEXT,
                         status TEXT, event_time TIMESTAMP, comment TEXT, logfile TEXT);
"""


def test_version_0_databases_are_upgraded_and_work(
    make_store: MakeStore, make_reader: MakeReader, dbdir: Path
) -> None:
    dbdir.mkdir()
    sql(dbdir / "main.db", VERSION_0_MAIN)
    sql(dbdir / "7.db", VERSION_0_RUN)

    store = make_store()
    assert "last_update" in columns(dbdir / "main.db", "runs")
    assert "owner" in columns(dbdir / "main.db", "runs")
    assert "archived" in columns(dbdir / "7.db", "tests")
    assert "sha256" in columns(dbdir / "7.db", "archives")
    for name, version in (("main.db", schema.MAIN.version), ("7.db", schema.RUN.version)):
        assert sql(dbdir / name, "SELECT val FROM metadat WHERE var = 'schema_version'") == [
            (str(version),)
        ]
    assert sql(dbdir / "main.db", "SELECT val FROM metadat WHERE var = 'MEGATEST_VERSION'") == [
        ("1.80",)
    ]
    (old,) = store.runs()
    assert (old.id, old.target, old.runname, old.state, old.owner) == (
        7, TARGET, "old", "COMPLETED", "",
    )  # fmt: skip

    sender = Sender(runname="old")
    committed = store.apply(
        [sender.change("setup", state=State.COMPLETED, status=Status.FAIL), sender.ack()]
    )
    assert [seq for seq, _ in committed] == [1, 2]
    assert store.run_id(TARGET, "old") == 7
    assert [(t.testname, t.status) for t in store.tests(7)] == [("setup", "FAIL")]
    assert store.runs()[0].status == "FAIL"
    assert [seq for seq, _ in make_reader().history()] == [1, 2]


def test_upgrade_refuses_a_version_0_main_db_of_other_fields(
    make_store: MakeStore, dbdir: Path
) -> None:
    dbdir.mkdir()
    sql(dbdir / "main.db", VERSION_0_MAIN)
    with pytest.raises(StoreError, match="made with fields os/arch, the area has fields os"):
        make_store(("os",))
    assert "agents" not in {
        row[0] for row in sql(dbdir / "main.db", "SELECT name FROM sqlite_schema")
    }  # the upgrade rolled back as a whole


@pytest.mark.parametrize(("durable", "synchronous"), [(True, 2), (False, 1)])
def test_synchronous_follows_durable(
    make_store: MakeStore, durable: bool, synchronous: int
) -> None:
    seen: list[apsw.Connection] = []
    apsw.connection_hooks.append(seen.append)
    try:
        store = make_store(durable=durable)
        store.run_id(TARGET, "nightly")
    finally:
        apsw.connection_hooks.remove(seen.append)
    names = sorted(Path(conn.filename).name for conn in seen)
    assert names == ["1.db", "main.db"]
    assert {conn.pragma("synchronous") for conn in seen} == {synchronous}  # 2 FULL, 1 NORMAL
