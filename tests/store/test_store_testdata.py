"""TestData packets in the store (Megatest's ``test_data``), step comments, the test's main log,
packets of the first release, and the run database's upgrade to version 3."""

from pathlib import Path

import msgpack
import pytest

from mtpkt import pkts
from mtpkt.pkts.columns import read_status_frame
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import StoreError, StoreQuery, schema
from mtpkt.store.testdata import stored_number
from tests.support.dbs import rows
from tests.support.storekit import (
    END,
    TARGET,
    MakeReader,
    MakeStore,
    Sender,
    State,
    Status,
    old_run_db,
)

KEY = b"k" * 32


def data_rows(path: Path) -> list[tuple[object, ...]]:
    return rows(
        path,
        "SELECT t.testname, t.item_path, d.category, d.variable, d.value, d.expected, d.tol,"
        " d.units, d.comment, d.status, d.type FROM test_data AS d JOIN tests AS t"
        " ON t.id = d.test_id ORDER BY d.id",
    )


def counts(path: Path) -> dict[tuple[str, str], tuple[object, object]]:
    found = rows(path, "SELECT testname, item_path, pass_count, fail_count FROM tests")
    return {(str(t), str(i)): (p, f) for t, i, p, f in found}


def test_numbers_are_stored_as_numbers_text_as_text_and_empty_as_null() -> None:
    assert stored_number("1.5") == 1.5
    assert stored_number(" -2e3 ") == -2000.0
    assert stored_number("10") == 10.0
    assert stored_number("8mA") == "8mA"
    assert stored_number(">=") == ">="
    assert stored_number("") is None
    assert stored_number("  ") is None


def test_test_data_rows_are_written_as_megatest_writes_them(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = make_store()
    node = Sender()
    batch: list[StatusPacket] = [
        node.change("runfirst", state=State.RUNNING),
        # db.scm:3356-3365's examples, judged by the sender as pkts.testdata does
        node.data("runfirst", "bar", "1.2", category="foo", expected="1.9", tol=">",
                  status="fail"),
        node.data("runfirst", "bal", "1.2", category="foo", expected="1.2", tol="<",
                  comment="Check for overload", status="fail"),
        node.data("runfirst", "alb", "1.2", category="foo", expected="1.2", tol="<=",
                  units="Amps", status="pass"),
        node.data("runfirst", "bra", "1.2", category="foo", expected="pass", tol="silly stuff"),
        node.data("runfirst", "bar", "10", category="faz", expected="8mA",
                  comment="this is a comment", type="logpro"),
    ]  # fmt: skip
    assert [seq for seq, _ in store.apply(batch, received=50.0)] == [1, 2, 3, 4, 5, 6]
    path = dbdir / "1.db"
    assert data_rows(path) == [
        ("runfirst", "", "foo", "bar", 1.2, 1.9, ">", "", "", "fail", ""),
        ("runfirst", "", "foo", "bal", 1.2, 1.2, "<", "", "Check for overload", "fail", ""),
        ("runfirst", "", "foo", "alb", 1.2, 1.2, "<=", "Amps", "", "pass", ""),
        ("runfirst", "", "foo", "bra", 1.2, "pass", "silly stuff", "", "", "n/a", ""),
        ("runfirst", "", "faz", "bar", 10.0, "8mA", None, "", "this is a comment", "n/a", "logpro"),
    ]
    assert rows(path, "SELECT typeof(value), typeof(expected) FROM test_data LIMIT 1") == [
        ("real", "real")
    ]
    assert rows(path, "SELECT DISTINCT last_update FROM test_data") == [(50.0,)]
    assert counts(path) == {("runfirst", ""): (1, 2)}
    (test,) = store.tests(1)
    assert (test.state, test.pass_count, test.fail_count) == ("RUNNING", 1, 2)
    assert [(row.variable, row.value, row.status) for row in store.test_data(1)] == [
        ("bar", 10.0, "n/a"),
        ("alb", 1.2, "pass"),
        ("bal", 1.2, "fail"),
        ("bar", 1.2, "fail"),
        ("bra", 1.2, "n/a"),
    ]  # by category, then variable


def test_a_row_with_the_same_category_and_variable_replaces_the_first(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.data("t", "x", "1", status="fail"), node.data("t", "y", "2", status="PASS")])
    assert counts(dbdir / "1.db") == {("t", ""): (1, 1)}  # 'like' ignores case, as in Megatest
    store.apply([node.data("t", "x", "3", status="pass"), node.data("t", "x", "4", status="pass")])
    assert [(row[3], row[4]) for row in data_rows(dbdir / "1.db")] == [("y", 2.0), ("x", 4.0)]
    assert counts(dbdir / "1.db") == {("t", ""): (2, 0)}
    store.apply([node.data("t", "x", "5", category="other", status="fail")])
    assert counts(dbdir / "1.db") == {("t", ""): (2, 1)}


def test_data_of_a_test_without_a_row_makes_it_not_started_and_is_kept_on_its_changes(
    make_store: MakeStore,
) -> None:
    store = make_store()
    node = Sender()
    store.apply([node.data("late", "x", "1", status="pass")])
    (test,) = store.tests(1)
    assert (test.testname, test.state, test.status, test.pass_count) == (
        "late", "NOT_STARTED", "n/a", 1,
    )  # fmt: skip
    store.apply([node.change("late", state=State.COMPLETED, status=Status.PASS)])
    (test,) = store.tests(1)
    assert (test.state, test.status, test.pass_count) == ("COMPLETED", "PASS", 1)


def test_an_itemized_tests_toplevel_record_keeps_its_items_counts(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = make_store()
    node = Sender()
    store.apply(
        [
            node.change("unit", "1", state=State.COMPLETED, status=Status.PASS),
            node.change("unit", "2", state=State.COMPLETED, status=Status.FAIL),
            node.data("unit", "x", "1", item="1", status="fail"),
            node.data("unit", "y", "1", item="1", status="fail"),
        ]
    )
    assert counts(dbdir / "1.db") == {
        ("unit", "1"): (0, 2),
        ("unit", "2"): (0, 0),
        ("unit", ""): (1, 1),
    }


def test_test_data_is_committed_once_published_and_read_back(
    make_store: MakeStore, make_reader: MakeReader, dbdir: Path
) -> None:
    store = make_store()
    node = Sender()
    data = node.data("t", "x", "1.5", expected="1", tol="1", units="s", status="pass")
    step = node.step("t")
    assert store.apply([data, step, data]) == [(1, data), (2, step)]
    assert store.apply([data]) == []
    store.close()
    store = make_store()
    assert store.apply([data, step]) == []
    assert len(data_rows(dbdir / "1.db")) == 1
    assert [packet for _, packet in make_reader().history()] == [data, step]
    assert rows(dbdir / "1.db", "SELECT kind FROM history ORDER BY seq") == [
        ("test_data",),
        ("step",),
    ]


def test_clean_removes_a_tests_data_with_its_steps(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    node = Sender()
    store.apply(
        [
            node.step("a"),
            node.data("a", "x", "1", status="pass"),
            node.data("b", "x", "1", status="pass"),
        ]
    )
    assert store.remove_tests(TARGET, "nightly", [("a", "")]) == [("a", "")]
    assert [row[0] for row in data_rows(dbdir / "1.db")] == ["b"]
    assert rows(dbdir / "1.db", "SELECT count(*) FROM test_steps") == [(0,)]


def test_a_steps_comment_and_a_tests_log_are_recorded(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    node = Sender()
    store.apply(
        [
            node.change("t", state=State.RUNNING, logfile="t.log"),
            node.step("t", step="s1", state=END, status=Status.WARN, comment="2 warnings"),
            node.change("t", state=State.RUNNING, logfile="s1.html"),
            node.change("t", state=State.RUNNING, comment="no log named"),
            node.change("u", state=State.RUNNING, logfile="u.html"),
        ]
    )
    path = dbdir / "1.db"
    assert rows(path, "SELECT stepname, comment FROM test_steps") == [("s1", "2 warnings")]
    logs = "SELECT testname, final_logf FROM tests ORDER BY testname"
    assert rows(path, logs) == [("t", "s1.html"), ("u", "u.html")]  # the last named; "" leaves it
    store.apply([node.change("t", state=State.COMPLETED, status=Status.PASS)])
    assert rows(path, logs)[0] == ("t", "s1.html")
    assert [test.final_logf for test in store.tests(1)] == ["s1.html", "u.html"]


def test_v1_packets_of_an_old_agent_are_committed_with_the_new_fields_empty(
    make_store: MakeStore, make_reader: MakeReader, dbdir: Path
) -> None:
    node = Sender()
    step = node.step("t", step="s", state=END, status=Status.PASS, comment="dropped")
    change = node.change("t", state=State.RUNNING, logfile="dropped")
    packed = []
    for packet, added in ((step, 1), (change, 2)):
        row = msgpack.unpackb(pkts.pack(packet))
        row[1] = 1
        packed.append(msgpack.packb(row[:-added]))  # v1: without comment / logfile and job
    columns = read_status_frame(pkts.seal(packed, KEY), KEY)
    assert columns is not None
    store = make_store()
    assert store.apply_columns(columns) == [(1, 0), (2, 1)]
    path = dbdir / "1.db"
    assert rows(path, "SELECT stepname, comment FROM test_steps") == [("s", "")]
    assert rows(path, "SELECT state, final_logf FROM tests") == [("RUNNING", "")]
    assert rows(path, "SELECT packet FROM history ORDER BY seq") == [(p,) for p in packed]
    history = [packet for _, packet in make_reader().history()]
    assert [getattr(packet, "comment", None) for packet in history] == ["", ""]
    assert history[0].v == 2  # read as the current version


def test_a_version_2_run_database_is_upgraded_on_open(make_store: MakeStore, dbdir: Path) -> None:
    # The run database as the v2 migrations made it (a copy made by them, filled the same way).
    old_run_db(
        make_store,
        dbdir,
        2,
        "INSERT INTO tests(id, run_id, testname, state, status) VALUES"
        " (1, 1, 't', 'COMPLETED', 'PASS')",
    )
    assert "final_logf" not in [
        str(row[1]) for row in rows(dbdir / "1.db", "PRAGMA table_info(tests)")
    ]

    with StoreQuery(dbdir) as query, pytest.raises(StoreError, match="older than this mtpkt"):
        query.tests(1)  # before the home upgrades it: refused, one line
    store = make_store()  # the home opens every run database when it starts
    assert rows(dbdir / "1.db", "SELECT val FROM metadat WHERE var = 'schema_version'") == [
        (str(schema.RUN.version),)
    ]
    assert schema.RUN.version == 5
    store.apply([Sender(origin="node2").change("t", state=State.COMPLETED, status=Status.FAIL,
                                               logfile="t.log", job="slurm:12")])  # fmt: skip
    assert [(t.testname, t.status, t.final_logf, t.job) for t in store.tests(1)] == [
        ("t", "FAIL", "t.log", "slurm:12")
    ]
    store.apply([Sender(origin="node2").change("t", state=State.COMPLETED, status=Status.PASS)])
    with StoreQuery(dbdir) as query:  # an empty job leaves the recorded one
        assert [(t.final_logf, t.job) for t in query.tests(1)] == [("t.log", "slurm:12")]
