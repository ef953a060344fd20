"""testpatt, items, run-dir paths and roll-ups: the pure rules of a run."""

from pathlib import Path

import pytest

from mtpkt.agents.area.paths import PathError, check_relative, run_dir
from mtpkt.agents.area.testpatt import SelectionError, TestPatt
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import rollup


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
    assert rollup([(done, Status.PASS), (State.KILLED, Status.ABORT)]) == (done, Status.ABORT)
    assert rollup([(done, Status.PASS), (State.RUNNING, Status.NA)]) == (State.RUNNING, Status.PASS)
    assert rollup([(State.NOT_STARTED, Status.NA)] * 2) == (State.NOT_STARTED, Status.NA)
    assert rollup([(done, Status.PASS), (State.NOT_STARTED, Status.NA)])[0] is State.RUNNING
