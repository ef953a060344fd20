"""A small area written here, planned and run end to end on this host with real processes."""

import os
import threading
import time
from pathlib import Path

import pytest

from mtpkt.agents.area import (
    Area,
    ConfigError,
    PathError,
    SelectionError,
    TargetError,
    TestRef,
)
from mtpkt.agents.area.plan import plan_run
from mtpkt.agents.host import Reporter
from mtpkt.pkts import State, Status
from mtpkt.pkts.status import StatusChange, StatusPacket, Step
from tests.support.farm import write_area
from tests.support.local import LocalRun
from tests.support.procs import processes_with, wait_for

TARGET = "linux/x86"
ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann", "SITE_MARK": "site-7"}

FILES = {
    "megatest.config": """
        [fields]
        OS TEXT
        ARCH TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/links
        max_concurrent_jobs 3
        [include configs/common.config]

        [env-override]
        AREA_NOTE from-env-override
    """,
    "configs/common.config": """
        [setup]
        runtimelim 1m
        deadtime 120
    """,
    "runconfigs.config": """
        [default]
        GREETING hello
        MARK #{getenv SITE_MARK}
        !SECRET not-exported
        WAITLIST build

        [linux/%]
        FAMILY unix

        [linux/x86]
        ARCHVAR x86-only
        ECHOED #{rget GREETING}-$ARCH
    """,
    "tests/build/testconfig": """
        [ezsteps]
        compile echo compiling $MT_TEST_NAME for $OS/$ARCH
        link    test "$FAMILY" = unix && echo linked

        [requirements]
        priority 5
    """,
    "tests/unit/testconfig": """
        [vars]
        base 2

        [ezsteps]
        [include ../shared_steps.inc]

        [requirements]
        waiton #{rget WAITLIST}
        priority #{get vars base}

        [items]
        A 1 2

        [itemstable]
        B x y
        C p q
    """,
    "tests/shared_steps.inc": """
        check echo "$GREETING $ARCHVAR $ECHOED $MARK $AREA_NOTE \\
        A=$A B=$B C=$C path=$MT_ITEMPATH" > out.txt
        nosecret test "$(env | grep -c not-exported)" = 0
    """,
    "tests/broken/testconfig": """
        [ezsteps]
        first  echo fine
        second echo about to fail; exit 3
        third  echo never
    """,
    "tests/after_broken/testconfig": """
        [ezsteps]
        never touch ran.txt

        [requirements]
        waiton broken
    """,
    "tests/report/testconfig": """
        [ezsteps]
        summary ls $MT_RUNPATH > listing.txt

        [requirements]
        waiton broken unit
        mode toplevel
    """,
    "tests/slow/testconfig": """
        [ezsteps]
        forever sleep 3007.1 & sleep 3007.1 & wait

        [requirements]
        runtimelim 1s
    """,
    "tests/sleeper/testconfig": """
        [ezsteps]
        nap bash -c 'trap "" TERM; sleep 3007.2' & sleep 3007.2 & wait
    """,
    "tests/scripted/testconfig": """
        [setup]
        runscript main.sh
    """,
}


def make_area(root: Path) -> Path:
    write_area(root, FILES)
    script = root / "tests" / "scripted" / "main.sh"
    script.write_text("#!/bin/bash\necho scripted in $PWD\n")
    script.chmod(0o755)
    return root


@pytest.fixture
def area(tmp_path: Path) -> Area:
    return Area.load(make_area(tmp_path / "area"), env=ENV)


def run(
    area: Area, testpatt: str = "%,~sleeper"
) -> tuple[dict[TestRef, tuple[State, Status]], list[StatusPacket]]:
    packets: list[StatusPacket] = []
    plan = plan_run(area, TARGET, "nightly", testpatt)
    local = LocalRun(plan, Reporter("agent-1", packets.append), host="agent-1", kill_grace=1.0)
    return local.run(timeout=60), packets


@pytest.mark.timeout(90)
def test_a_run_yields_the_right_state_and_status_for_every_test_and_item(area: Area) -> None:
    results, packets = run(area)

    def ref(test: str, item: str = "") -> TestRef:
        return TestRef(TARGET, "nightly", test, item)

    done = State.COMPLETED
    items = ["1", "2", "x/p", "y/q"]  # [itemstable] rows after [items] (items.scm:139-142)
    assert results == {
        ref("build"): (done, Status.PASS),
        **{ref("unit", item): (done, Status.PASS) for item in items},
        ref("unit"): (done, Status.PASS),
        ref("broken"): (done, Status.FAIL),
        ref("after_broken"): (State.NOT_STARTED, Status.PREQ_FAIL),
        ref("report"): (done, Status.PASS),
        ref("slow"): (State.KILLED, Status.KILLED),
        ref("scripted"): (done, Status.PASS),
    }

    # The packet stream says the same: the last change of every record is its result.
    assert [p.seq for p in packets] == list(range(1, len(packets) + 1))
    last = {}
    for packet in packets:
        if isinstance(packet, StatusChange):
            last[TestRef(packet.target, packet.runname, packet.test, packet.item)] = packet
    assert {r: (p.state, p.status) for r, p in last.items()} == results
    assert "waiton broken ended COMPLETED/FAIL" in last[ref("after_broken")].comment
    assert "runtimelim of 1s exceeded" in last[ref("slow")].comment
    assert wait_for(lambda: not processes_with("3007.1"), timeout=5), (
        "timed-out step left processes"
    )

    # Steps: a FAIL stops the rest; logs on disk hold each step's output.
    broken_steps = [
        (p.step, p.state, p.status) for p in packets if isinstance(p, Step) and p.test == "broken"
    ]
    assert broken_steps == [
        ("first", "start", Status.NA), ("first", "end", Status.PASS),
        ("second", "start", Status.NA), ("second", "end", Status.FAIL),
    ]  # fmt: skip
    rundir = area.linktree / TARGET / "nightly"
    assert (rundir / "broken" / "second.log").read_text() == "about to fail\n"
    assert not (rundir / "broken" / "third.log").exists()
    assert (rundir / "build" / "compile.log").read_text() == "compiling build for linux/x86\n"
    assert (
        rundir / "scripted" / "main.sh.log"
    ).read_text() == f"scripted in {rundir / 'scripted'}\n"
    assert not (rundir / "after_broken" / "ran.txt").exists()

    # The environment: runconfig (default, wildcard, target), env-override, items, no !VAR.
    assert (rundir / "unit" / "y/q" / "out.txt").read_text() == (
        "hello x86-only hello-x86 site-7 from-env-override A= B=y C=q path=y/q\n"
    )
    assert "unit" in (rundir / "report" / "listing.txt").read_text()


@pytest.mark.timeout(90)
def test_order_respects_waiton_and_priority(area: Area) -> None:
    _, packets = run(area, "build,unit,broken")
    started = [p.test for p in packets if isinstance(p, StatusChange) and p.state is State.LAUNCHED]
    assert started.index("build") < min(i for i, t in enumerate(started) if t == "unit")
    assert started[0] == "build"  # priority 5 beats broken's 0 at the start


def test_testpatt_selects_items_and_pulls_in_prerequisites(area: Area) -> None:
    plan = plan_run(area, TARGET, "nightly", "unit/1%")
    assert list(plan.tests) == ["build", "unit"]  # build comes along as unit's prerequisite
    assert [i.ref.item for i in plan.tests["unit"].instances] == ["1"]
    assert [i.ref.item for i in plan.tests["build"].instances] == [""]


@pytest.mark.parametrize(
    ("target", "testpatt", "error", "message"),
    [
        ("linux", "%", TargetError, "does not match the area's keys OS/ARCH"),
        ("linux/x86", "nosuch", SelectionError, "'nosuch' matches no test of the area"),
        ("linux/..", "%", PathError, r"target 'linux/\.\.' would leave the run tree"),
    ],
)
def test_bad_requests_are_one_clear_line(
    area: Area, target: str, testpatt: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        plan_run(area, target, "nightly", testpatt)


def test_config_errors_in_a_plan_name_file_and_line(tmp_path: Path) -> None:
    root = make_area(tmp_path / "area")
    (root / "tests" / "cyclic").mkdir()
    (root / "tests" / "cyclic" / "testconfig").write_text("[requirements]\nwaiton cyclic2\n")
    (root / "tests" / "cyclic2").mkdir()
    (root / "tests" / "cyclic2" / "testconfig").write_text("[requirements]\nwaiton cyclic\n")
    area = Area.load(root, env=ENV)
    with pytest.raises(ConfigError, match=r"cyclic2?/testconfig:2: waiton forms a cycle"):
        plan_run(area, TARGET, "nightly", "cyclic")


@pytest.mark.timeout(60)
def test_killing_a_test_stops_its_whole_process_tree(area: Area) -> None:
    plan = plan_run(area, TARGET, "nightly", "sleeper")
    sleeper = plan.tests["sleeper"].instances[0].job
    packets: list[StatusPacket] = []
    local = LocalRun(plan, Reporter("agent-1", packets.append), kill_grace=1.0)
    result: dict[TestRef, tuple[State, Status]] = {}
    runner = threading.Thread(target=lambda: result.update(local.run(timeout=60)))
    runner.start()
    try:
        assert wait_for(lambda: len(processes_with("3007.2")) >= 2), "the step never started"
        started = time.monotonic()
        local.kill("sleeper", reason="stop it")
        runner.join(timeout=30)
        assert not runner.is_alive()
        assert time.monotonic() - started < 5  # one grace second for the TERM-ignoring sleep
        assert wait_for(lambda: not processes_with("3007.2"), timeout=5), "processes left behind"
        assert result[sleeper.ref] == (State.KILLED, Status.KILLED)
        states = [p.state for p in packets if isinstance(p, StatusChange)]
        assert states[-2:] == [State.KILLREQ, State.KILLED]
    finally:
        local.kill("%")
        runner.join(timeout=30)
        for pid in processes_with("3007.2"):
            os.kill(pid, 9)


def test_a_test_with_nothing_to_run_is_an_error_not_a_pass(tmp_path: Path) -> None:
    root = make_area(tmp_path / "area")
    (root / "tests" / "typo").mkdir()
    (root / "tests" / "typo" / "testconfig").write_text("[ezstep]\nonly echo never\n")
    area = Area.load(root, env=ENV)
    with pytest.raises(ConfigError, match=r"typo/testconfig:1: no \[ezsteps\] section and no"):
        plan_run(area, TARGET, "nightly", "typo")


def test_an_empty_testpatt_is_refused(area: Area) -> None:
    with pytest.raises(SelectionError, match="the testpatt is empty: use % for every test"):
        plan_run(area, TARGET, "nightly", " ")


def test_reader_notes_are_logged_when_a_run_is_planned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_area(tmp_path / "area")
    with (root / "megatest.config").open("a") as config:
        config.write("[include nosuch.config]\n")
    with caplog.at_level("WARNING", logger="mtpkt.agents.area.plan"):
        plan_run(Area.load(root, env=ENV), TARGET, "nightly", "build")
    assert "[include nosuch.config]" in caplog.text
    assert "not found, skipped" in caplog.text
