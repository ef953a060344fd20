"""Deferred items: a testconfig's ``[items]`` value ``[system cmd]`` runs when the test comes
up to run, after its prerequisites, with ``MT_TEST_NAME`` and ``MT_RUNNAME`` set.

Megatest reads such a value as a procedure (configf.scm:384-411, ``'return-procs`` when a
run reads testconfigs, runs.scm:481) and calls it in ``runs:expand-items`` only once the
test's prerequisites are met (runs.scm:750-778, from the "EXPAND ITEMS" branch,
runs.scm:1527-1540; items.scm:122-144), having set ``MT_TEST_NAME`` and ``MT_RUNNAME``
(runs.scm:762-763). An empty list makes the test ``NOT_STARTED/ZERO_ITEMS`` (runs.scm:766-773).
Also here: megatest.config is read with the run's target keys, ``MT_TARGET`` and
``MT_RUNNAME`` (megatest.scm:444-445, configf.scm:469-474).
"""

from pathlib import Path

from mtpkt.agents.area import Area, plan_run
from mtpkt.pkts import State, Status
from tests.area.test_items import MEGATEST, TARGET, area_of, ref, run

WRITER = """
    [ezsteps]
    write echo "$MT_RUNNAME-a $MT_RUNNAME-b" > $MT_RUN_AREA_HOME/made.txt
"""
READER = """
    [ezsteps]
    check test "$N" = "$MT_ITEMPATH"

    [requirements]
    waiton writer

    [items]
    N [system cat $MT_RUN_AREA_HOME/made.txt; echo $MT_TEST_NAME]
"""


def test_items_are_made_after_the_prerequisite_wrote_their_file(tmp_path: Path) -> None:
    """runs.scm:750-778 (made when due, MT_TEST_NAME and MT_RUNNAME set), configf.scm:384-411.
    Planning makes none: the file does not exist yet."""
    area = area_of(tmp_path, {"writer": WRITER, "reader": READER})
    plan = plan_run(area, TARGET, "r1")
    assert plan.tests["reader"].deferred
    assert plan.tests["reader"].instances == ()
    results, _ = run(area)
    items = ["r1-a", "r1-b", "reader"]
    assert {r.item for r in results if r.test == "reader"} == {"", *items}
    for item in items:
        assert results[ref("reader", item)] == (State.COMPLETED, Status.PASS)


def test_a_command_that_fails_gives_no_items(tmp_path: Path) -> None:
    """configf.scm:396-406 (the output of a failing command, none), runs.scm:766-773: the test
    is ``NOT_STARTED/ZERO_ITEMS``; the comment says which command failed."""
    reader = READER.replace("cat $MT_RUN_AREA_HOME/made.txt; echo $MT_TEST_NAME", "exit 3")
    area = area_of(tmp_path, {"writer": WRITER, "reader": reader})
    results, comments = run(area)
    assert results[ref("reader")] == (State.NOT_STARTED, Status.ZERO_ITEMS)
    assert "exit 3" in comments[ref("reader")]
    assert results[ref("writer")] == (State.COMPLETED, Status.PASS)


def test_a_blocked_test_never_makes_its_items(tmp_path: Path) -> None:
    """runs.scm:843-853: a test whose prerequisite failed is ``NOT_STARTED/PREQ_FAIL`` and its
    items are never asked for (the command would leave a mark)."""
    writer = "[ezsteps]\nwrite exit 1\n"
    reader = READER.replace("[system cat", "[system touch $MT_RUN_AREA_HOME/asked; cat")
    area = area_of(tmp_path, {"writer": writer, "reader": reader})
    results, _ = run(area)
    assert results[ref("writer")] == (State.COMPLETED, Status.FAIL)
    assert results[ref("reader")] == (State.NOT_STARTED, Status.PREQ_FAIL)
    assert not (area.home / "asked").exists()


def test_a_testpatt_that_takes_the_test_back_leaves_it_out(tmp_path: Path) -> None:
    """``%,~reader``: its items unknown, the ``~`` pattern takes every one of them."""
    area = area_of(tmp_path, {"writer": WRITER, "reader": READER})
    assert list(plan_run(area, TARGET, "r1", "%,~reader").tests) == ["writer"]


def test_megatest_config_sees_the_run_s_keys_target_and_runname(tmp_path: Path) -> None:
    """megatest.scm:444-445 (MT_TARGET set from -target first), configf.scm:469-474 (the
    target's keys set once [fields] is read), launch.scm:1492 (MT_RUNNAME in the test's
    process): ``#{getenv …}`` in megatest.config gives the run's values."""
    megatest = (
        MEGATEST + "\n[env-override]\nSEEN #{getenv OS}:#{getenv MT_TARGET}:#{getenv MT_RUNNAME}\n"
    )
    area = area_of(tmp_path, {"one": "[ezsteps]\ns true\n"})
    (area.home / "megatest.config").write_text(megatest)
    area = Area.load(area.home, env=area.base)
    plan = plan_run(area, TARGET, "r7")
    assert plan.env["SEEN"] == f"{TARGET}:{TARGET}:r7"
