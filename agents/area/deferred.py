"""Deferred items: a test whose ``[items]`` come from ``[system …]`` commands gets them late.

Megatest reads a testconfig's ``key [system cmd]`` value as a procedure
(configf.scm:384-411, ``'return-procs`` when a run reads testconfigs,
runs.scm:481) and calls it only when it expands the test's items
(``items:get-items-from-config``, items.scm:122-144). It expands them when the
test comes up to run, once its prerequisites would let it start
(``runs:expand-items``, runs.scm:750-778, reached from the "EXPAND ITEMS"
branch, runs.scm:1527-1540), with ``MT_TEST_NAME`` and ``MT_RUNNAME`` set
(runs.scm:762-764). So an item list a prerequisite writes (fullrun's
``test_mt_vars``: ``NUMNUM [system cat …/$PREDICTABLE]``, a file ``runfirst``
writes) is read after that prerequisite ran.

mtpkt does the same for such tests: planning gives them no instances (their
toplevel record waits, ``NOT_STARTED``), and their items are made when their
prerequisites allow them to start (:meth:`~mtpkt.agents.area.plan.Plan.expand`).
Items written out (``SEASON summer winter``) or made by ``#{shell}``,
``#{system}`` and ``#{scheme}`` are known when the testconfig is read, in
mtpkt as in Megatest (configf.scm:87-140 runs them as the line is read), and
are planned at once.

Megatest v1.65 in fact expands *every* test this late: ``tests:get-items``
(tests.scm:130-155) means to return ``'have-procedure`` only for a list
holding a procedure, but its ``filter`` returns a list, and an empty list is
true in Scheme, so every test takes that branch. The difference shows only
for an itemized test whose prerequisites fail: Megatest records just its
toplevel (``NOT_STARTED/PREQ_FAIL``), mtpkt its items too. mtpkt keeps items it
can know at planning time, so that a testpatt naming an item that does not
exist is refused before anything runs.
"""

from collections.abc import Mapping
from pathlib import Path

from mtpkt.agents.area.configdata import Deferred
from mtpkt.agents.area.items import Item
from mtpkt.agents.area.model import TestConfig
from mtpkt.agents.area.selection import Selection
from mtpkt.agents.area.testpatt import glob

__all__ = ["ITEM_SECTIONS", "has_deferred_items", "left_out", "make_items"]

ITEM_SECTIONS = ("items", "itemstable")
"""The sections a test's items come from."""

_EVERY_ITEM = glob("%").pattern


def has_deferred_items(test: TestConfig) -> bool:
    """Whether one of the test's item values is a ``[system …]`` command (made late)."""
    return any(
        isinstance(entry.value, Deferred)
        for section in ITEM_SECTIONS
        for entry in test.config.sections.get(section, {}).values()
    )


def make_items(test: TestConfig, env: Mapping[str, str], cwd: Path) -> list[Item]:
    """The test's items, its ``[system …]`` values run now (:meth:`TestConfig.items
    <mtpkt.agents.area.model.TestConfig.items>`), with ``MT_TEST_NAME`` set as Megatest sets
    it before it expands them (runs.scm:762); ``env`` is the run's (``MT_RUNNAME`` …).

    Raises:
        ConfigError: a value cannot be computed (its command failed …).
    """
    return test.items({**env, "MT_TEST_NAME": test.name}, cwd)


def left_out(chosen: Selection, name: str) -> bool:
    """Whether a test whose items are not known yet is left out of the run.

    :meth:`Selection.excluded <mtpkt.agents.area.selection.Selection.excluded>` needs the
    items; without them a test the testpatt names (and no waiter needs) is left out only
    when a ``~`` pattern that takes every item of it comes after every pattern selecting
    some (``%,~test_mt_vars``). Otherwise it stays, and items the testpatt selects none of
    make it ``NOT_STARTED/ZERO_ITEMS`` when they are made, as in Megatest (runs.scm:1496-1500).
    """
    choice = chosen.choices[name]
    if not choice.named or choice.whole or choice.patterns:
        return False
    selected = False
    for pattern in chosen.patt.patterns:
        if not pattern.test.fullmatch(name):
            continue
        if not pattern.exclude:
            selected = True
        elif pattern.item.pattern == _EVERY_ITEM:
            selected = False
    return not selected
