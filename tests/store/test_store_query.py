"""Read-only queries (``store.query``): runs and their counts, tests, agents and their work."""

from pathlib import Path

import apsw
import attrs
import pytest

from mtpkt.store import StoreError, schema
from mtpkt.store.query import StoreQuery, liveness, standing
from mtpkt.tools.errors import CliError
from mtpkt.tools.local_area import find_run
from tests.support.storekit import END, START, TARGET, MakeStore, Phase, Sender, State, Status, beat


def test_runs_count_instances_and_tell_settled(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    sender = Sender()
    store.apply(
        [
            sender.change("unit", "1", state=State.COMPLETED, status=Status.PASS),
            sender.change("unit", "2", state=State.RUNNING),
            sender.change("lint", state=State.KILLED, status=Status.KILLED),
            sender.change("docs", state=State.NOT_STARTED),
        ]
    )
    store.run_id(TARGET, "empty")
    with StoreQuery(dbdir) as query:
        nightly, empty = query.runs()
        info = query.run_info(nightly)
        # unit's toplevel record rolls up its items and is not counted
        assert info.counts == {"KILLED": 1, "PASS": 1, "not_started": 1, "running": 1}
        assert (info.total, info.settled) == (4, False)
        assert (query.run_info(empty).total, query.run_info(empty).settled) == (0, True)
        assert query.runs(target=TARGET, runname="empty") == [empty]
        with pytest.raises(StoreError, match="the area's fields are os/arch"):
            query.runs(target="ubuntu")

        tests = query.tests(nightly.id)
        assert [(t.testname, t.item_path) for t in tests] == [
            ("docs", ""), ("lint", ""), ("unit", ""), ("unit", "1"), ("unit", "2"),
        ]  # fmt: skip
        chosen = query.tests(nightly.id, states=["RUNNING", "KILLED"], statuses=["n/a", "KILLED"])
        assert [(t.testname, t.item_path) for t in chosen] == [("lint", ""), ("unit", "2")]
        assert query.tests(empty.id) == []


def test_run_names_and_target_parts_with_percent_are_patterns(
    make_store: MakeStore, dbdir: Path
) -> None:
    """Megatest reads a run name as a LIKE pattern (db.scm:2244, :3476), target parts too
    (db.scm:2002); a name without ``%`` is matched exactly."""
    store = make_store()
    ids = {
        (target, name): store.run_id(target, name)
        for target, name in [
            (TARGET, "r1"),
            (TARGET, "r2"),
            (TARGET, "nightly"),
            ("ubuntu/arm64", "r1"),
            ("debian/x86_64", "r1_b"),
        ]
    }
    with StoreQuery(dbdir) as query:

        def found(target: str = "", runname: str = "") -> set[tuple[str, str]]:
            runs = query.runs(target=target, runname=runname)
            assert [run.id for run in runs] == sorted(run.id for run in runs)
            return {(run.target, run.runname) for run in runs}

        assert found(runname="r%") == {k for k in ids if k[1].startswith("r")}
        assert found(TARGET, "r%") == {(TARGET, "r1"), (TARGET, "r2")}
        assert found("ubuntu/%", "r1") == {(TARGET, "r1"), ("ubuntu/arm64", "r1")}
        assert found("%/x86_64", "%") == {k for k in ids if k[0].endswith("x86_64")}
        assert found(runname="r1") == {(TARGET, "r1"), ("ubuntu/arm64", "r1")}  # exactly
        assert found(runname="r_") == set()  # no %: exact, so _ is itself
        assert found(runname="r_%") == {k for k in ids if k[1].startswith("r")}
        assert found(runname="x%") == set()
        # a command about one run refuses a pattern that names several, listing them
        with pytest.raises(CliError, match=r"^ubuntu/x86_64/r% matches 2 runs: .*r1, .*r2; name"):
            find_run(query, TARGET, "r%")
        assert find_run(query, TARGET, "n%").runname == "nightly"


def test_standing_words() -> None:
    assert standing("COMPLETED", "FAIL") == "FAIL"
    assert standing("REMOTEHOSTSTART", "n/a") == "running"
    assert standing("NOT_STARTED", "n/a") == "not_started"
    assert standing("NOT_STARTED", "PREQ_FAIL") == "PREQ_FAIL"  # it will never run
    assert standing("NOT_STARTED", "KEEP_TRYING") == "not_started"
    assert standing("STUCK", "n/a") == "STUCK"
    assert standing("KILLED", "KILLED") == "KILLED"
    assert standing("SOMETHING_ELSE", "PASS") == "SOMETHING_ELSE"


def test_a_state_another_tool_wrote_counts_as_ended(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    store.apply([Sender().change("unit", state=State.COMPLETED, status=Status.PASS)])
    store.close()
    (run_db,) = (path for path in dbdir.glob("*.db") if path.name != "main.db")
    conn = apsw.Connection(str(run_db))
    conn.execute("UPDATE tests SET state = 'SOMETHING_ELSE'")  # INCOMPLETE to mtpkt: final
    conn.close()
    with StoreQuery(dbdir) as query:
        info = query.run_info(query.runs()[0])
    assert (dict(info.counts), info.settled) == ({"SOMETHING_ELSE": 1}, True)


def test_agents_with_the_homes_books_and_grace(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    store.heartbeat(beat("n1", interval=10.0, slots=4, busy=3), received=100.0)
    store.heartbeat(beat("n2", interval=10.0), received=100.0)
    with StoreQuery(dbdir) as query:
        assert query.agent_grace() == 60.0  # no home recorded one
        assert [(a.running, a.pending, a.recorded) for a in query.agents()] == [(None,) * 3] * 2
    store.record_work({"n1": (3, 1)}, now=101.0)
    store.record_work({"n1": (2, 0)}, now=102.0)
    store.set_agent_grace(300.0)
    with StoreQuery(dbdir) as query:
        assert query.agent_grace() == 300.0
        n1, n2 = query.agents()
    assert (n1.agent.name, n1.agent.busy, n1.running, n1.pending, n1.recorded) == (
        "n1", 3, 2, 0, 102.0,
    )  # fmt: skip
    assert (n2.running, n2.pending) == (None, None)

    assert liveness(n1.agent, 120.0, 300.0) == "alive"  # twice the interval
    assert liveness(n1.agent, 120.5, 300.0) == "lost"
    assert liveness(n1.agent, 419.5, 300.0) == "lost"
    assert liveness(n1.agent, 420.0, 300.0) == "dead"  # when the home marks its tests DEAD
    store.heartbeat(beat("n1", Phase.OFFLINE, interval=10.0), received=130.0)
    with StoreQuery(dbdir) as query:
        assert liveness(query.agents()[0].agent, 1000.0, 300.0) == "offline"


def test_a_version_2_main_db_gains_agent_work(make_store: MakeStore, dbdir: Path) -> None:
    store = make_store()
    store.heartbeat(beat("n1"), received=100.0)
    store.close()
    conn = apsw.Connection(str(dbdir / "main.db"))
    conn.execute("DROP TABLE agent_work; UPDATE metadat SET val = '2' WHERE var = 'schema_version'")
    conn.close()
    with StoreQuery(dbdir) as query:  # read as it is: the books are not known
        assert query.version == 2
        assert [(a.agent.name, a.running) for a in query.agents()] == [("n1", None)]

    store = make_store()  # the writer upgrades it
    store.record_work({"n1": (1, 1)}, now=101.0)
    with StoreQuery(dbdir) as query:
        assert query.version == schema.MAIN.version == 4
        assert [(a.running, a.pending) for a in query.agents()] == [(1, 1)]


def test_no_store_is_an_error(dbdir: Path) -> None:
    with pytest.raises(StoreError, match=r"main\.db is missing"):
        StoreQuery(dbdir)


def test_results_hold_the_records_and_each_instances_last_attempt(
    make_store: MakeStore, dbdir: Path
) -> None:
    store = make_store()
    sender = Sender()
    store.apply(
        [
            sender.change("unit", "1", state=State.LAUNCHED),
            sender.step("unit", "1", step="old", logfile="old.log"),
            sender.step("unit", "1", step="old", state=END, status=Status.FAIL, exit_code=1),
            sender.change("unit", "1", state=State.LAUNCHED),  # a rerun: a new attempt
            sender.step("unit", "1", step="build", logfile="build.log"),
            sender.step("unit", "1", step="build", state=END, status=Status.PASS, exit_code=0),
            sender.step("unit", "1", step="check", logfile="check.log"),
            sender.change("lint", state=State.COMPLETED, status=Status.PASS),
        ]
    )
    with StoreQuery(dbdir) as query:
        (nightly,) = query.runs()
        results = query.results(nightly)
        assert [(t.testname, t.item_path) for t in results.tests] == [
            ("lint", ""), ("unit", ""), ("unit", "1"),
        ]  # fmt: skip
        build, check = results.steps[("unit", "1")]
        # the END carries its START's log file; a step still running is its START
        assert (build.step, build.state, build.status, build.logfile) == (
            "build", END, Status.PASS, "build.log",
        )  # fmt: skip
        assert (check.step, check.state, check.logfile) == ("check", START, "check.log")
        assert ("lint", "") not in results.steps
        with pytest.raises(StoreError, match="run ubuntu/x86_64 gone has no database"):
            query.results(attrs.evolve(nightly, id=nightly.id + 1, runname="gone"))
