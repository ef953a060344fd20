"""waiton as Megatest does it: modes, itemmaps, prerequisites outside the run or the area.

Each test cites the Megatest source or manual (../shared/megatest-examples) it is
compared with; where mtpkt differs, the docstring says how.
"""

import os
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, ConfigError, TestRef, plan_run
from mtpkt.agents.area.waiton import ItemMap, Records, Verdict, decide, lookup_itemmap
from mtpkt.agents.host import Reporter
from mtpkt.pkts import State, Status
from mtpkt.pkts.status import StatusChange, StatusPacket
from tests.support.farm import write_area
from tests.support.local import LocalRun

TARGET = "linux"
ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}
MEGATEST = "[fields]\nOS TEXT\n\n[setup]\nlinktree #{getenv MT_RUN_AREA_HOME}/lt\n"
DONE = State.COMPLETED
PASS = (DONE, Status.PASS)


def area_of(root: Path, tests: dict[str, str]) -> Area:
    files = {"megatest.config": MEGATEST, "runconfigs.config": "[default]\nX 1\n"}
    files.update({f"tests/{name}/testconfig": text for name, text in tests.items()})
    home = write_area(root, files)
    return Area.load(home, env={**ENV, "MT_RUN_AREA_HOME": str(home)})


def ref(test: str, item: str = "") -> TestRef:
    return TestRef(TARGET, "r1", test, item)


def run(
    area: Area, testpatt: str = "%"
) -> tuple[dict[TestRef, tuple[State, Status]], list[StatusChange]]:
    packets: list[StatusPacket] = []
    plan = plan_run(area, TARGET, "r1", testpatt)
    results = LocalRun(plan, Reporter("here", packets.append), kill_grace=1.0).run(timeout=60)
    changes = [p for p in packets if isinstance(p, StatusChange)]
    return results, changes


def when(changes: list[StatusChange], test: str, item: str, state: State) -> int:
    """Where in the stream the instance first reached ``state``."""
    return next(
        n for n, p in enumerate(changes) if (p.test, p.item, p.state) == (test, item, state)
    )


# -- the rules, record by record ---------------------------------------------------------------


def records(name: str, top: tuple[State, Status], **items: tuple[State, Status]) -> Records:
    """A prerequisite's records; ``i1=`` is item ``1``."""
    return Records.of(name, top, {path.removeprefix("i"): rec for path, rec in items.items()})


RUNNING = (State.RUNNING, Status.NA)
WAITING = (State.NOT_STARTED, Status.NA)
FAIL = (DONE, Status.FAIL)


def test_normal_waits_for_the_toplevel_and_fails_at_once_on_a_failed_item() -> None:
    """db.scm:4324-4329 (met when the toplevel is COMPLETED and PASS, WARN, CHECK, WAIVED or
    SKIP); db.scm:4377-4378 and runs.scm:1600-1606, :841-853: otherwise every record of the
    prerequisite counts, so one FAILed item makes the waiter PREQ_FAIL while the others run."""
    normal = frozenset({"normal"})
    going = records("a", RUNNING, i1=PASS, i2=RUNNING)
    assert decide("b", "", normal, None, [going]).verdict is Verdict.WAIT
    done = records("a", PASS, i1=PASS, i2=PASS)
    assert decide("b", "", normal, None, [done]).verdict is Verdict.READY
    failed = records("a", (State.RUNNING, Status.FAIL), i1=FAIL, i2=RUNNING)
    decision = decide("b", "", normal, None, [failed])
    assert decision.verdict is Verdict.PREQ_FAIL
    assert (
        decision.comment
        == "Failed to run due to failed prerequisites: waiton a/1 ended COMPLETED/FAIL"
    )


def test_toplevel_needs_an_end_of_any_kind() -> None:
    """db.scm:4325-4335: in toplevel mode a prerequisite COMPLETED with any status, or
    KILLED (a badly-ended state, common.scm:556), lets the waiter run."""
    toplevel = frozenset({"toplevel"})
    for end in (FAIL, (State.KILLED, Status.KILLED), (State.INCOMPLETE, Status.DEAD)):
        assert decide("b", "", toplevel, None, [records("a", end)]).verdict is Verdict.READY
    assert decide("b", "", toplevel, None, [records("a", RUNNING)]).verdict is Verdict.WAIT


def test_a_killed_prerequisite_blocks_a_normal_waiter() -> None:
    """Different: Megatest keeps a normal-mode waiter of a KILLED prerequisite waiting for
    ever (runs.scm:1609-1620: KILLED is neither a fail nor completed; :795-819 waits);
    nothing can change, so mtpkt ends it NOT_STARTED/PREQ_FAIL."""
    killed = records("a", (State.KILLED, Status.KILLED))
    decision = decide("b", "", frozenset({"normal"}), None, [killed])
    assert decision.verdict is Verdict.PREQ_FAIL
    assert decision.comment.endswith("waiton a ended KILLED/KILLED")


def test_itemwait_waits_item_by_item() -> None:
    """db.scm:4337-4344 and :4375-4376: an item waits for the prerequisite's item of the
    same path; its failure is the item's PREQ_FAIL (runs.scm:1077-1088); the waiter's
    toplevel (whether its items start at all) needs one ended item (db.scm:4321-4322)."""
    wait = frozenset({"itemwait"})
    a = records("a", RUNNING, i1=PASS, i2=FAIL, i3=RUNNING)
    assert decide("b", "", wait, None, [a]).verdict is Verdict.READY
    assert decide("b", "1", wait, None, [a]).verdict is Verdict.READY
    assert decide("b", "2", wait, None, [a]).verdict is Verdict.PREQ_FAIL
    assert decide("b", "3", wait, None, [a]).verdict is Verdict.WAIT
    nothing_yet = records("a", RUNNING, i1=RUNNING)
    assert decide("b", "", wait, None, [nothing_yet]).verdict is Verdict.WAIT


def test_itemmatch_differs_from_itemwait_where_megatest_does() -> None:
    """db.scm:4346-4352 (which the source calls "PROBABLY A BUG"): with itemmatch, an item
    with no same-path item in the prerequisite may run once any of its items ended well;
    with itemwait it waits for the prerequisite's toplevel."""
    a = records("a", RUNNING, i1=PASS, i2=RUNNING)
    assert decide("b", "9", frozenset({"itemmatch"}), None, [a]).verdict is Verdict.READY
    assert decide("b", "9", frozenset({"itemwait"}), None, [a]).verdict is Verdict.WAIT


def test_itemmaps_map_paths_as_the_manual_shows() -> None:
    """manual reference.txt "Itemmap Handling": ``foo(\\d+)/ num-\\1/bar/`` maps foo23/thud to
    num-23/bar/thud; lines apply in order, each to its first match (db.scm:4211-4230); a
    line with no replacement removes; the first itemmap whose test pattern matches is used
    (tests.scm:113-127)."""
    assert ItemMap.parse(r"foo(\d+)/ num-\1/bar/").apply("foo23/thud") == "num-23/bar/thud"
    chained = ItemMap.parse("(a\\d+)(b\\d+) \\2foo\\1\n  b(.*) \\1p")
    assert chained.apply("a123b321") == "321fooa123p"
    assert ItemMap.parse(".*/").apply("foo/bar/baz") == "baz"
    first, second = ItemMap.parse("x/ "), ItemMap.parse("y/ ")
    assert lookup_itemmap([("a%", first), ("%", second)], "abc") is first
    assert lookup_itemmap([("a%", first), ("%", second)], "zzz") is second
    mapped = records("a", RUNNING, i1=PASS)
    wait = frozenset({"itemwait"})
    assert decide("b", "x/1", wait, ItemMap.parse("x/"), [mapped]).verdict is Verdict.READY


# -- end to end on this host -----------------------------------------------------------------

ITEMWAIT = {
    "a": """
        [ezsteps]
        s if [ $N = 2 ]; then exit 1; fi; if [ $N = 3 ]; then sleep 2; fi

        [items]
        N 1 2 3
    """,
    "b": """
        [ezsteps]
        s true

        [requirements]
        waiton a
        mode itemwait

        [items]
        N 1 2 3
    """,
    "mapped": """
        [ezsteps]
        s true

        [requirements]
        waiton a
        mode itemwait
        itemmap x/

        [items]
        P x
        N 1 3
    """,
    "plain": """
        [ezsteps]
        s true

        [requirements]
        waiton a
        mode itemwait
    """,
    "normal": """
        [ezsteps]
        s true

        [requirements]
        waiton a
    """,
}


@pytest.mark.timeout(90)
def test_itemwait_items_run_as_their_prerequisite_items_end(tmp_path: Path) -> None:
    """manual reference.txt "Mode": "A item based waiton will start items in a test when
    the same-named item is COMPLETED and PASS, CHECK or WAIVED in the prior test";
    db.scm:4337-4344 with runs.scm:1077-1088 for the item whose prerequisite failed;
    ``itemmap x/`` removes ``x/`` (reference.txt); a test without items in itemwait mode
    runs once an item ended (db.scm:4321-4322); a normal waiter is PREQ_FAIL as soon as
    an item failed (db.scm:4377-4378, runs.scm:853)."""
    results, changes = run(area_of(tmp_path, ITEMWAIT))
    assert results[ref("b", "1")] == PASS
    assert results[ref("b", "2")] == (State.NOT_STARTED, Status.PREQ_FAIL)
    assert results[ref("b", "3")] == PASS
    assert results[ref("mapped", "x/1")] == PASS
    assert results[ref("mapped", "x/3")] == PASS
    assert results[ref("plain")] == PASS
    assert results[ref("normal")] == (State.NOT_STARTED, Status.PREQ_FAIL)
    a3_done = when(changes, "a", "3", DONE)
    assert when(changes, "b", "1", State.LAUNCHED) < a3_done  # did not wait for all of a
    assert when(changes, "plain", "", State.LAUNCHED) < a3_done
    assert when(changes, "normal", "", State.NOT_STARTED) < a3_done
    assert when(changes, "b", "3", State.LAUNCHED) > a3_done


CHAIN = {
    "A": "[ezsteps]\ns true\n\n[items]\nX aa bb\nN 1 2\n",
    "C": """
        [ezsteps]
        s true

        [requirements]
        waiton A
        mode itemwait

        [itemmap]
        A (\\d+)/aa aa/\\1

        [items]
        N 1 2
        K aa bb
    """,
    "D": """
        [ezsteps]
        s true

        [requirements]
        waiton C
        mode itemwait
        itemmap (\\d+)/res \\1/aa

        [items]
        N 1 2
        R res
    """,
}


def test_a_waiter_named_with_items_brings_only_the_mapped_prerequisite_items(
    tmp_path: Path,
) -> None:
    """manual reference.txt "Complex mapping example": for testpatt D/1/res, C/1/aa and
    A/aa/1 run before it, and nothing else; tests.scm:228-254 (``tests:extend-test-patts``,
    which does this only in itemwait/itemmatch mode, runs.scm:529-534). Without item
    patterns, or for a normal-mode waiter, the prerequisite comes whole (tests.scm:255-262)."""
    area = area_of(tmp_path, CHAIN)
    plan = plan_run(area, TARGET, "r1", "D/1/res")
    chosen = {name: [i.ref.item for i in test.instances] for name, test in plan.tests.items()}
    assert chosen == {"A": ["aa/1"], "C": ["1/aa"], "D": ["1/res"]}
    whole = plan_run(area, TARGET, "r1", "D")
    assert len(whole.tests["A"].instances) == 4
    assert len(whole.tests["C"].instances) == 4


OUTSIDE = {
    "solo": """
        [ezsteps]
        s true

        [requirements]
        waiton nobody solo other
    """,
    "other": "[ezsteps]\ns true\n",
}


@pytest.mark.timeout(60)
def test_a_waiton_outside_the_area_is_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """tests.scm:192-206: Megatest prints "test solo has unrecognised waiton testname
    nobody" and runs without it (fullrun's all_toplevel and db_sync wait on test1 and test2,
    which the area no longer has); a test that waits on itself loses that waiton
    (runs.scm:495-500). A waiton outside the testpatt is brought into the run
    (runs.scm:506-570)."""
    area = area_of(tmp_path, OUTSIDE)
    plan = plan_run(area, TARGET, "r1", "solo")
    assert list(plan.tests) == ["other", "solo"]
    assert plan.tests["solo"].waiton == ("other",)
    assert "solo/testconfig:5: waiton nobody is no test of the area: left out" in caplog.text
    assert "solo/testconfig:5: solo waits on itself: left out" in caplog.text
    results, _ = run(area, "solo")
    assert results == {ref("solo"): PASS, ref("other"): PASS}


KILLED = {
    "slow": "[ezsteps]\ns sleep 3009.1\n\n[requirements]\nruntimelim 1s\n",
    "top": "[ezsteps]\ns true\n\n[requirements]\nwaiton slow\nmode toplevel\n",
    "normal": "[ezsteps]\ns true\n\n[requirements]\nwaiton slow\n",
}


@pytest.mark.timeout(60)
def test_a_killed_prerequisite_lets_a_toplevel_waiter_run(tmp_path: Path) -> None:
    """db.scm:4330-4335 ("Special case for toplevel and KILLED"). A normal waiter ends
    NOT_STARTED/PREQ_FAIL where Megatest would wait for ever (runs.scm:795-819)."""
    results, _ = run(area_of(tmp_path, KILLED))
    assert results[ref("slow")] == (State.KILLED, Status.KILLED)
    assert results[ref("top")] == PASS
    assert results[ref("normal")] == (State.NOT_STARTED, Status.PREQ_FAIL)


def test_exclusive_mode_is_refused_in_one_line(tmp_path: Path) -> None:
    """db.scm:4244-4268: ``exclusive`` waits on the same test running in any run; mtpkt
    cannot honour that yet and says so rather than run the test without it."""
    area = area_of(tmp_path, {"x": "[ezsteps]\ns true\n\n[requirements]\nmode normal exclusive\n"})
    with pytest.raises(ConfigError, match=r"x/testconfig:5: mode exclusive is not supported"):
        plan_run(area, TARGET, "r1")
    area = area_of(tmp_path / "2", {"x": "[ezsteps]\ns true\n\n[requirements]\nmode sometimes\n"})
    with pytest.raises(ConfigError, match=r"mode 'sometimes': expected normal, toplevel"):
        plan_run(area, TARGET, "r1")
