"""What Megatest's release check requires of every ``fullrun`` test, read from its own file.

``tests/release/tests/fullrun/results.logpro`` runs logpro over ``megatest -list-runs``
after a full run: each of its lists (pass, fail, warn, PREQ_DISCARDED) names a test and how
many of its records (the toplevel and every item) must end with that state and status
(results.logpro:7-51, 53-58, 76-95), then special cases (:63-72) and a catch-all that every
record is accounted for (:98). :func:`problems` checks the same of mtpkt's records, row by
row, and says which rows do not hold.

Two differences from the file, both because it describes an older copy of the area:

* ``test1`` and ``test2`` (pass list, :28-29) are not in the area: there is nothing to run,
  so their rows are checked to be absent instead (:data:`ABSENT`).
* ``ez_pass_linked`` (a link to ``ez_pass``) is in no list, so the catch-all would flag it;
  it is held to ``ez_pass``'s row, as what it runs is ``ez_pass``'s.
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = [
    "ABSENT",
    "ITEMS",
    "LISTS",
    "RESULTS",
    "Records",
    "item_problems",
    "problems",
    "read_specs",
]

RESULTS: Final = (
    Path(__file__).resolve().parents[3]
    / "shared/megatest-examples/tests/release/tests/fullrun/results.logpro"
)
"""Megatest's release check of fullrun."""
_SEASONS: Final = ["summer", "winter", "fall", "spring"]
_STATES: Final = "UNKNOWN INCOMPLETE KILLED KILLREQ STUCK BOZZLEBLONKED STUCK/DEAD".split()
_STATUSES: Final = "PASS FAIL STUCK/DEAD SKIP".split()
ITEMS: Final = {
    # results.logpro:23, 7 records: [items] SEASON and [itemstable] rows appended (items.scm)
    "runfirst": [*_SEASONS, "a/1", "b/2"],
    # results.logpro:27, 10 records: [system (env > envfile.txt;echo aa … ai)]
    "sqlitespeed": [f"a{c}" for c in "abcdefghi"],
    # results.logpro:30, 6 records: the_ans, "1 2 3 4 5" (runfirst's main.sh)
    "test_mt_vars": ["1", "2", "3", "4", "5"],
    # results.logpro:72, 29 records: each THESTATE with each THESTATUS
    "blocktestxz": [f"{state}/{status}" for state in _STATES for status in _STATUSES],
}
"""Item paths of the itemized tests; each count plus the toplevel is results.logpro's."""

Records = Mapping[tuple[str, str], tuple[str, str]]
"""(test, item) → (state, status) of every record of the run."""

LISTS: Final = {
    "pass-specs": ("COMPLETED", "PASS"),
    "fail-specs": ("COMPLETED", "FAIL"),
    "warn-specs": ("COMPLETED", "WARN"),
    "nost-specs": ("NOT_STARTED", "PREQ_DISCARDED"),
}
"""Each list of results.logpro and the state and status it requires (:76-95)."""
ABSENT: Final = frozenset({"test1", "test2"})
ALIASES: Final = {"ez_pass_linked": "ez_pass"}
IGNORED: Final = frozenset({"db_sync", "all_toplevel"})
"""``expect:ignore`` (:63-64): may have run or not, with any verdict."""


def _without_comments(text: str) -> str:
    return "\n".join(line.split(";", 1)[0] for line in text.splitlines())


def read_specs(results_logpro: Path) -> dict[str, dict[str, int]]:
    """Each list's ``(testname count max-runtime)`` rows: list name → test → count."""
    text = _without_comments(results_logpro.read_text())
    specs: dict[str, dict[str, int]] = {}
    for name in LISTS:
        opening = re.search(rf"\(define\s+{name}\s+'\(", text)
        assert opening is not None, f"results.logpro has no list {name}"
        start = opening.end()
        depth, end = 1, start
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        rows = re.findall(r'\(\s*"([^"]+)"\s+(\d+)\s+\d+\s*\)', text[start : end - 1])
        specs[name] = {test: int(count) for test, count in rows}
    return specs


def _count(records: Records, test: str, state: str, status: str) -> int:
    return sum(1 for (name, _), seen in records.items() if name == test and seen == (state, status))


def _list_problems(records: Records, specs: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The rows of the four lists (and ``ez_pass_linked``, held to ``ez_pass``) that fail."""
    names = {test for test, _ in records}
    found: list[str] = []
    for list_name, (state, status) in LISTS.items():
        for test, count in specs[list_name].items():
            if test in ABSENT:
                if test in names:
                    found.append(f"{test}: in the run, but not in the area")
                continue
            got = _count(records, test, state, status)
            if got != count:
                found.append(f"{test}: {got} records {state}/{status}, {list_name} wants {count}")
    for alias, test in ALIASES.items():
        passed = _count(records, test, "COMPLETED", "PASS")
        if _count(records, alias, "COMPLETED", "PASS") != passed:
            found.append(f"{alias}: does not end as {test} does")
    return found


def _special_cases(records: Records) -> dict[str, bool]:
    """results.logpro:66-72: test → whether its special case holds."""

    def records_of(test: str) -> list[tuple[str, str]]:
        return [seen for (name, _), seen in records.items() if name == test]

    def completed_pass_or_skip(test: str) -> bool:
        return records_of(test) == [("COMPLETED", "PASS")] or records_of(test) == [
            ("COMPLETED", "SKIP")
        ]

    return {
        "priority_2": records_of("priority_2") == [("KILLED", "KILLED")],
        "priority_5": completed_pass_or_skip("priority_5"),
        "priority_7": completed_pass_or_skip("priority_7"),
        "testxz": [state for state, _ in records_of("testxz")] == ["NOT_STARTED"],
        "no_items": records_of("no_items") == [("NOT_STARTED", "ZERO_ITEMS")],
        "blocktestxz": len(records_of("blocktestxz")) == 29,
        "dynamic_waiton": True,  # expect:warning (:71): any count only warns
    }


def problems(records: Records, specs: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Every row of results.logpro that ``records`` break, one line each; empty when all hold."""
    found = _list_problems(records, specs)
    special = _special_cases(records)
    for test, holds in special.items():
        if not holds:
            shown = sorted(seen for (name, _), seen in records.items() if name == test)
            found.append(f"{test}: {shown} breaks results.logpro's special case")
    running = sorted(key for key, (state, _) in records.items() if state == "RUNNING")
    if running:
        found.append(f"left RUNNING (results.logpro:65): {running}")
    accounted = {*IGNORED, *ALIASES, *special, *(t for rows in specs.values() for t in rows)}
    unaccounted = sorted({test for test, _ in records} - accounted)
    if unaccounted:
        found.append(f"not accounted for (results.logpro:98): {unaccounted}")
    return found


def item_problems(records: Records) -> list[str]:
    """The itemized tests whose item paths are not :data:`ITEMS`'s."""
    found = []
    for test, items in ITEMS.items():
        have = sorted(item for name, item in records if name == test and item)
        if have != sorted(items):
            found.append(f"{test}: items {have}, results.logpro wants {sorted(items)}")
    return found
