"""testpatt, items, run-dir paths and roll-ups: the pure rules of a run."""

from pathlib import Path

import pytest

from mtpkt.agents.area import Area, plan_run
from mtpkt.agents.area.paths import PathError, check_relative, run_dir
from mtpkt.agents.area.testpatt import SelectionError, TestPatt
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import rollup
from tests.support.farm import write_area


@pytest.mark.parametrize(
    ("patt", "test", "item", "chosen"),
    [
        ("%", "any", "", True),
        ("%", "any", "a/b", True),
        ("runfirst", "runfirst", "summer/a/1", True),  # no slash: every item
        ("runfirst", "runfirst", "", True),
        ("runfirst/", "runfirst", "", True),  # trailing slash: the toplevel only
        ("runfirst/", "runfirst", "summer/a/1", False),
        ("runfirst/summer%", "runfirst", "summer/a/1", True),
        ("runfirst/summer%", "runfirst", "winter/a/1", False),
        ("run%/%/1", "runfirst", "fall/a/1", True),
        ("run_first", "runXfirst", "", False),  # _ is literal, unlike SQL
        ("a,b", "b", "", True),
        ("%,~ez_%", "ez_pass", "", False),  # ~ removes what it matches
        ("%,~ez_%", "runfirst", "", True),
        ("runfirst,~runfirst/winter%", "runfirst", "winter/b/2", False),
        ("runfirst,~runfirst/winter%", "runfirst", "fall/b/2", True),
    ],
)
def test_testpatt_matching(patt: str, test: str, item: str, chosen: bool) -> None:
    assert TestPatt.parse(patt).matches(test, item) is chosen


def test_an_unknown_test_name_is_an_error_not_an_empty_run() -> None:
    patt = TestPatt.parse("runfirst,nosuch/%")
    with pytest.raises(SelectionError, match=r"testpatt 'nosuch/%' matches no test of the area"):
        patt.check_tests(["runfirst", "ez_pass"])
    with pytest.raises(SelectionError, match="has an empty pattern"):
        TestPatt.parse("a,,b")


@pytest.mark.parametrize("item", ["../x", "a/../../b", "/etc", "a//b", "./a", "a/\x00"])
def test_item_paths_cannot_escape(tmp_path: Path, item: str) -> None:
    with pytest.raises(PathError):
        run_dir(tmp_path, "ubuntu/x86", "nightly", "t", item)


@pytest.mark.parametrize(
    ("target", "runname", "test"),
    [
        ("../x", "r", "t"),
        ("a/b", "..", "t"),
        ("a/b", "r", ".."),
        ("a/b", "r", "x/y"),
        ("/a", "r", "t"),
    ],
)
def test_names_cannot_escape(tmp_path: Path, target: str, runname: str, test: str) -> None:
    with pytest.raises(PathError):
        run_dir(tmp_path, target, runname, test)


def test_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    linktree = tmp_path / "lt"
    (linktree / "ubuntu" / "x86").mkdir(parents=True)
    (linktree / "ubuntu" / "x86" / "nightly").symlink_to(tmp_path)  # leads out
    with pytest.raises(PathError, match="leads out of the linktree"):
        run_dir(linktree, "ubuntu/x86", "nightly", "t")
    assert (
        run_dir(linktree, "ubuntu/x86", "other", "t", "a/b") == linktree / "ubuntu/x86/other/t/a/b"
    )
    assert check_relative("item path", "STUCK/DEAD/PASS") == "STUCK/DEAD/PASS"


def test_a_symlink_below_the_run_directory_is_followed(tmp_path: Path) -> None:
    linktree = tmp_path / "lt"
    run = linktree / "ubuntu" / "x86" / "nightly"
    (run / "t").mkdir(parents=True)
    (linktree / "shared").mkdir()
    (run / "t" / "a").symlink_to(tmp_path)  # an item's parent leads out
    with pytest.raises(PathError, match="leads out of the linktree"):
        run_dir(linktree, "ubuntu/x86", "nightly", "t", "a/1")
    (run / "u").symlink_to(linktree / "shared")  # a test dir that stays in the linktree
    assert run_dir(linktree, "ubuntu/x86", "nightly", "u", "a/1") == run / "u" / "a" / "1"
    (run / "file").write_text("")  # nothing below a file can be a link
    assert run_dir(linktree, "ubuntu/x86", "nightly", "file", "x") == run / "file" / "x"


def test_rollup_worst_status_and_bad_endings_count_as_check() -> None:
    done = State.COMPLETED
    assert rollup([(done, Status.PASS), (done, Status.FAIL)]) == (done, Status.FAIL)
    assert rollup([(done, Status.PASS), (State.KILLED, Status.NA)]) == (done, Status.CHECK)
    assert rollup([(done, Status.PASS), (State.KILLED, Status.KILLED)]) == (done, Status.CHECK)
    assert rollup([(done, Status.PASS), (State.RUNNING, Status.NA)]) == (State.RUNNING, Status.PASS)
    assert rollup([(State.NOT_STARTED, Status.NA)] * 2) == (State.NOT_STARTED, Status.NA)
    assert rollup([(done, Status.PASS), (State.NOT_STARTED, Status.NA)])[0] is State.RUNNING


def test_an_item_part_that_matches_no_item_is_refused_with_the_items() -> None:
    """Different from Megatest, on purpose: Megatest marks such a test NOT_STARTED/ZERO_ITEMS
    and runs only its prerequisites (runs.scm:1491-1500); a typo in an item is refused
    like a test name that matches nothing."""
    items = {"unit": ["alpha", "beta", "gamma"], "other": [""], "none": []}
    with pytest.raises(
        SelectionError,
        match=r"^testpatt 'unit/gama' matches no item of the tests it names"
        r" \(unit: alpha, beta, gamma\)$",
    ):
        TestPatt.parse("unit/gama").check_items(items)
    with pytest.raises(SelectionError, match=r"\(unit: alpha, beta, gamma\)"):
        TestPatt.parse("unit/").check_items(items)  # the toplevel of an itemized test only
    with pytest.raises(SelectionError, match=r"\(none: no items\)"):
        TestPatt.parse("none/x").check_items(items)
    with pytest.raises(SelectionError, match=r"\(other: \(none: not itemized\)\)"):
        TestPatt.parse("other/x").check_items(items)
    for fine in ("unit/g%", "unit", "%/", "other/", "unit/alpha,~unit/beta", "~unit/nosuch,%"):
        TestPatt.parse(fine).check_items(items)


def test_a_target_without_a_runconfigs_section_is_a_warning_naming_the_sections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Megatest's -target takes [default] alone without a word when no section matches
    (runs.scm:2349-2350; only -reqtarg refuses, :2339-2347); mtpkt warns, naming the
    sections there are. An area whose runconfigs.config has only [default] is not warned."""
    files = {
        "megatest.config": "[fields]\nOS TEXT\nARCH TEXT\n",
        "runconfigs.config": "[default]\nX 1\n\n[linux/arm]\nY 2\n\n[bsd/%]\nZ 3\n",
        "tests/t/testconfig": "[ezsteps]\ns true\n",
    }
    area = Area.load(write_area(tmp_path, files), env={"PATH": "/bin"})
    plan_run(area, "linux/x86", "r1")
    assert (
        f"{tmp_path}/runconfigs.config: target linux/x86 matches no section"
        " (sections: linux/arm): only [default] applies"
    ) in caplog.text
    caplog.clear()
    plan_run(area, "linux/arm", "r1")
    plan_run(area, "bsd/x86", "r1")  # matched by the wildcard section
    assert "matches no section" not in caplog.text
