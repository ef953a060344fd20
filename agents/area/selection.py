"""Which tests and items a run has: the testpatt's, and what they wait on.

As Megatest's ``runs:run-tests`` does (runs.scm:440-578):

* every test the testpatt names is in the run, with the items it selects;
* every test one of them waits on comes too, transitively, with every item
  (tests.scm:255-262), however the testpatt treats it: a prerequisite is
  never left out;
* except in ``itemwait``/``itemmatch`` mode, where a waiter named with item
  patterns (``D/1/res``) brings only the prerequisite's items those patterns
  give, mapped by the waiter's itemmap for that prerequisite
  (``tests:extend-test-patts``, tests.scm:228-254; manual ``reference.txt``,
  "Complex mapping example");
* a waiton naming no test of the area is dropped with a warning, as Megatest
  drops it with an error message and runs on (tests.scm:192-206: fullrun's
  ``all_toplevel`` waits on ``test1`` and ``test2``, which it no longer has);
  so is a test waiting on itself (runs.scm:495-500).
"""

import graphlib
from collections.abc import Mapping, Sequence

import attrs

from mtpkt.agents.area.config import ConfigError, Origin
from mtpkt.agents.area.model import TestConfig
from mtpkt.agents.area.testpatt import TestPatt, glob
from mtpkt.agents.area.waiton import ITEM_MODES, ItemMap, lookup_itemmap

__all__ = ["Selection", "itemmaps_of", "select"]

_ItemMaps = Mapping[str, list[tuple[str, "ItemMap"]]]


@attrs.define
class _Choice:
    named: bool = False
    """The testpatt names the test: its patterns select the items."""
    whole: bool = False
    """Every item runs (a prerequisite of a waiter that is not item-wise)."""
    patterns: set[str] = attrs.field(factory=set)
    """Item patterns a waiter in itemwait mode brought (``%`` a wildcard)."""


@attrs.frozen
class Selection:
    """The tests of a run, what each waits on, and which of their items run."""

    patt: TestPatt
    choices: Mapping[str, _Choice]
    waitons: Mapping[str, tuple[str, ...]]
    """Each test's prerequisites, unknown names and itself left out."""
    notes: tuple[str, ...]
    """Warnings for the home's log: the waitons left out."""

    def named(self, test: str) -> bool:
        """Whether the testpatt names ``test`` (rather than only a waiter bringing it)."""
        return self.choices[test].named

    def excluded(self, test: str, items: Sequence[str]) -> bool:
        """Whether ``test`` is left out of the run: named by a pattern that a ``~`` pattern
        takes back for its toplevel and every item, and needed by no waiter."""
        choice = self.choices[test]
        if not choice.named or choice.whole or choice.patterns:
            return False
        return not any(self.patt.matches(test, item) for item in (*items, ""))

    def selects(self, test: str, item: str) -> bool:
        """Whether instance ``test``/``item`` is in the run."""
        choice = self.choices[test]
        if choice.whole or (choice.named and self.patt.matches(test, item)):
            return True
        return any(glob(pattern).fullmatch(item) for pattern in choice.patterns)


def select(
    patt: TestPatt, known: list[str], read: Mapping[str, TestConfig], itemmaps: _ItemMaps
) -> Selection:
    """The tests ``patt`` names, plus (transitively) every test they wait on.

    Args:
        patt: the run's testpatt, checked to name tests of the area.
        known: every test of the area.
        read: each test's testconfig, read on first use.
        itemmaps: each test's itemmaps, compiled (:func:`itemmaps_of`).
    """
    choices = {name: _Choice(named=True) for name in known if patt.may_match_test(name)}
    waitons: dict[str, tuple[str, ...]] = {}
    notes: list[str] = []
    queue = list(choices)
    while queue:
        name = queue.pop()
        waitons[name] = _waitons(read[name], set(known), notes)
        for waiton in waitons[name]:
            if waiton not in choices:
                choices[waiton] = _Choice()
                queue.append(waiton)
    _spread(patt, choices, waitons, read, itemmaps)
    return Selection(patt, choices, waitons, tuple(notes))


def _waitons(test: TestConfig, known: set[str], notes: list[str]) -> tuple[str, ...]:
    entry = test.config.entry("requirements", "waiton")
    origin = entry.origin if entry else Origin(str(test.path), 1)
    kept = []
    for waiton in test.waiton():
        if waiton == test.name:
            notes.append(f"{origin}: {test.name} waits on itself: left out (runs.scm:495-500)")
        elif waiton not in known:
            notes.append(
                f"{origin}: waiton {waiton} is no test of the area: left out, as Megatest"
                " does (tests.scm:192-206)"
            )
        elif waiton not in kept:
            kept.append(waiton)
    return tuple(kept)


def _spread(
    patt: TestPatt,
    choices: dict[str, _Choice],
    waitons: Mapping[str, tuple[str, ...]],
    read: Mapping[str, TestConfig],
    itemmaps: _ItemMaps,
) -> None:
    """Give each prerequisite the items its waiters need: every item, or (itemwait) the
    mapped item patterns of a waiter named with item patterns. Waiters go first, so a
    chain (``D/1/res`` → ``C/1/aa`` → ``A/aa/1``) carries through; with a cycle nothing
    is spread (planning refuses the cycle)."""
    try:
        order = list(graphlib.TopologicalSorter(waitons).static_order())
    except graphlib.CycleError:
        return
    for name in reversed(order):
        mine = _item_patterns(name, patt, choices[name])
        for waiton in waitons.get(name, ()):
            choice = choices[waiton]
            if not mine or not (read[name].mode() & ITEM_MODES and _itemized(read[waiton])):
                choice.whole = True
                continue
            itemmap = lookup_itemmap(itemmaps[name], waiton)
            choice.patterns |= {itemmap.apply(item) if itemmap else item for item in mine}


def _item_patterns(name: str, patt: TestPatt, choice: _Choice) -> set[str]:
    """The item parts of the patterns that name ``name`` literally (``name/...``)."""
    found = set(choice.patterns)
    if choice.named:
        for pattern in patt.patterns:
            if not pattern.exclude and pattern.text.startswith(f"{name}/"):
                found.add(pattern.text[len(name) + 1 :])
    return found


def _itemized(test: TestConfig) -> bool:
    """Whether the test has an ``[items]`` or ``[itemstable]`` section (runs.scm:530-532)."""
    return test.config.has("items") or test.config.has("itemstable")


def itemmaps_of(test: TestConfig) -> list[tuple[str, ItemMap]]:
    """A test's itemmaps compiled, in Megatest's order.

    Raises:
        ConfigError: a pattern is not a regular expression (the line names it).
    """
    compiled = []
    for pattern, text in test.itemmaps():
        try:
            compiled.append((pattern, ItemMap.parse(text)))
        except ValueError as exc:
            section, key = ("requirements", "itemmap") if pattern == "%" else ("itemmap", pattern)
            entry = test.config.entry(section, key)
            origin = entry.origin if entry else Origin(str(test.path), 1)
            raise ConfigError(origin.path, origin.line, str(exc)) from None
    return compiled
