"""A small area whose tests end by launch.scm's rules, planned and run on this host: logpro
files next to ezsteps and inline ``[logpro]`` (launch.scm:80-206), runscript exit codes
(launch.scm:279-289, 780-797) and the test data of a ``.dat`` (db.scm:3319-3357)."""

import os
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, TestRef
from mtpkt.agents.area.plan import plan_run
from mtpkt.agents.host import Reporter
from mtpkt.pkts import State, Status
from mtpkt.pkts.status import StatusChange, StatusPacket, TestData
from tests.support.farm import FILES as FARM_FILES
from tests.support.farm import TARGET, write_area
from tests.support.local import LocalRun

FILES = {
    "megatest.config": FARM_FILES["megatest.config"],
    "runconfigs.config": "[default]\n",
    "tests/warned/testconfig": """
        [ezsteps]
        first  echo WARNING: odd
        second echo all good
    """,
    "tests/warned/first.logpro": """
        (expect:warning in "LogFileBody" = 0 "Any warning" #/WARNING/)
    """,
    "tests/required/testconfig": """
        [ezsteps]
        lookittmp ls /

        [logpro]
        lookittmp ;; as fullrun's logpro_required_fail
          (expect:required in "LogFileBody" > 0 "A name never found" #/never-such-a-name-here/)
    """,
    "tests/measured/testconfig": """
        [ezsteps]
        volts echo volts: 1.95

        [logpro]
        volts ;;
          (expect:value in "LogFileBody" 1.9 0.1 "Output voltage" #/volts: (\\S+)/)
    """,
    "tests/checked/testconfig": """
        [ezsteps]
        first echo needs a look
        never touch never-ran

        [logpro]
        first (expect:check in "LogFileBody" = 0 "nothing to look at" #/a look/)
    """,
    "tests/scripted/testconfig": """
        [setup]
        runscript main.sh
    """,
}


def ref(test: str) -> TestRef:
    return TestRef(TARGET, "nightly", test)


@pytest.fixture
def area(tmp_path: Path) -> Area:
    root = write_area(tmp_path / "area", FILES)
    script = root / "tests" / "scripted" / "main.sh"
    script.write_text("#!/bin/bash\necho warned by exit code\nexit 2\n")
    script.chmod(0o755)
    return Area.load(root, env={"PATH": os.environ["PATH"]})


@pytest.mark.timeout(90)
def test_each_test_ends_as_megatest_judges_it(area: Area) -> None:
    packets: list[StatusPacket] = []
    plan = plan_run(area, TARGET, "nightly")
    results = LocalRun(plan, Reporter("agent-1", packets.append), host="agent-1").run(timeout=60)

    done = State.COMPLETED
    assert results == {
        ref("warned"): (done, Status.WARN),
        ref("required"): (done, Status.FAIL),
        ref("measured"): (done, Status.PASS),
        ref("checked"): (done, Status.CHECK),
        ref("scripted"): (done, Status.WARN),
    }
    last = {p.test: p for p in packets if isinstance(p, StatusChange)}
    assert last["warned"].comment == "Logpro warning found"
    assert last["required"].comment == "Failed at step lookittmp"
    assert last["checked"].comment == "Logpro check found"
    assert last["measured"].logfile == "volts.html"
    rundir = plan.tests["checked"].instances[0].job.rundir
    assert not (rundir / "never-ran").exists()
    written = (plan.tests["required"].instances[0].job.rundir / "lookittmp.logpro").read_text()
    assert "never-such-a-name-here" in written
    data = [(p.test, p.variable, p.value, p.status) for p in packets if isinstance(p, TestData)]
    assert ("measured", "rule-1", "1.95", "OK") in data
    assert ("measured", "final", "0", "PASS") in data


def test_the_plan_carries_logpro_and_waivers_into_the_job(tmp_path: Path) -> None:
    root = write_area(tmp_path / "area", {
        **FILES,
        "tests/waivable/testconfig": """
            [ezsteps]
            make echo made

            [waivers]
            same_output diff out.txt

            [waiver_rules]
            diff diff -q %file1% %file2%
        """,
    })  # fmt: skip
    area = Area.load(root, env={"PATH": os.environ["PATH"]})
    plan = plan_run(area, TARGET, "nightly")

    (required,) = plan.tests["required"].instances[0].job.steps
    assert required.logpro is not None
    assert required.logpro.path.endswith("tests/required/testconfig")
    assert required.logpro.line == 5
    job = plan.tests["waivable"].instances[0].job
    assert [(w.name, w.value) for w in job.waivers] == [("same_output", "diff out.txt")]
    assert job.waiver_rules == {"diff": "diff -q %file1% %file2%"}
    assert plan.tests["warned"].instances[0].job.waivers == ()
