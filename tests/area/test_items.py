"""Items as Megatest makes them, and what becomes of a test with none.

Each test cites the Megatest source (../shared/megatest-examples/source) it is
compared with.
"""

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtpkt.agents.area import Area, TestRef, plan_run
from mtpkt.agents.area.items import Item, combine, cross_product, table_rows
from mtpkt.agents.area.plan import ZERO_ITEMS_COMMENT
from mtpkt.agents.area.waiton import PREQ_DISCARDED_COMMENT
from mtpkt.agents.host import Reporter
from mtpkt.pkts import State, Status
from mtpkt.pkts.status import StatusChange, StatusPacket
from tests.support.farm import write_area
from tests.support.local import LocalRun

TARGET = "linux"
ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}
MEGATEST = "[fields]\nOS TEXT\n\n[setup]\nlinktree #{getenv MT_RUN_AREA_HOME}/lt\n"


def area_of(root: Path, tests: dict[str, str]) -> Area:
    files = {"megatest.config": MEGATEST, "runconfigs.config": "[default]\nX 1\n"}
    files.update({f"tests/{name}/testconfig": text for name, text in tests.items()})
    home = write_area(root, files)
    return Area.load(home, env={**ENV, "MT_RUN_AREA_HOME": str(home)})


def run(
    area: Area, testpatt: str = "%"
) -> tuple[dict[TestRef, tuple[State, Status]], dict[TestRef, str]]:
    """Run the area on this host; the results, and the last comment of every record."""
    packets: list[StatusPacket] = []
    plan = plan_run(area, TARGET, "r1", testpatt)
    results = LocalRun(plan, Reporter("here", packets.append), kill_grace=1.0).run(timeout=60)
    comments = {
        TestRef(p.target, p.runname, p.test, p.item): p.comment
        for p in packets
        if isinstance(p, StatusChange)
    }
    return results, comments


def ref(test: str, item: str = "") -> TestRef:
    return TestRef(TARGET, "r1", test, item)


# -- the item list --------------------------------------------------------------------------


def test_items_vary_the_first_variable_slowest() -> None:
    """items.scm:22-38 (process-itemlist) and the example at :40-44."""
    items = cross_product([("ANIMAL", ["Elephant", "Lion"]), ("SEASON", ["Spring", "Fall"])])
    assert [item.path for item in items] == [
        "Elephant/Spring",
        "Elephant/Fall",
        "Lion/Spring",
        "Lion/Fall",
    ]


def test_itemstable_zips_columns_padding_short_ones() -> None:
    """items.scm:77-110 (item-table->item-list): row by row, a short column gives "-"."""
    rows = table_rows([("BLOCK", ["a", "b", "c"]), ("TOCK", ["1", "2"])])
    assert [row.path for row in rows] == ["a/1", "b/2", "c/-"]


def test_items_and_itemstable_are_appended_not_crossed() -> None:
    """items.scm:139-142: ``(append (item-assoc->item-list items) (item-table->item-list
    itemstable))`` -- fullrun's runfirst has 4 seasons and a 2-row table: 6 items."""
    items = [("SEASON", ["summer", "winter", "fall", "spring"])]
    table = [("BLOCK", ["a", "b"]), ("TOCK", ["1", "2"])]
    combined = combine(items, table)
    assert [item.path for item in combined] == [
        "summer",
        "winter",
        "fall",
        "spring",
        "a/1",
        "b/2",
    ]
    assert combined[4].variables == (("BLOCK", "a"), ("TOCK", "1"))


def test_a_variable_without_values_makes_no_items_but_the_table_still_does() -> None:
    """items.scm:22-38: no values, no combination; :144-147 appends the table's rows."""
    assert combine([("FOO", [])], None) == []
    assert [item.path for item in combine([("FOO", [])], [("B", ["x"])])] == ["x"]
    assert combine([("FOO", [])], [("B", [])]) == []


def test_no_sections_or_empty_ones_make_one_plain_instance() -> None:
    """items.scm:139-142: with no entries in either section the result is ``'(())``, one
    instance with no item (fullrun's wait_no_items1 and dynamic_waiton have an empty
    ``[items]``)."""
    assert combine(None, None) == [Item()]
    assert combine([], []) == [Item()]


@given(
    st.lists(st.tuples(st.text(min_size=1), st.lists(st.text(min_size=1), max_size=3)), max_size=3),
    st.lists(st.tuples(st.text(min_size=1), st.lists(st.text(min_size=1), max_size=3)), max_size=3),
)
def test_the_count_is_the_product_plus_the_rows(
    items: list[tuple[str, list[str]]], table: list[tuple[str, list[str]]]
) -> None:
    """items.scm:139-142: combinations, then rows."""
    product = 1
    for _, values in items:
        product *= len(values)
    rows = max((len(values) for _, values in table), default=0)
    expected = (product if items else 0) + rows if items or table else 1
    assert len(combine(items, table)) == expected


# -- item values from commands ---------------------------------------------------------------


def test_item_values_from_shell_system_and_a_system_value(tmp_path: Path) -> None:
    """configf.scm:81-140 (#{shell}, #{system} expanded as the line is read) and
    configf.scm:383-412 (``[system ...]`` values, computed when the items are asked for,
    items.scm:125-136), made when the test comes up to run (runs.scm:750-778)."""
    area = area_of(
        tmp_path,
        {
            "t": """
                [ezsteps]
                s true

                [items]
                A #{shell echo x y}
                B #{system exit 3}
                C [system echo p q | tr a-z A-Z]
            """,
        },
    )
    plan = plan_run(area, TARGET, "r1")
    assert plan.tests["t"].deferred
    assert not plan.tests["t"].instances
    paths = [i.ref.item for i in plan.expand("t").instances]
    assert paths == ["x/3/P", "x/3/Q", "y/3/P", "y/3/Q"]


@pytest.mark.skipif(
    importlib.util.find_spec("mtpkt.agents.area.scheme") is None,
    reason="#{scheme} comes with agents/area/scheme (another change)",
)
def test_item_values_from_scheme(tmp_path: Path) -> None:
    """items.scm:125-136 and configf.scm (#{scheme}): the values are the expression's, read
    through the same resolver as every other value."""
    area = area_of(
        tmp_path,
        {"t": '[ezsteps]\ns true\n\n[items]\nA #{scheme (string-append "p" " " "q")}\n'},
    )
    plan = plan_run(area, TARGET, "r1")
    assert [i.ref.item for i in plan.tests["t"].instances] == ["p", "q"]


# -- no items -------------------------------------------------------------------------------


NO_ITEMS = {
    "no_items": "[ezsteps]\nlistfiles ls\n\n[items]\nFOO\n",
    "wait1": "[ezsteps]\nlistfiles ls\n\n[requirements]\nwaiton no_items\n\n[items]\n",
    "wait2": "[ezsteps]\nlistfiles ls\n\n[requirements]\nwaiton wait1\n",
    "top": "[ezsteps]\nlistfiles ls\n\n[requirements]\nwaiton no_items\nmode toplevel\n",
    "fine": "[ezsteps]\nlistfiles ls\n",
    "late": "[ezsteps]\ns true\n\n[requirements]\nwaiton nofail\n\n[items]\nFOO\n",
    "nofail": "[ezsteps]\ns exit 1\n",
}


@pytest.mark.timeout(90)
def test_a_test_without_items_is_zero_items_and_its_dependents_are_discarded(
    tmp_path: Path,
) -> None:
    """runs.scm:773 and :1496-1500: an item list that is empty leaves the test
    ``NOT_STARTED/ZERO_ITEMS``, "This test has no items which match test pattern." (the
    comment Megatest writes last). runs.scm:1608-1614 and :841-853: a normal-mode waiter
    of a NOT_STARTED test with such a status is PREQ_DISCARDED, and so is its own waiter;
    fullrun's release check (tests/release/tests/fullrun/results.logpro, nost-specs)
    expects wait_no_items1-4 ``NOT_STARTED/PREQ_DISCARDED``. A toplevel waiter gives up
    the same way (runs.scm:799-812). The test with no items waits on its prerequisites
    like any test and is ZERO_ITEMS only once they would let it start (runs.scm:755-775);
    when one fails first it is PREQ_FAIL (runs.scm:841-853)."""
    results, comments = run(area_of(tmp_path, NO_ITEMS))
    assert results == {
        ref("no_items"): (State.NOT_STARTED, Status.ZERO_ITEMS),
        ref("wait1"): (State.NOT_STARTED, Status.PREQ_DISCARDED),
        ref("wait2"): (State.NOT_STARTED, Status.PREQ_DISCARDED),
        ref("top"): (State.NOT_STARTED, Status.PREQ_DISCARDED),
        ref("fine"): (State.COMPLETED, Status.PASS),
        ref("nofail"): (State.COMPLETED, Status.FAIL),
        ref("late"): (State.NOT_STARTED, Status.PREQ_FAIL),
    }
    assert comments[ref("no_items")] == ZERO_ITEMS_COMMENT
    assert comments[ref("wait1")] == (
        f"{PREQ_DISCARDED_COMMENT}: waiton no_items is NOT_STARTED/ZERO_ITEMS"
    )
    assert comments[ref("wait2")].startswith(PREQ_DISCARDED_COMMENT)


def test_a_zero_items_test_logs_where_its_empty_item_list_comes_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """items.scm:137-138 warns of an ``[items]`` section without entries; mtpkt names the
    line of the variable without values."""
    plan = plan_run(area_of(tmp_path, NO_ITEMS), TARGET, "r1", "no_items")
    assert not plan.tests["no_items"].instances
    assert "no_items/testconfig:5: [items] gives no items: no_items is ZERO_ITEMS" in caplog.text


FULLRUN = Path(__file__).resolve().parents[3] / "shared" / "megatest-examples" / "tests" / "fullrun"


@pytest.mark.timeout(90)
def test_fullruns_no_items_tests_end_as_megatests_release_check_expects(tmp_path: Path) -> None:
    """tests/release/tests/fullrun/results.logpro: ``no_items`` NOT_STARTED/ZERO_ITEMS
    ("no items") and ``wait_no_items1``-``4`` NOT_STARTED/PREQ_DISCARDED (nost-specs),
    with fullrun's own testconfigs."""
    names = ["no_items", *(f"wait_no_items{n}" for n in range(1, 5))]
    tests = {name: (FULLRUN / "tests" / name / "testconfig").read_text() for name in names}
    results, _ = run(area_of(tmp_path, tests))
    assert results == {
        ref("no_items"): (State.NOT_STARTED, Status.ZERO_ITEMS),
        **{ref(name): (State.NOT_STARTED, Status.PREQ_DISCARDED) for name in names[1:]},
    }
