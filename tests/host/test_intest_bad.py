"""Acceptance 4: a step's bad ``megatest`` calls exit non-zero with one line, record nothing,
and leave the agent running (a real home, agent and steps)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.pkts.status import StatusChange, Step, TestData
from tests.host.test_intest import FARM_FILES, reported, stop_agent
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
