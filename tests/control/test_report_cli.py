"""``mtpkt report``: a run's JUnit XML, read back with junitparser as CI servers read it.

The end-to-end test runs a real home and agents; the others write a run's
database through the real store (as the home's collector does) and run the
command in this process, which keeps the error cases fast.
"""

import itertools
import json
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import attrs
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from mtpkt import pkts
from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.outcome import BAD, ENDED_BADLY, ERRORS
from mtpkt.pkts.status import StatusChange, StatusPacket, Step, TestData
from mtpkt.pkts.testdata import DataRow
from mtpkt.store import Store
from mtpkt.store.rows import RunRow, TestRow
from mtpkt.tools.cli import main
from mtpkt.tools.junit import Case, StepRun, Suite, junit_xml, summary, verdict, xml_text
from mtpkt.tools.run_results import LOG_LINES, log_tail
from tests.support.farm import TARGET, Farm
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(180)


def suite_of(xml: JUnitXml) -> TestSuite:
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert isinstance(suite, TestSuite)
    return suite


def cases_of(suite: TestSuite) -> dict[str, TestCase]:
    cases = {case.name: case for case in suite}
    assert len(cases) == suite.tests
    return cases


def counts(suite: TestSuite) -> tuple[int, int, int, int]:
    """(tests, failures, errors, skipped) as the suite says, checked against its testcases."""
    results = [type(case.result[0]) if case.result else None for case in suite]
    assert results.count(Failure) == suite.failures
    assert results.count(Error) == suite.errors
    assert results.count(Skipped) == suite.skipped
    return suite.tests, suite.failures, suite.errors, suite.skipped


# -- end to end -----------------------------------------------------------------------------


def report(farm: Farm, *args: str) -> subprocess.CompletedProcess[str]:
    return farm.command("report", "-t", TARGET, *args, timeout=60)


def test_report_of_a_real_run_reads_as_junit(farm: Farm, tmp_path: Path) -> None:
    farm.start_home()
    farm.start_agent("a1")
    farm.start_agent("a2")
    ran = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "%,~sleeper", "--wait")
    assert ran.returncode == 3, ran.stderr  # `broken` fails, so `after_broken` is PREQ_FAIL
    assert farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "sleeper").returncode == 0
    assert wait_for(lambda: farm.tests("r1").get(("sleeper", ""), ("",))[0] == "RUNNING", 60)
    killed = farm.send(
        "kill", "-t", TARGET, "-r", "r1", "--testpatt", "sleeper", "--grace", "1", "--wait"
    )
    assert killed.returncode == 0, killed.stderr

    out = tmp_path / "r1.xml"
    made = report(farm, "-r", "r1", "--junit", str(out))

    assert made.returncode == 0, made.stderr
    assert made.stderr == (
        f"mtpkt report: {TARGET}/r1: 8 tests, 1 failure, 2 errors, 0 skipped; wrote {out}\n"
    )
    suite = suite_of(JUnitXml.fromfile(str(out)))
    assert suite.name == f"{TARGET}/r1"
    assert counts(suite) == (8, 1, 2, 0)
    cases = cases_of(suite)
    # One testcase per item of `unit`; its toplevel record is no testcase.
    assert set(cases) == {
        "build", "unit/1", "unit/2", "unit/3", "broken", "after_broken", "report", "sleeper"
    }  # fmt: skip
    for item in ("1", "2", "3"):
        case = cases[f"unit/{item}"]
        assert case.classname == "unit"
        assert case.is_passed
        assert case.time >= 0.2  # its step sleeps 0.2 s
        assert "step check: PASS, exit code 0" in (case.system_out or "")
        assert "(log check.log is empty)" in (case.system_out or "")  # it writes out.txt
    assert "compiling build" in (cases["build"].system_out or "")  # the tail of compile.log

    broken = cases["broken"]
    [failure] = broken.result
    assert isinstance(failure, Failure)
    assert (failure.message or "").startswith("FAIL")
    assert "step second: FAIL, exit code 3" in (failure.text or "")
    shown = broken.system_out or ""
    assert "step first: PASS, exit code 0" in shown
    assert "about to fail" in shown  # the tail of second.log
    [error] = cases["after_broken"].result
    assert isinstance(error, Error)
    assert (error.message or "").startswith("NOT_STARTED/PREQ_FAIL")
    assert "(not on disk)\nno steps ran" in (cases["after_broken"].system_out or "")
    [error] = cases["sleeper"].result
    assert isinstance(error, Error)
    assert (error.type or "").startswith("KILLED/")

    # The home stopped: the same report from the databases alone.
    farm.stop_all()
    again = tmp_path / "again.xml"
    made = report(farm, "-r", "r1", "--junit", str(again))
    assert made.returncode == 0, made.stderr
    assert again.read_bytes() == out.read_bytes()

    # A run directory gone: said in its testcase; to standard output with `--junit -`.
    [(rundir,)] = farm.query("r1", "SELECT rundir FROM tests WHERE testname = 'build'")
    shutil.rmtree(str(rundir))
    made = report(farm, "-r", "r1", "--junit", "-")
    assert made.returncode == 0, made.stderr
    assert made.stderr.endswith("; wrote standard output\n")
    cases = cases_of(suite_of(JUnitXml.fromstring(made.stdout.encode())))
    assert f"run directory: {rundir} is no longer on disk" in (cases["build"].system_out or "")
    assert "compiling build" not in (cases["build"].system_out or "")


# -- a run written through the store --------------------------------------------------------

RUN = "r1"
AREA_CONFIG = """
    [fields]
    OS TEXT
    ARCH TEXT
"""


class Recorder:
    """Commits one origin's status packets about runs of an area, through the real store."""

    def __init__(self, area: Path) -> None:
        self.area = area
        self.seq = itertools.count(1)
        self.ts = itertools.count(1_700_000_000, 2)
        self.packets: list[StatusPacket] = []
        self.rundirs: list[tuple[str, str, str]] = []

    def about(self, test: str, item: str, runname: str) -> dict[str, Any]:
        return {"origin": "a1", "seq": next(self.seq), "ts": float(next(self.ts)),
                "target": TARGET, "runname": runname, "test": test, "item": item}  # fmt: skip

    def change(self, test: str, state: State, status: Status = Status.NA, *, item: str = "",
               comment: str = "", runname: str = RUN, logfile: str = "") -> None:  # fmt: skip
        self.packets.append(
            StatusChange(
                **self.about(test, item, runname),
                state=state,
                status=status,
                comment=comment,
                host="a1",
                logfile=logfile,
            )
        )

    def step(self, test: str, name: str, status: Status, code: int | None, *, item: str = "",
             log: str = "", comment: str = "") -> None:  # fmt: skip
        start = Step(**self.about(test, item, RUN), step=name, state=StepState.START, logfile=log)
        end = Step(**self.about(test, item, RUN), step=name, state=StepState.END, status=status,
                   exit_code=code, logfile=log, duration=1.5, comment=comment)  # fmt: skip
        self.packets += [start, end]

    def data(self, test: str, *cells: str) -> None:
        """A row of test data as ``megatest -load-test-data`` reads it (judged the same way)."""
        row = DataRow.judged(*cells)
        self.packets.append(TestData(**self.about(test, "", RUN), **attrs.asdict(row)))

    def test(self, test: str, state: State, status: Status, *, item: str = "", log: str = "",
             comment: str = "") -> Path:  # fmt: skip
        """A whole attempt of a test with one step; returns its run directory (made)."""
        self.change(test, State.LAUNCHED, item=item)
        self.change(test, State.RUNNING, item=item)
        code = 0 if status in (Status.PASS, Status.SKIP, Status.WAIVED) else 1
        self.step(test, "main", Status.PASS if code == 0 else Status.FAIL, code, item=item, log=log)
        self.change(test, state, status, item=item, comment=comment)
        rundir = self.area / "links" / test / item
        rundir.mkdir(parents=True, exist_ok=True)
        self.rundirs.append((test, item, str(rundir)))
        return rundir

    def commit(self) -> None:
        with Store(self.area / ".mtpkt" / "db", ["OS", "ARCH"], durable=False) as store:
            store.apply(self.packets)
            for runname in {p.runname for p in self.packets if isinstance(p, StatusChange)}:
                store.set_rundirs(TARGET, runname, self.rundirs)
        self.packets = []


@pytest.fixture
def area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MT_RUN_AREA_HOME", raising=False)
    root = tmp_path / "area"
    root.mkdir()
    (root / "megatest.config").write_text(textwrap.dedent(AREA_CONFIG).lstrip())
    return root


def run_report(area: Path, *args: str, target: str = TARGET, runname: str = RUN) -> int:
    return main(["report", "--area", str(area), "-t", target, "-r", runname, *args])


def test_every_outcome_escaped_with_its_logs(
    area: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder(area)
    passed = rec.test("passed", State.COMPLETED, Status.PASS, log="main.log")
    text = "".join(f'line {n} <&> ]]> "q" \x00\x1b[31m\ud800 é\n' for n in range(1, 61))
    (passed / "main.log").write_text(text, errors="surrogatepass")
    rec.test("failed", State.COMPLETED, Status.FAIL, comment="step 'main' <failed>\n\x07again")
    rec.test("check", State.COMPLETED, Status.CHECK)
    rec.test("waived", State.COMPLETED, Status.WAIVED)
    rec.test("skip", State.COMPLETED, Status.SKIP)
    rec.test("dead", State.INCOMPLETE, Status.DEAD)
    rec.test("killed", State.KILLED, Status.KILLED)
    rec.test("escapes", State.COMPLETED, Status.PASS, log="../passed/main.log")
    rec.test("no_log", State.COMPLETED, Status.PASS, log="gone.log")
    rec.change("waiting", State.NOT_STARTED)
    rec.change("running", State.LAUNCHED)
    rec.change("running", State.RUNNING)
    for item in ("a", "b"):
        rec.test("items", State.COMPLETED, Status.PASS, item=item)
    # Rerun: the first attempt's step is not the report's.
    rec.change("rerun", State.LAUNCHED)
    rec.change("rerun", State.RUNNING)
    rec.step("rerun", "first_try", Status.FAIL, 2)
    rec.change("rerun", State.COMPLETED, Status.FAIL)
    rec.test("rerun", State.COMPLETED, Status.PASS)
    rec.commit()
    out = tmp_path / "report.xml"

    assert run_report(area, "--junit", str(out)) == 0

    err = capsys.readouterr().err
    assert err == (
        f"mtpkt report: {TARGET}/{RUN}: 14 tests, 2 failures, 2 errors, 3 skipped; wrote {out}\n"
    )
    suite = suite_of(JUnitXml.fromfile(str(out)))
    assert counts(suite) == (14, 2, 2, 3)
    cases = cases_of(suite)
    assert "items" not in cases
    assert {"items/a", "items/b"} <= set(cases)
    assert cases["passed"].time == pytest.approx(6.0)  # RUNNING to COMPLETED by the packets' ts
    log = (cases["passed"].system_out or "").splitlines()
    start = log.index(f"--- last {LOG_LINES} lines of main.log ---")
    shown = log[start + 1 : start + 1 + LOG_LINES]
    assert shown[0] == 'line 11 <&> ]]> "q" [31m\ufffd\ufffd\ufffd é'  # the surrogate's bytes
    assert shown[-1].startswith("line 60 ")
    assert log[start + 1 + LOG_LINES] == "--- end of main.log ---"

    for name in ("failed", "check"):
        assert isinstance(cases[name].result[0], Failure)
    message = cases["failed"].result[0].message
    assert message == "FAIL: step 'main' <failed> again"  # one line, \x07 stripped
    for name, kind in (("dead", "INCOMPLETE/DEAD"), ("killed", "KILLED/KILLED")):
        [error] = cases[name].result
        assert isinstance(error, Error)
        assert error.type == kind
    for name, message in (("skip", "SKIP"), ("waiting", "not run"),
                          ("running", "not finished: RUNNING")):  # fmt: skip
        [skipped] = cases[name].result
        assert isinstance(skipped, Skipped)
        assert skipped.message == message
    assert cases["waived"].is_passed
    assert "outside the run directory: not read" in (cases["escapes"].system_out or "")
    assert "line 60" not in (cases["escapes"].system_out or "")
    assert "(log gone.log is not on disk)" in (cases["no_log"].system_out or "")
    rerun = cases["rerun"].system_out or ""
    assert "step main: PASS" in rerun
    assert "first_try" not in rerun


def test_steps_comments_test_data_and_the_main_log_in_junit_and_json(
    area: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder(area)
    rec.change("measured", State.RUNNING)
    rec.step("measured", "main", Status.WARN, 0, log="main.log", comment="2 warnings")
    rec.data("measured", "perf", "cpu", "1.5", "1", "1", "s")
    rec.data("measured", "perf", "mem", "lots", "", "", "MB", "too much", "fail")
    rec.data("measured", "perf", "io", "10", "8", ">=")
    rec.change("measured", State.COMPLETED, Status.WARN, logfile="main.html")
    rec.rundirs.append(("measured", "", str(area / "links" / "measured")))
    (area / "links" / "measured").mkdir(parents=True)
    (area / "links" / "measured" / "main.html").write_text("<html></html>")
    rec.change("gone", State.COMPLETED, Status.PASS, logfile="gone.html")
    rec.rundirs.append(("gone", "", str(area / "links" / "gone")))
    (area / "links" / "gone").mkdir(parents=True)
    rec.commit()
    xml, js = tmp_path / "r.xml", tmp_path / "r.json"

    assert run_report(area, "--junit", str(xml), "--json", str(js)) == 0

    assert capsys.readouterr().err.endswith(f"; wrote {xml} and {js}\n")
    root = ET.parse(xml).getroot()
    [case] = root.findall(".//testcase[@name='measured']")
    assert [(p.get("name"), p.get("value")) for p in case.findall("properties/property")] == [
        ("perf/cpu", "1.5"), ("perf/cpu:status", "pass"),
        ("perf/io", "10"), ("perf/io:status", "pass"),
        ("perf/mem", "lots"), ("perf/mem:status", "fail"),
    ]  # fmt: skip
    out = case.findtext("system-out") or ""
    log = area / "links" / "measured" / "main.html"
    assert "log: main.html\n" in out
    assert "step main: WARN, exit code 0, 1.50 s, log main.log: 2 warnings" in out
    assert "data perf/cpu = 1.5 s pass (expected 1 ± 1)" in out
    assert "data perf/io = 10 pass (expected >= 8)" in out
    assert "data perf/mem = lots MB fail: too much" in out
    assert out.endswith(f"[[ATTACHMENT|{log}]]\n")
    gone = root.find(".//testcase[@name='gone']")
    assert gone is not None
    assert "log: gone.html (not on disk)" in (gone.findtext("system-out") or "")
    assert "ATTACHMENT" not in (gone.findtext("system-out") or "")
    assert gone.find("properties") is None

    report = json.loads(js.read_text())
    assert (report["target"], report["runname"], report["status"]) == (TARGET, RUN, "WARN")
    tests = {test["name"]: test for test in report["tests"]}
    measured = tests["measured"]
    assert (measured["outcome"], measured["logfile"], measured["log_path"]) == (
        "passed", "main.html", str(log),
    )  # fmt: skip
    assert measured["steps"] == [
        {"name": "main", "state": "end", "status": "WARN", "exit_code": 0, "duration": 1.5,
         "logfile": "main.log", "comment": "2 warnings"},
    ]  # fmt: skip
    assert measured["data"][0] == {
        "category": "perf", "variable": "cpu", "value": 1.5, "expected": 1.0, "tol": 1.0,
        "units": "s", "comment": "", "status": "pass", "type": "",
    }  # fmt: skip
    assert [(d["variable"], d["value"], d["status"]) for d in measured["data"]] == [
        ("cpu", 1.5, "pass"), ("io", 10.0, "pass"), ("mem", "lots", "fail"),
    ]  # fmt: skip
    assert (tests["gone"]["logfile"], tests["gone"]["log_path"]) == ("gone.html", None)
    assert (tests["gone"]["steps"], tests["gone"]["data"]) == ([], [])

    assert run_report(area, "--json", "-") == 0
    assert json.loads(capsys.readouterr().out) == report


def test_standard_output_and_a_run_with_one_test(
    area: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder(area)
    rec.test("only", State.COMPLETED, Status.PASS)
    rec.commit()

    assert run_report(area, "--junit", "-") == 0

    captured = capsys.readouterr()
    assert captured.out.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites ")
    assert counts(suite_of(JUnitXml.fromstring(captured.out.encode()))) == (1, 0, 0, 0)
    assert captured.err.endswith(
        ": 1 test, 0 failures, 0 errors, 0 skipped; wrote standard output\n"
    )


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mtpkt report: error: ")
    return lines[0]


def test_each_bad_input_is_one_line_and_a_named_exit_code(
    area: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r.xml")
    assert run_report(tmp_path / "nowhere", "--junit", out) == 7
    assert f"{tmp_path}/nowhere does not exist: cd into the area" in one_error_line(capsys)
    assert run_report(tmp_path, "--junit", out) == 7
    assert f"{tmp_path} is not a Megatest area (no megatest.config)" in one_error_line(capsys)
    assert run_report(area, "--junit", out) == 1
    assert "no run yet: start `mtpkt home` and send a run" in one_error_line(capsys)

    rec = Recorder(area)
    rec.test("t", State.COMPLETED, Status.PASS)
    rec.change("t", State.NOT_STARTED, runname="r2")
    rec.commit()
    assert run_report(area, "--junit", out, runname="nightly") == 1
    assert f"target {TARGET} has no run 'nightly'; its runs: r1, r2" in one_error_line(capsys)
    assert run_report(area, "--junit", out, target="linux/arm") == 1
    assert (
        f"no run of target 'linux/arm' in {area}/.mtpkt/db/main.db (targets with runs: {TARGET})"
        in one_error_line(capsys)
    )
    assert run_report(area, "--junit", out, target="linux") == 2
    assert "has 1 part(s); the area's fields are OS/ARCH" in one_error_line(capsys)
    assert run_report(area, "--junit", out, target=" ") == 2
    assert "the target is empty" in one_error_line(capsys)

    (tmp_path / "file").write_text("")
    assert run_report(area, "--junit", str(tmp_path / "file" / "r.xml")) == 1
    assert "cannot write" in one_error_line(capsys)
    assert run_report(area, "--junit", str(tmp_path)) == 1
    assert "it is a directory" in one_error_line(capsys)
    assert not (tmp_path / "r.xml").exists()  # nothing written by any of these

    assert main(["report", "--area", str(area), "-t", TARGET, "-r", RUN]) == 2
    assert "give --junit FILE, --json FILE or both" in one_error_line(capsys)
    assert run_report(area, "--junit", "-", "--json", "-") == 2
    assert "cannot both write to standard output" in one_error_line(capsys)

    for suffix in ("", "-wal", "-shm"):  # the run's database gone, its row still in main.db
        (area / ".mtpkt" / "db" / f"2.db{suffix}").unlink(missing_ok=True)
    assert run_report(area, "--junit", out, runname="r2") == 1
    assert "has no database" in one_error_line(capsys)


# -- the pieces -----------------------------------------------------------------------------


def test_every_bad_status_or_end_is_a_failure_or_an_error() -> None:
    for status in BAD:
        expected = "error" if status in ERRORS else "failure"
        assert verdict("COMPLETED", status) == (expected, status)
    for state in ENDED_BADLY:
        assert verdict(state, "PASS") == ("error", f"{state}/PASS")
    assert verdict("COMPLETED", "WARN") == ("passed", "WARN")
    assert verdict("COMPLETED", "n/a") == ("skipped", "n/a")
    assert verdict("HALFWAY", "PASS") == ("error", "HALFWAY/PASS")  # words of another tool
    assert verdict("COMPLETED", "MEH") == ("failure", "MEH")


def test_junit_is_made_from_plain_records_alone(tmp_path: Path) -> None:
    run = RunRow(
        id=7, target=TARGET, runname="r9", state="COMPLETED", status="FAIL", owner="", comment="",
        event_time=None, fail_count=1, pass_count=0, last_update=None,
    )  # fmt: skip
    row = TestRow(
        id=1, run_id=7, testname="unit", item_path="2", host="a1", rundir="gone/unit/2",
        state="COMPLETED", status="FAIL", attemptnum=0, run_duration=1.5, comment="bad\x00 news",
        event_time=None, fail_count=0, pass_count=0, archived=1, last_update=None,
    )  # fmt: skip
    step = Step(
        origin="a1", target=TARGET, runname="r9", test="unit", item="2", step="check", seq=1,
        state=StepState.END, status=Status.FAIL, exit_code=2,
    )  # fmt: skip
    running = attrs.evolve(
        step, seq=2, state=StepState.START, status=Status.NA, exit_code=None, logfile="late.log"
    )
    suite = Suite(
        run=run,
        cases=(Case(row=row, rundir=tmp_path / "gone", steps=(StepRun(packet=step),
                                                                StepRun(packet=running))),),
    )  # fmt: skip

    xml = tmp_path / "r9.xml"
    xml.write_bytes(junit_xml(suite))

    made = suite_of(JUnitXml.fromfile(str(xml)))
    assert counts(made) == (1, 1, 0, 0)
    [failure] = cases_of(made)["unit/2"].result
    assert isinstance(failure, Failure)
    assert failure.message == "FAIL: bad news"
    assert failure.text == "step check: FAIL, exit code 2"
    system_out = cases_of(made)["unit/2"].system_out or ""
    assert "is no longer on disk (archived): no logs to show" in system_out
    assert "step check: started, no end recorded, log late.log" in system_out
    assert summary(suite, "r9.xml") == (
        f"{TARGET}/r9: 1 test, 1 failure, 0 errors, 0 skipped; wrote r9.xml"
    )


def test_log_tail_reads_the_end_of_a_large_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_bytes(b"x" * 5000 + b"\n" + b"".join(b"%d\r\n" % n for n in range(100_000)))
    lines, more = log_tail(log)
    assert more
    assert lines == [str(n) for n in range(100_000 - LOG_LINES, 100_000)]
    log.write_bytes(b"a\nb")  # no newline at its end
    assert log_tail(log) == (["a", "b"], False)
    assert xml_text("a\x00b\tc\x1b\ufffe\U0001f600") == "ab\tc\U0001f600"
    assert verdict("COMPLETED", pkts.Status.CHECK) == ("failure", "CHECK")
