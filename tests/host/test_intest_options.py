"""The ``megatest`` command's options from real steps (a real home and agent): Acceptance 4's
bad calls (non-zero exit, one line, nothing recorded, the agent keeps running), then
``-runstep -logpro``, ``AUTO``, ``-setlog``, ``-env2file`` and ``-test-paths``."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.pkts.status import StatusChange, Step, TestData
from mtpkt.tools.megatest_cmd import HELP
from tests.host.test_intest import marker, reported, stop_agent
from tests.support.farm import FILES as FARM_FILES
from tests.support.farm import TARGET, Farm, running_farm
from tests.support.procs import wait_for

BAD_CALLS = {
    "unknown option": "$MT_MEGATEST -frobnicate 3",
    "step state": "$MT_MEGATEST -step bad1 :state middle :status PASS",
    "step status": "$MT_MEGATEST -step bad2 :state end :status GREAT",
    "step without status": "$MT_MEGATEST -step bad2 :state end",
    "test state": "$MT_MEGATEST -test-status :state FINISHED :status PASS",
    "test status": "$MT_MEGATEST -test-status :state COMPLETED :status NOPE",
    "unclosed quote": "printf 'bad,\"unclosed\\n' | $MT_MEGATEST -load-test-data",
    "ten cells": "echo a,b,1,2,3,4,5,6,7,8 | $MT_MEGATEST -load-test-data",
    "no variable": "echo onlyone | $MT_MEGATEST -load-test-data",
    "forged token": "MTPKT_TOKEN=forged $MT_MEGATEST -step bad3 :state start :status n/a",
    "ended test": (
        'MTPKT_TOKEN="$(cat "$MT_RUN_AREA_HOME/early.token")"'
        " $MT_MEGATEST -step bad4 :state start :status n/a"
    ),
    "another target": "$MT_MEGATEST -test-status :state COMPLETED :status FAIL -target a/b",
    "another test": "$MT_MEGATEST -test-status :state COMPLETED :status FAIL -testpatt early",
    "another run": "$MT_MEGATEST -set-values :value 1 :expected 2 :tol 3 :variable v -runname x",
    "outside a test": "env -u MTPKT_TOKEN $MT_MEGATEST -step bad5 :state start :status n/a",
}
"""Each bad call of Acceptance 4, by what is wrong with it."""

LATE = "\n".join(
    [
        'out="$MT_RUN_AREA_HOME/bad.txt"',
        *(
            f'( {command} ) > /dev/null 2> err.txt; echo "{name}|$?|$(wc -l < err.txt)|'
            f'$(head -n 1 err.txt)" >> "$out"'
            for name, command in BAD_CALLS.items()
        ),
        "$MT_MEGATEST -step good :state end :status 0",
        'echo "good|$?" >> "$out"',
    ]
)

FILES = {
    "megatest.config": FARM_FILES["megatest.config"],
    "runconfigs.config": "[default]\nX 1\n",
    "tests/early/testconfig": "[ezsteps]\nmain bash main.sh\n",
    "tests/early/main.sh": 'echo "$MTPKT_TOKEN" > "$MT_RUN_AREA_HOME/early.token"\n',
    "tests/late/testconfig": "[ezsteps]\nmain bash main.sh\n\n[requirements]\nwaiton early\n",
    "tests/late/main.sh": LATE,
}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, files=FILES) as farm:
        farm.start_home()
        farm.start_agent("a1")
        yield farm


def test_bad_calls_exit_non_zero_with_one_line_and_record_nothing(farm: Farm) -> None:
    sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "early,late")
    assert sent.returncode == 0, sent
    assert wait_for(lambda: farm.tests("r1").get(("late", ""), ("",))[0] == "COMPLETED", 60), (
        farm.tests("r1"),
        farm.log("a1"),
    )
    lines = (farm.area / "bad.txt").read_text().splitlines()
    results = {line.split("|")[0]: line.split("|")[1:] for line in lines}
    assert results.pop("good") == ["0"]  # the agent kept running
    assert sorted(results) == sorted(BAD_CALLS)
    for name, (code, count, line) in results.items():
        assert code != "0", (name, line)
        assert count == "1", (name, line)
        assert line.startswith("megatest: "), (name, line)
    assert results["unknown option"][2] == (
        "megatest: -frobnicate is not supported by mtpkt's megatest (see megatest -h)"
    )
    assert results["outside a test"][0] == "5"  # as Megatest without MT_CMDINFO
    assert results["step without status"][0] == "6"  # megatest.scm:1811
    assert "names another test" in results["another target"][2]
    assert "not the token of a test running" in results["ended test"][2]
    stop_agent(farm)
    packets = reported(farm, "a1", "r1")
    assert not [p for p in packets if isinstance(p, TestData)]
    steps = {p.step for p in packets if isinstance(p, Step)}
    assert steps == {"main", "good"}
    late = [
        (p.state, p.status)
        for p in packets
        if isinstance(p, StatusChange) and (p.test, p.origin) == ("late", "a1")
    ]
    assert late == [
        (pkts.State.RUNNING, pkts.Status.NA),
        (pkts.State.COMPLETED, pkts.Status.PASS),
    ]


RULES = """\
(expect:required in "LogFileBody" = 1 "the end" #/all done/)
(expect:warning  in "LogFileBody" = 0 "a warning" #/warning/)
"""

MORE = f"""\
out="$MT_RUN_AREA_HOME/more.txt"
cat > check.logpro << 'EOF'
{RULES}EOF
$MT_MEGATEST -runstep judged -logpro check.logpro "echo all done; echo a warning" -m judged
echo "judged|$?" >> "$out"
$MT_MEGATEST -runstep plain "exit 7"
echo "plain|$?" >> "$out"
$MT_MEGATEST -env2file myenv && test -s myenv.sh && test -s myenv.csh
echo "env2file|$?" >> "$out"
echo foo,bar,1,2,"<" | $MT_MEGATEST -load-test-data
$MT_MEGATEST -test-status :state RUNNING :status AUTO
$MT_MEGATEST -setlog final.html
echo "paths|$($MT_MEGATEST -test-paths -target $MT_TARGET :runname $MT_RUNNAME -testpatt early)" \\
  >> "$out"
echo "help|$($MT_MEGATEST -h | head -n 1)" >> "$out"
touch "$MT_RUN_AREA_HOME/more.done"
"""


def test_runstep_logpro_auto_setlog_env2file_and_test_paths(tmp_path: Path) -> None:
    files = {
        **FILES,
        "tests/more/testconfig": FILES["tests/late/testconfig"],
        "tests/more/main.sh": MORE,
    }
    with running_farm(tmp_path, files=files) as farm:
        farm.start_home()
        farm.start_agent("a1")
        sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "early,more")
        assert sent.returncode == 0, sent
        marker(farm, "more.done")  # its test data blocks the spool until the store takes it
        results = dict(
            line.split("|", 1) for line in (farm.area / "more.txt").read_text().splitlines()
        )
        early = farm.query("r1", "SELECT rundir FROM tests WHERE testname = 'early'")[0][0]
        stop_agent(farm)
        packets = reported(farm, "a1", "r1")
    # logpro's WARN is its code 2, and megatest exits with it (megatest.scm:2289-2298); a
    # command's 7 becomes 3.
    assert results == {
        "judged": "2",
        "plain": "3",
        "env2file": "0",
        "paths": str(early),
        "help": HELP.splitlines()[0],
    }
    steps = [
        (p.step, p.state, p.status, p.exit_code, p.logfile) for p in packets if isinstance(p, Step)
    ]
    assert ("judged", "end", pkts.Status.WARN, 2, "judged.log") in steps
    assert ("plain", "end", pkts.Status.FAIL, 7, "plain.log") in steps
    changes = [
        (p.state, p.status, p.logfile)
        for p in packets
        if isinstance(p, StatusChange) and (p.test, p.origin) == ("more", "a1")
    ]
    assert changes[1:4] == [
        (pkts.State.RUNNING, pkts.Status.NA, "judged.html"),  # logpro's report: the test's log
        (pkts.State.RUNNING, pkts.Status.PASS, ""),  # AUTO: its one row passed
        (pkts.State.RUNNING, pkts.Status.PASS, "final.html"),
    ]
