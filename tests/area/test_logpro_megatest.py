"""logpro over Megatest's own rule files (../shared/megatest-examples).

Every .logpro file there and every testconfig's inline [logpro] rules are read
without error; Megatest's statement of how fullrun ends (release/tests/fullrun/
results.logpro) judges a listing written to match it PASS, and one with a test
left RUNNING FAIL.
"""

import os
from pathlib import Path
from typing import Final

import pytest

from mtpkt.agents.area.config import read_config
from mtpkt.agents.area.logpro import Code, judge, load_rules, read_rules

EXAMPLES: Final = Path(__file__).resolve().parents[3] / "shared" / "megatest-examples"
ENV: Final = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}
RULE_FILES: Final = sorted(EXAMPLES.rglob("*.logpro"))
INLINE: Final = sorted(
    path for path in EXAMPLES.rglob("testconfig") if "[logpro]" in path.read_text(errors="replace")
)


def test_the_examples_are_there() -> None:
    assert len(RULE_FILES) >= 30
    assert len(INLINE) >= 3


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_rule_file_reads(path: Path) -> None:
    """Each of Megatest's .logpro files reads, and judges an empty log without error."""
    rules = load_rules(path)
    judge(rules, [])


@pytest.mark.parametrize("path", INLINE, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_inline_logpro_section_reads(path: Path) -> None:
    """launch.scm:100-114 writes a testconfig's [logpro] entry to <step>.logpro."""
    config, _ = read_config(path, env=ENV, allow_commands=False)
    steps = config.sections.get("ezsteps", {})
    read = 0
    for step, entry in config.sections["logpro"].items():
        if step in steps:  # only a step's entry becomes a rule file
            rules = read_rules(str(entry.value), entry.origin.path, entry.origin.line)
            assert rules.expects
            read += 1
    assert read


def _listing(statuses: dict[str, tuple[str, str, int]]) -> list[str]:
    """Lines as results.logpro's regexes expect them (one per test, `Test: NAME …`)."""
    return [
        f"  Test: {name}  State: {state}  Status: {status}  Runtime: 3s"
        for name, (state, status, count) in statuses.items()
        for _ in range(count)
    ]


def test_fullrun_results_logpro_judges_a_listing() -> None:
    """release/tests/fullrun/results.logpro: each named test in its state and status,
    counted; anything else is "Tests not accounted for"."""
    rules = load_rules(EXAMPLES / "tests" / "release" / "tests" / "fullrun" / "results.logpro")
    passes = (
        "exit_0 ezlog_fail_then_pass ezlog_pass ez_pass lineitem_pass priority_1 priority_10 "
        "priority_10_waiton_1 priority_3 priority_4 priority_6 priority_8 priority_9 "
        "singletest singletest2 special test1"
    ).split()
    fails = (
        "exit_1 ez_exit2_fail ez_fail ez_fail_quick ezlog_fail lineitem_fail "
        "logpro_required_fail manual_example neverrun"
    ).split()
    statuses = {name: ("COMPLETED", "PASS", 1) for name in passes}
    statuses |= {"runfirst": ("COMPLETED", "PASS", 7), "sqlitespeed": ("COMPLETED", "PASS", 10)}
    statuses |= {"test2": ("COMPLETED", "PASS", 6), "test_mt_vars": ("COMPLETED", "PASS", 6)}
    statuses |= {name: ("COMPLETED", "FAIL", 1) for name in fails}
    statuses |= {"ezlog_warn": ("COMPLETED", "WARN", 1)}
    statuses |= {f"wait_no_items{n}": ("NOT_STARTED", "PREQ_DISCARDED", 1) for n in range(1, 5)}
    special = [
        "  Test: priority_2  State: KILLED  Status: KILLED  Runtime: 3s",
        "  Test: priority_5  State: COMPLETED  Status: SKIP  Runtime: 3s",
        "  Test: priority_7  State: COMPLETED  Status: PASS  Runtime: 3s",
        "  Test: testxz  State: NOT_STARTED  Status: n/a  Runtime: 0s",
        "  Test: no_items  State: NOT_STARTED  Status: ZERO_ITEMS  Runtime: 0s",
        "  Test: dynamic_waiton  State: COMPLETED  Status: PASS  Runtime: 3s",
        "  Test: db_sync  State: COMPLETED  Status: PASS  Runtime: 3s",
    ] + [f"  Test: blocktestxz/{n}  State: COMPLETED  Status: PASS  Runtime: 1s" for n in range(29)]
    lines = _listing(statuses) + special
    result = judge(rules, lines)
    assert result.code is Code.PASS, result.message
    running = "  Test: exit_0  State: RUNNING  Status: n/a  Runtime: 3s"
    assert judge(rules, [*lines, running]).code is Code.FAIL
    assert judge(rules, lines[1:]).code is Code.FAIL  # exit_0 missing
