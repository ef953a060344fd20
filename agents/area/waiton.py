"""Megatest's waiton rules: when a test instance may run, and when it never will.

A test's ``[requirements] mode`` is a list of words (runs.scm:1346-1347; no
``mode`` means ``normal``):

* ``normal``: a prerequisite must be COMPLETED (or another of Megatest's ended
  states) with PASS, WARN, CHECK, WAIVED or SKIP;
* ``toplevel``: it only has to have ended, whatever its status;
* ``itemwait`` / ``itemmatch`` (the manual calls them synonyms; the source
  differs in one place, below): each item waits for the prerequisite's item
  of the same path, mapped by an ``itemmap`` when there is one.

:func:`unmet` is Megatest's ``db:get-prereqs-not-met`` (db.scm:4241-4383)
for one prerequisite and one instance; :func:`decide` is what the scheduler
makes of the result (runs.scm:684-880 for a test, :1068-1150 for an item):

* nothing unmet, or in ``toplevel`` mode nothing unmet that has not ended →
  the instance may run;
* ``normal`` mode, an unmet prerequisite NOT_STARTED with a status that says it
  never will run (ZERO_ITEMS, PREQ_DISCARDED …) → ``NOT_STARTED/PREQ_DISCARDED``
  "Failed to run due to prior failed prerequisites" (runs.scm:851-852; Megatest
  v1.65 writes COMPLETED there, its release check results.logpro expects
  NOT_STARTED, and mtpkt follows the release check);
* ``normal`` mode, or an item not in ``toplevel`` mode, with an unmet
  prerequisite COMPLETED/INCOMPLETE with another status →
  ``NOT_STARTED/PREQ_FAIL`` "Failed to run due to failed prerequisites"
  (runs.scm:853, :1088). Megatest v1.65 writes NOT_STARTED for an item
  (runs.scm:1105) and COMPLETED for a test (:853, where the NOT_STARTED line
  it replaced is kept as a comment, :855); its release check expects
  ``testxz``, whose prerequisite fails, NOT_STARTED (results.logpro:69), and
  mtpkt follows the release check for both;
* otherwise it waits; but where every unmet record has settled, Megatest would
  wait for ever (runs.scm:795-819, :1077-1084) and mtpkt ends the instance instead:
  ``NOT_STARTED/PREQ_DISCARDED`` when a prerequisite will never run (as
  Megatest's ``toplevel`` give-up does, runs.scm:812), else ``NOT_STARTED/PREQ_FAIL``.

Where Megatest is odd, this matches it: ``itemmatch`` also lets an item run
once *any* prerequisite item ended well (db.scm:4346-4352, which the source
itself calls probably a bug); a non-itemized test in ``itemwait`` mode runs once
any item of its prerequisite has ended (db.scm:4321-4322); and an itemmap is
looked up by the *waiting* test's name (db.scm:4187), so only
``[requirements] itemmap`` (which applies to every waiton) maps items when
scheduling, while ``[itemmap]`` lines map them when selecting
(:mod:`~mtpkt.agents.area.selection`).
"""

import enum
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import GOOD_FOR_DEPENDENTS, settled

__all__ = [
    "ITEM_MODES",
    "MODES",
    "Decision",
    "ItemMap",
    "Records",
    "Verdict",
    "decide",
    "looked_at",
    "lookup_itemmap",
    "mode_refused",
    "unmet",
]

MODES = frozenset({"normal", "toplevel", "itemwait", "itemmatch"})
"""The mode words mtpkt schedules by."""
ITEM_MODES = frozenset({"itemwait", "itemmatch"})

_ENDED = frozenset(
    {State.COMPLETED, State.ARCHIVED, State.KILLED, State.KILLREQ, State.STUCK, State.INCOMPLETE}
) | {State.STALE}
"""``*common:ended-states*`` (common.scm:553), and mtpkt's STALE: a COMPLETED test whose
configs changed since (:mod:`mtpkt.agents.home.stale`), which ``rerunclean`` leaves as it is."""
_BADLY_ENDED = frozenset({State.KILLED, State.KILLREQ, State.STUCK, State.INCOMPLETE})
"""``*common:badly-ended-states*`` (common.scm:556)."""
_RUNNING = frozenset({State.RUNNING, State.REMOTEHOSTSTART, State.LAUNCHED})
"""``*common:running-states*`` (common.scm:563)."""
_DONE = frozenset({State.COMPLETED, State.INCOMPLETE, State.STALE})
"""The states ``runs:calc-fails`` and ``runs:calc-not-completed`` count as done
(runs.scm:1600-1620); STALE too, as COMPLETED."""
_STILL_TRYING = frozenset({Status.NA, Status.KEEP_TRYING})

PREQ_FAIL_COMMENT = "Failed to run due to failed prerequisites"
"""runs.scm:853."""
PREQ_DISCARDED_COMMENT = "Failed to run due to prior failed prerequisites"
"""runs.scm:852."""


def mode_refused(words: Iterable[str]) -> str:
    """Why a ``mode`` cannot be scheduled by mtpkt (empty when it can)."""
    unknown = sorted(set(words) - MODES)
    if "exclusive" in unknown:
        return (
            "mode exclusive is not supported: it waits on the same test in every run (db.scm:4244)"
        )
    if unknown:
        return f"mode {' '.join(unknown)!r}: expected normal, toplevel, itemwait or itemmatch"
    return ""


# -- itemmaps ---------------------------------------------------------------------------------

_GROUP = re.compile(r"\\(\d)")


@attrs.frozen
class ItemMap:
    """One itemmap: lines of ``regex replacement``, applied in order to an item path, each
    to its first match (``db:multi-pattern-apply``, db.scm:4211-4230)."""

    rules: tuple[tuple[re.Pattern[str], str], ...]

    @classmethod
    def parse(cls, text: str) -> "ItemMap":
        """Read an itemmap's text; a line with no replacement removes what it matches.

        Raises:
            ValueError: a pattern is not a regular expression (the message says which).
        """
        rules = []
        for line in text.split("\n"):
            parts = line.split()
            if not parts:
                continue
            try:
                pattern = re.compile(parts[0])
            except re.error as exc:
                raise ValueError(f"itemmap pattern {parts[0]!r}: {exc}") from None
            rules.append((pattern, parts[1] if len(parts) > 1 else ""))
        return cls(tuple(rules))

    def apply(self, path: str) -> str:
        """The item path as mapped."""
        for pattern, replacement in self.rules:
            match = pattern.search(path)
            if match is not None:
                path = path[: match.start()] + _expand(match, replacement) + path[match.end() :]
        return path


def _expand(match: re.Match[str], replacement: str) -> str:
    """``\\N`` in a replacement is the match's group N (empty if it has none); the rest is
    literal, as in Chicken's ``string-substitute``."""

    def group(ref: re.Match[str]) -> str:
        number = int(ref.group(1))
        return (match.group(number) or "") if number <= (match.re.groups or 0) else ""

    return _GROUP.sub(group, replacement)


def lookup_itemmap(itemmaps: Sequence[tuple[str, ItemMap]], test: str) -> ItemMap | None:
    """The first itemmap whose test pattern (``%`` a wildcard) matches ``test``
    (``tests:lookup-itemmap``, tests.scm:113-127)."""
    for pattern, itemmap in itemmaps:
        glob = ".*".join(re.escape(part) for part in pattern.split("%"))
        if re.fullmatch(glob, test):
            return itemmap
    return None


# -- prerequisites ----------------------------------------------------------------------------

Record = tuple[State, Status]


@attrs.frozen
class Tally:
    """What a set of unmet prerequisite records says (runs.scm:1600-1631)."""

    fails: str = ""
    """One record COMPLETED/INCOMPLETE with a status not good for dependents, if any
    (``test[/item] ended STATE/STATUS``)."""
    discarded: str = ""
    """One record NOT_STARTED with a status other than n/a or KEEP_TRYING, if any."""
    other: str = ""
    """One record that did not end well in another way, if any."""
    waiting: bool = False
    """Some record is not COMPLETED/INCOMPLETE."""
    settled: bool = True
    """Every record has settled: none will change by itself."""

    @classmethod
    def of(cls, name: str, records: Iterable[tuple[str, Record]]) -> "Tally":
        """The tally of a test's records (item path, record)."""
        total = cls()
        for item, (state, status) in records:
            shown = f"{name}/{item}" if item else name
            ended = state in _DONE
            told = f"{shown} {'ended' if state in _ENDED else 'is'} {state}/{status}"
            fails = ended and status not in GOOD_FOR_DEPENDENTS
            discarded = state is State.NOT_STARTED and status not in _STILL_TRYING
            total = total + cls(
                fails=told if fails else "",
                discarded=told if discarded else "",
                other="" if ended and not fails else told,
                waiting=not ended,
                settled=settled(state, status),
            )
        return total

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(
            fails=self.fails or other.fails,
            discarded=self.discarded or other.discarded,
            other=self.other or other.other,
            waiting=self.waiting or other.waiting,
            settled=self.settled and other.settled,
        )


@attrs.frozen
class Records:
    """One prerequisite test's records, as its waiters look at them."""

    name: str
    top: Record
    """Its toplevel record: the roll-up of its items, or its one instance."""
    items: Mapping[str, Record]
    """Its items' records by item path (empty for a test without items)."""
    whole: Tally
    any_item_ended: bool
    any_item_ended_well: bool

    @classmethod
    def of(cls, name: str, top: Record, items: Mapping[str, Record]) -> "Records":
        ended = [record for record in items.values() if record[0] in _ENDED]
        return cls(
            name=name,
            top=top,
            items=items,
            whole=Tally.of(name, [("", top), *items.items()]),
            any_item_ended=bool(ended),
            any_item_ended_well=any(status in GOOD_FOR_DEPENDENTS for _, status in ended),
        )


def unmet(
    test: str, item: str, modes: frozenset[str], itemmap: ItemMap | None, waiton: Records
) -> Tally | None:
    """Whether instance ``test``/``item`` still waits on ``waiton``: None if not, else the
    tally of the records it waits for (``db:get-prereqs-not-met``, db.scm:4290-4383).

    Args:
        test: the waiting test (Megatest looks its itemmap up by it: the caller has).
        item: the instance's item path ("" for a test without items, or the test's
            toplevel, which decides whether its items may start at all).
        modes: the waiting test's mode words.
        itemmap: the itemmap Megatest finds for the waiting test (:func:`lookup_itemmap`).
        waiton: the prerequisite's records.
    """
    del test
    look = _Look(modes, item, itemmap.apply(item) if itemmap is not None else item)
    look.toplevel_record(waiton.top)
    look.item_records(waiton)
    if look.itemized and look.is_item and look.unmet_items:
        return Tally.of(waiton.name, look.unmet_items)
    if not (look.parent or look.met):
        return waiton.whole
    return None


class _Look:
    """One instance looking at one prerequisite's records, cond by cond (db.scm:4319-4360)."""

    def __init__(self, modes: frozenset[str], item: str, mapped: str) -> None:
        self.modes = modes
        self.itemized = bool(modes & ITEM_MODES)
        self.toplevel = "toplevel" in modes
        self.is_item = item != ""
        self.mapped = mapped
        self.parent = self.met = False
        self.unmet_items: list[tuple[str, Record]] = []

    def toplevel_record(self, record: Record) -> None:
        """cond1, cond2, then cond3 for the prerequisite's toplevel record."""
        state, status = record
        if state in _ENDED and (status in GOOD_FOR_DEPENDENTS or self.toplevel):
            self.parent = True
        elif state in _BADLY_ENDED and self.toplevel:
            self.parent = True
        elif self.itemized and self.is_item and self.mapped == "":
            self.same_item("", record)

    def item_records(self, waiton: Records) -> None:
        """cond0 for a waiter's toplevel; else cond3, cond5 and cond4 for the items."""
        if self.itemized and not self.is_item:
            self.parent = self.parent or waiton.any_item_ended
            return
        same = waiton.items.get(self.mapped) if self.mapped else None
        if same is not None and self.itemized and self.is_item:
            self.same_item(self.mapped, same)
        elif same is not None and same[0] in _ENDED and same[1] in GOOD_FOR_DEPENDENTS:
            self.met = True
        if "itemmatch" in self.modes and waiton.any_item_ended_well:
            self.met = True  # the source's own "probably a bug"

    def same_item(self, path: str, record: Record) -> None:
        """cond3 (db.scm:4337-4344): the prerequisite's record of the same item path."""
        state, status = record
        if state in _ENDED and (status in GOOD_FOR_DEPENDENTS or self.toplevel):
            self.met = True
        else:
            self.unmet_items.append((path, record))
        if path == "" and (state in _ENDED or state in _RUNNING):
            self.parent = True


def looked_at(state: State, status: Status) -> tuple[bool, ...]:
    """What of a record a waiter's decision can depend on: when it changes, waiters must
    look again; when it does not (LAUNCHED to RUNNING), they need not."""
    return (
        state in _ENDED,
        state in _DONE,
        state in _RUNNING,
        state is State.NOT_STARTED,
        status in GOOD_FOR_DEPENDENTS,
        status in _STILL_TRYING,
        settled(state, status),
    )


# -- deciding ---------------------------------------------------------------------------------


class Verdict(enum.Enum):
    """What becomes of a waiting instance."""

    READY = "ready"
    WAIT = "wait"
    PREQ_FAIL = "NOT_STARTED/PREQ_FAIL"
    PREQ_DISCARDED = "NOT_STARTED/PREQ_DISCARDED"


@attrs.frozen
class Decision:
    """A verdict, and the comment that goes with it."""

    verdict: Verdict
    comment: str = ""


READY = Decision(Verdict.READY)
WAIT = Decision(Verdict.WAIT)


def decide(
    test: str,
    item: str,
    modes: frozenset[str],
    itemmap: ItemMap | None,
    waitons: Sequence[Records],
) -> Decision:
    """What becomes of instance ``test``/``item`` given its prerequisites' records (see the
    module's docstring for the rules and where Megatest says them)."""
    tally: Tally | None = None
    for waiton in waitons:
        found = unmet(test, item, modes, itemmap, waiton)
        if found is not None:
            tally = found if tally is None else tally + found
    if tally is None or ("toplevel" in modes and not tally.waiting):
        return READY
    if "normal" in modes and tally.discarded:
        return Decision(
            Verdict.PREQ_DISCARDED, f"{PREQ_DISCARDED_COMMENT}: waiton {tally.discarded}"
        )
    if tally.fails and ("normal" in modes or "toplevel" not in modes):
        return Decision(Verdict.PREQ_FAIL, f"{PREQ_FAIL_COMMENT}: waiton {tally.fails}")
    if tally.settled:  # Megatest would wait for ever; nothing can change
        if tally.discarded:
            return Decision(
                Verdict.PREQ_DISCARDED, f"{PREQ_DISCARDED_COMMENT}: waiton {tally.discarded}"
            )
        return Decision(Verdict.PREQ_FAIL, f"{PREQ_FAIL_COMMENT}: waiton {tally.other}")
    return WAIT
