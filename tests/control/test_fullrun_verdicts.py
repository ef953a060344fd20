"""The reading of Megatest's release check (tests/control/fullrun_verdicts.py) itself."""

from tests.control.fullrun_verdicts import ABSENT, LISTS, RESULTS, Records, problems, read_specs


def _as_required() -> Records:
    """Records that keep every row of results.logpro."""
    records: dict[tuple[str, str], tuple[str, str]] = {}
    for name, rows in read_specs(RESULTS).items():
        for test, count in rows.items():
            if test not in ABSENT:
                items = ["" if n == 0 else f"i{n}" for n in range(count)]
                records.update({(test, item): LISTS[name] for item in items})
    records[("ez_pass_linked", "")] = ("COMPLETED", "PASS")
    records[("priority_2", "")] = ("KILLED", "KILLED")
    records[("priority_5", "")] = ("COMPLETED", "SKIP")
    records[("priority_7", "")] = ("COMPLETED", "PASS")
    records[("testxz", "")] = ("NOT_STARTED", "n/a")
    records[("no_items", "")] = ("NOT_STARTED", "ZERO_ITEMS")
    records.update({("blocktestxz", f"i{n}"): ("COMPLETED", "FAIL") for n in range(29)})
    records[("db_sync", "")] = ("COMPLETED", "FAIL")
    return records


def test_the_lists_are_read_with_their_counts() -> None:
    specs = read_specs(RESULTS)
    assert specs["pass-specs"]["runfirst"] == 7
    assert specs["pass-specs"]["sqlitespeed"] == 10
    assert "priority_5" not in specs["pass-specs"]  # commented out in the file
    assert len(specs["fail-specs"]) == 9
    assert specs["warn-specs"] == {"ezlog_warn": 1}
    assert set(specs["nost-specs"]) == {f"wait_no_items{n}" for n in range(1, 5)}


def test_records_as_required_have_no_problem() -> None:
    assert problems(_as_required(), read_specs(RESULTS)) == []


def test_each_kind_of_broken_row_is_named() -> None:
    records = dict(_as_required())
    records[("logpro_required_fail", "")] = ("COMPLETED", "PASS")  # the worst: PASS for FAIL
    records[("priority_2", "")] = ("KILLED", "ABORT")
    records[("runfirst", "i3")] = ("RUNNING", "n/a")
    records[("stray", "")] = ("COMPLETED", "PASS")
    found = problems(records, read_specs(RESULTS))
    assert len(found) == 5, found
    assert "logpro_required_fail: 0 records COMPLETED/FAIL, fail-specs wants 1" in found
    assert any(line.startswith("runfirst: 6 records") for line in found)
    assert any(line.startswith("priority_2:") for line in found)
    assert any("left RUNNING" in line for line in found)
    assert found[-1] == "not accounted for (results.logpro:98): ['stray']"
