"""Steps with comments, the test's log and test data, sent as an agent sends them (a real
Reporter, spool and sender to a real home), shown by ``mtpkt tests --steps --data``,
``mtpkt tail`` and ``mtpkt report --json``."""

import json
import subprocess
from collections.abc import Iterator

import pytest

from mtpkt.agents.area.job import TestRef
from mtpkt.agents.homedir import HomeDir
from mtpkt.agents.host.report import Reporter
from mtpkt.bus.probe import dial_address
from mtpkt.bus.sender import Sender
from mtpkt.bus.spool import Spool
from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.testdata import read_csv
from tests.support.cli import run_mtpkt
from tests.support.farm import TARGET, Farm, running_farm
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(150)

CSV = """\
perf, cpu, 1.5, 1, 1, s
perf, mem, lots, , , MB, too much, fail
perf, io, 10, 8, >=
"""


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A home that committed one agent's report of a test with steps, data and a log."""
    root = tmp_path_factory.mktemp("details")
    with running_farm(root) as farm:
        farm.start_home()
        home = HomeDir(farm.area)
        spool = Spool(root / "spool.db")
        sender = Sender(spool, dial_address(home.addresses()[0]), home.key(), name="agentX")
        sender.start()
        try:
            report = Reporter("agentX", spool.put)
            test = TestRef(TARGET, "r1", "measured")
            report.change(test, State.RUNNING, Status.NA, host="agentX")
            report.step(test, "main", StepState.START, logfile="main.log")
            report.step(test, "main", StepState.END, status=Status.WARN, exit_code=0,
                        logfile="main.log", duration=1.25, comment="2 warnings")  # fmt: skip
            report.test_data(test, read_csv(CSV))
            report.change(test, State.COMPLETED, Status.WARN, logfile="main.html")
            assert wait_for(lambda: len(spool) == 0, 30), "the home did not commit the packets"
        finally:
            sender.stop()
            spool.close()
        yield farm


def mtpkt(farm: Farm, *args: str) -> "subprocess.CompletedProcess[str]":
    result = run_mtpkt(*args, cwd=farm.area, env={**farm.env, "COLUMNS": "150"})
    assert result.returncode == 0, result.stderr
    return result


def test_the_store_holds_them_once(sent: Farm) -> None:
    assert sent.query("r1", "SELECT stepname, state, comment FROM test_steps ORDER BY id") == [
        ("main", "start", ""),
        ("main", "end", "2 warnings"),
    ]
    assert sent.query("r1", "SELECT variable, value, status FROM test_data ORDER BY id") == [
        ("cpu", 1.5, "pass"),
        ("mem", "lots", "fail"),
        ("io", 10.0, "pass"),
    ]
    assert sent.query("r1", "SELECT final_logf, pass_count, fail_count FROM tests") == [
        ("main.html", 2, 1)
    ]


def test_tests_shows_steps_and_data_in_tables_and_json(sent: Farm) -> None:
    out = mtpkt(sent, "tests", "-t", TARGET, "-r", "r1", "--steps", "--data").stdout
    assert "measured  WARN  log main.html" in out
    step_line = next(line for line in out.splitlines() if line.lstrip().startswith("main "))
    assert step_line.split() == ["main", "WARN", "0", "1.2s", "main.log", "2", "warnings"]
    lines = {line.split()[0]: line.split() for line in out.splitlines() if "perf/" in line}
    assert lines["perf/cpu"] == ["perf/cpu", "1.5", "1", "1", "s", "PASS"]
    assert lines["perf/mem"] == ["perf/mem", "lots", "MB", "FAIL", "too", "much"]
    assert lines["perf/io"] == ["perf/io", "10", "8", ">=", "PASS"]

    (record,) = json.loads(mtpkt(sent, "tests", "-t", TARGET, "-r", "r1", "--json",
                                 "--steps", "--data").stdout)  # fmt: skip
    assert record["logfile"] == "main.html"
    assert [step["comment"] for step in record["steps"]] == ["2 warnings"]
    assert [(d["category"], d["variable"], d["value"]) for d in record["data"]] == [
        ("perf", "cpu", 1.5), ("perf", "io", 10.0), ("perf", "mem", "lots"),
    ]  # fmt: skip
    (plain,) = json.loads(mtpkt(sent, "tests", "-t", TARGET, "-r", "r1", "--json").stdout)
    assert "steps" not in plain
    assert "data" not in plain


def test_tail_shows_each_row_of_data_and_the_steps_comment(sent: Farm) -> None:
    out = mtpkt(sent, "tail", "-r", "r1", "--plain", "--until-done").stdout
    assert "measured  step main end WARN (exit 0, 1.25s): 2 warnings" in out
    assert "measured  data perf/cpu = 1.5 s pass (expected 1 ± 1)" in out
    assert "measured  data perf/mem = lots MB fail: too much" in out
    lines = mtpkt(sent, "tail", "-r", "r1", "--json", "--until-done").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["kind"] for record in records].count("test_data") == 3


def test_report_json_carries_steps_data_and_log(sent: Farm) -> None:
    report = json.loads(mtpkt(sent, "report", "-t", TARGET, "-r", "r1", "--json", "-").stdout)
    (test,) = report["tests"]
    assert (test["name"], test["status"], test["logfile"]) == ("measured", "WARN", "main.html")
    assert test["steps"][0]["comment"] == "2 warnings"
    assert len(test["data"]) == 3
