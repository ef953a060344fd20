"""``mtpkt runs``, ``tests`` and ``agents`` on a real area: what they print is what the
databases hold, with the home running and after it stopped."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.tools.tables import cell, outcomes
from tests.support.cli import run_mtpkt
from tests.support.farm import TARGET, Farm, make_area, running_farm
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(150)

# What the runs and tests show with colours off and the width of a pipe.
QUIET_ENV = ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR")


def mtpkt(farm: Farm, *args: str) -> tuple[int, str, str]:
    env = {name: value for name, value in farm.env.items() if name not in QUIET_ENV}
    result = run_mtpkt(*args, cwd=farm.area, env=env)
    return result.returncode, result.stdout, result.stderr


def query_json(farm: Farm, *args: str) -> list[dict[str, object]]:
    code, out, err = mtpkt(farm, *args, "--json")
    assert code == 0, err
    records = json.loads(out)
    assert isinstance(records, list)
    return records


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One run of the farm's area (sleeper left out) by two agents, settled; the home and
    the agents still running."""
    with running_farm(tmp_path_factory.mktemp("queries")) as farm:
        farm.start_home()
        farm.start_agent("a1")
        farm.start_agent("a2")
        sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "%,~sleeper", "--wait")
        assert sent.returncode == 3, sent.stderr  # `broken` fails
        yield farm


def test_runs_json_and_table(ran: Farm) -> None:
    (run,) = query_json(ran, "runs")
    ((run_id, state, status, created, last_update),) = ran.main_query(
        "SELECT id, state, status, event_time, last_update FROM runs"
    )
    assert run == {
        "id": run_id,
        "target": TARGET,
        "runname": "r1",
        "state": state,
        "status": status,
        "owner": "",
        "comment": "",
        "created": created,
        "last_update": last_update,
        "tests": 7,  # unit's three items, not its toplevel record
        "counts": {"PASS": 5, "FAIL": 1, "PREQ_FAIL": 1},
        "settled": True,
    }
    assert (state, status) == ("COMPLETED", "PREQ_FAIL")  # the run's roll-up
    assert query_json(ran, "runs", "-t", TARGET, "-r", "r1") == [run]
    assert query_json(ran, "runs", "-r", "other") == []

    code, out, err = mtpkt(ran, "runs")
    assert code == 0, err
    assert "\x1b[" not in out  # not a terminal: no colours
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "linux/x86" in out
    assert "PREQ_FAIL" in out
    assert "5 PASS" in out


def test_a_cell_is_one_line_and_words_take_the_colours_the_live_view_uses() -> None:
    assert cell("a\x1b[31m\n b").plain == "a\\x1b[31m b"  # no escape reaches the terminal
    text = outcomes({"PASS": 2, "CHECK": 1, "KILLED": 1, "running": 1})
    styles = {text.plain[span.start : span.end]: span.style for span in text.spans}
    assert styles == {
        "PASS": "green", "CHECK": "bold red", "KILLED": "bold red", "running": "yellow",
    }  # fmt: skip


def test_tests_json_table_and_selection(ran: Farm) -> None:
    records = query_json(ran, "tests", "-t", TARGET, "-r", "r1")
    rows = ran.query(
        "r1",
        "SELECT testname, item_path, state, status, host, run_duration, comment, rundir"
        " FROM tests ORDER BY testname, item_path",
    )
    fields = ("test", "item", "state", "status", "host", "run_duration", "comment", "rundir")
    assert [tuple(record[field] for field in fields) for record in records] == rows
    assert len(records) == 8  # unit's toplevel record too
    broken = next(record for record in records if record["test"] == "broken")
    assert broken["status"] == "FAIL"
    assert broken["host"] in ("a1", "a2")
    assert str(broken["rundir"]).endswith("/links/linux/x86/r1/broken")

    unit = query_json(ran, "tests", "-t", TARGET, "-r", "r1", "--testpatt", "unit/%")
    assert [record["item"] for record in unit] == ["", "1", "2", "3"]  # % matches ""
    failed = query_json(ran, "tests", "-t", TARGET, "-r", "r1", "--status", "fail,preq_fail")
    assert sorted(str(record["test"]) for record in failed) == ["after_broken", "broken"]

    code, out, err = mtpkt(ran, "tests", "-t", TARGET, "-r", "r1", "--limit", "3")
    assert code == 0, err
    assert "\x1b[" not in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert out.startswith("run linux/x86 r1 (id 1): 8 records: 6 PASS, 1 FAIL, 1 PREQ_FAIL")
    assert "after_broken" in out
    assert "broken" in out
    assert "… 5 more not shown" in out


def test_run_names_and_targets_take_megatests_percent_patterns(ran: Farm) -> None:
    """``runs -r 'r%'`` and ``tests -r 'r%'`` as Megatest's ``-list-runs r%`` (db.scm:2244)."""
    (run,) = query_json(ran, "runs", "-r", "r%")
    assert (run["target"], run["runname"]) == (TARGET, "r1")
    assert [r["runname"] for r in query_json(ran, "runs", "-t", "linux/%")] == ["r1"]
    assert query_json(ran, "runs", "-r", "x%") == []
    code, out, _ = mtpkt(ran, "runs", "-r", "x%")
    assert (code, out) == (0, "no run matches\n")
    records = query_json(ran, "tests", "-t", TARGET, "-r", "r%")
    assert len(records) == 8  # the one run r% matches
    code, _, err = mtpkt(ran, "tests", "-t", TARGET, "-r", "x%")
    assert code != 0
    assert err.count("\n") == 1, err
    assert "has no run 'x%'" in err, err


def test_agents_json_and_table(ran: Farm) -> None:
    # The home writes its books of the agents at most once a second.
    assert wait_for(lambda: all(a["pending"] == 0 for a in query_json(ran, "agents")), 10), (
        query_json(ran, "agents")
    )
    # A heartbeat may be recorded between two reads of the registry: it is read before and
    # after the command, which must show what both hold and a last beat between the two.
    sql = "SELECT name, slots, busy, last_beat FROM agents ORDER BY name"
    before = ran.main_query(sql)
    agents = query_json(ran, "agents")
    after = ran.main_query(sql)
    shown = [(a["name"], a["slots"], a["used"], a["last_beat"]) for a in agents]
    assert [row[:3] for row in shown] == [row[:3] for row in before] == [row[:3] for row in after]
    for (*_, beat), (*_, first), (*_, last) in zip(shown, before, after, strict=True):
        assert isinstance(beat, float)
        assert isinstance(first, float)
        assert isinstance(last, float)
        assert first <= beat <= last, (first, beat, last)
    for agent in agents:
        assert agent["liveness"] == "alive"
        assert agent["state"] == "online"
        assert (agent["slots"], agent["free"], agent["running"]) == (2, 2, 0)
        assert isinstance(agent["silent"], float)
        assert agent["silent"] < 30

    code, out, err = mtpkt(ran, "agents")
    assert code == 0, err
    assert "\x1b[" not in out
    assert "a1" in out
    assert "a2" in out
    assert "alive" in out
    assert "s ago" in out


def test_queries_work_with_the_home_stopped(ran: Farm) -> None:
    runs = query_json(ran, "runs")
    tests = query_json(ran, "tests", "-t", TARGET, "-r", "r1")
    ran.stop_all()  # agents first: they say goodbye to the home

    assert query_json(ran, "runs") == runs
    assert query_json(ran, "tests", "-t", TARGET, "-r", "r1") == tests
    agents = query_json(ran, "agents")
    assert [(a["name"], a["liveness"], a["running"]) for a in agents] == [
        ("a1", "offline", 0),
        ("a2", "offline", 0),
    ]


def test_bad_input_is_one_line_with_its_exit_code(ran: Farm, tmp_path: Path) -> None:
    cases = [
        (("runs", "--area", str(tmp_path)), 7, "not a Megatest area"),
        (("tests", "-t", TARGET, "-r", "r9"), 1, f"target {TARGET} has no run 'r9'; its runs: "),
        (("tests", "-t", "linux", "-r", "r1"), 2, "the area's fields are OS/ARCH"),
        (("runs", "-t", "linux/x86/extra"), 2, "the area's fields are OS/ARCH"),
        (("tests", "-t", TARGET, "-r", "r1", "--testpatt", "a,,b"), 2, "empty pattern"),
        (("tests", "-t", TARGET, "-r", "r1", "--status", "GREEN"), 2, "unknown status 'GREEN'"),
        (("tests", "-t", TARGET, "-r", "r1", "--limit", "-1"), 2, "give 0 (all) or more"),
    ]
    for args, expected, message in cases:
        code, _, err = mtpkt(ran, *args)
        assert (code, len(err.strip().splitlines())) == (expected, 1), (args, err)
        assert message in err, (args, err)

    fresh = make_area(tmp_path / "fresh")
    for command in ("runs", "agents"):
        code, _, err = mtpkt(ran, command, "--area", str(fresh))
        assert code == 1, err
        assert "no run yet: start `mtpkt home` and send a run" in err


def test_runs_names_the_area_that_mt_run_area_home_chose(ran: Farm, tmp_path: Path) -> None:
    """Run from elsewhere, ``mtpkt runs`` read the area ``$MT_RUN_AREA_HOME`` named and did not
    say so (issue 21, item 8); ``--area`` or the directory here need no such line."""
    env = {**ran.env, "MT_RUN_AREA_HOME": str(ran.area)}
    chosen = run_mtpkt("runs", cwd=tmp_path, env=env)
    assert chosen.returncode == 0, chosen
    assert chosen.stderr.strip() == f"area {ran.area} (from $MT_RUN_AREA_HOME)"
    assert "r1" in chosen.stdout
    env.pop("MT_RUN_AREA_HOME")
    given = run_mtpkt("runs", "--area", str(ran.area), cwd=tmp_path, env=env)
    assert given.returncode == 0, given
    assert given.stderr == ""
