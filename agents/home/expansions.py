"""Deferred items on the home: a test's ``[system …]`` items made when it comes up to run.

Megatest makes a test's items when its prerequisites would let it start
(:mod:`~mtpkt.agents.area.deferred`); so does the home, once per launch:

* each follow-up (:meth:`Expansions.start_due`, commit lock held) starts a
  thread for every test of a launch that is due
  (:meth:`~mtpkt.agents.area.RunProgress.due`): the commands may take long and
  never run under a lock;
* the thread makes the items (:meth:`~mtpkt.agents.area.Plan.make_items`; a
  command that fails gives none, its error the test's comment) and leaves them;
* the next follow-up (:meth:`Expansions.take`) puts them in the books: the
  items' records replace the test's toplevel in the launch, each left alone,
  or left to another launch that has it in hand, as :meth:`Launcher.start
  <mtpkt.agents.home.launches.Launcher.start>` does; the others are recorded
  ``NOT_STARTED``. The run's other launches that wait for the same test get
  the same items (they follow this one, as they follow it for a test planned
  at once). An agent given one of the items reads them from the launch's note
  (:mod:`~mtpkt.agents.host.plans`).

A home that restarts does not make them a second time: before their records
are committed, the items are noted (:mod:`~mtpkt.agents.itemnotes`) with the
``seq`` of the last of the home's packets recording them
(:meth:`Expansions.restore`, called by :meth:`Launcher.resume
<mtpkt.agents.home.launches.Launcher.resume>`): committed, the records say
the rest; not committed, they are recorded again. The agents run the items
noted too. A launch that settles has its notes removed.

Locks as :mod:`~mtpkt.agents.home.books` says: the commit lock first, the
books lock inside it and never while committing.
"""

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import attrs

from mtpkt.agents.area import AreaError, Item, PlannedTest, TestRef
from mtpkt.agents.home.books import Books, Launch, leaves_alone, record, run_rows
from mtpkt.agents.home.own import ORIGIN, OwnPackets
from mtpkt.agents.homedir import HomeDir
from mtpkt.agents.itemnotes import ItemNote, ItemNotes
from mtpkt.pkts import State, Status
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import Store
from mtpkt.store.rows import TestRow

__all__ = ["Expanded", "Expansions", "Restored"]

_log = logging.getLogger(__name__)


@attrs.frozen
class _Made:
    """Items a thread made for a test of a launch."""

    launch: Launch
    name: str
    items: tuple[Item, ...]
    error: str = ""
    """Why no items could be made ("" when they were)."""


@attrs.frozen
class Expanded:
    """A test of a launch given its items, and the records to commit for them."""

    launch: Launch
    name: str
    refs: tuple[TestRef, ...]
    """The items the launch runs."""
    packets: tuple[StatusPacket, ...]
    """Their ``NOT_STARTED`` records."""


@attrs.frozen
class Restored:
    """What :meth:`Expansions.restore` tells :meth:`Launcher.resume
    <mtpkt.agents.home.launches.Launcher.resume>` about a launch's deferred tests."""

    again: frozenset[TestRef] = frozenset()
    """Records to commit ``NOT_STARTED`` again: their first commit never happened."""
    waiting: frozenset[TestRef] = frozenset()
    """Toplevels whose items are yet to be made: ``NOT_STARTED`` in the launch, whatever
    their record (rolled up from an earlier launch's items) says."""


class Expansions:
    """Makes the items of a launch's deferred tests when they are due.

    Args:
        home: the area's directory (the notes go in its ``.mtpkt/items``).
        store: the home's store (the records the items are checked against).
        books: the dispatcher's books.
        own: makes the home's status packets.
    """

    def __init__(self, home: Path, store: Store, books: Books, own: OwnPackets) -> None:
        self._notes = ItemNotes(HomeDir(home).path / "items")
        self._store = store
        self._books = books
        self._own = own
        self._committed = store.origin_seq(ORIGIN)
        """The home's last seq committed before this home started: notes of a seq above it
        were never committed."""
        self._lock = threading.Lock()  # a leaf lock: the threads' results
        self._in_hand: set[tuple[bytes, str]] = set()
        self._made: list[_Made] = []

    # -- making them ------------------------------------------------------------------------

    def start_due(self, launch: Launch) -> None:
        """Start making the items of the launch's due tests not in hand yet (books lock held);
        a test whose toplevel another launch has in hand is left to that one."""
        for name in launch.progress.due():
            key = (launch.control.id, name)
            if key in self._in_hand or launch.plan.toplevel(name) in launch.skipped:
                continue
            self._in_hand.add(key)
            threading.Thread(
                target=self._make, args=(launch, name), name=f"items of {name}", daemon=True
            ).start()

    def _make(self, launch: Launch, name: str) -> None:
        try:
            made = _Made(launch, name, tuple(launch.plan.make_items(name)))
        except AreaError as exc:
            made = _Made(launch, name, (), str(exc))
        except Exception as exc:  # a bug here must not leave the test waiting for ever
            _log.exception("making the items of %s failed", name)
            made = _Made(launch, name, (), f"internal error: {exc}")
        with self._lock:
            self._made.append(made)

    # -- putting them in the books ----------------------------------------------------------

    def take(self) -> list[Expanded]:
        """Put the items made since the last call in the books, noted for a restart; the
        records to commit (commit lock held, books lock not)."""
        with self._lock:
            made, self._made = self._made, []
        found = []
        for one in made:
            with self._books.lock:
                self._in_hand.discard((one.launch.control.id, one.name))
                if not any(launch is one.launch for launch in self._books.launches):
                    continue  # killed and settled meanwhile
                expanded = self._expand(one)
            for each in expanded:
                self._note(each.launch, one, each.packets)
            found += expanded
        return found

    def _expand(self, made: _Made) -> list[Expanded]:
        """The launch, and every other launch of the run waiting for the test, given the
        items (books lock held)."""
        launch = made.launch
        rows = run_rows(self._store, launch.control.target, launch.control.runname)
        found = []
        others = [
            other
            for other in self._books.launches
            if other is not launch
            and other.of(launch.control.target, launch.control.runname)
            and made.name in other.progress.tests
            and other.progress.unexpanded(made.name)
        ]
        for each in [launch, *others]:
            planned = _planned(each, made)
            refs = each.progress.expand(made.name, planned)
            if refs is None:
                continue  # no longer waiting for its items (killed meanwhile)
            run = tuple(self._take_over(each, refs, rows))
            packets = tuple(self._own.change(ref, State.NOT_STARTED, Status.NA) for ref in run)
            found.append(Expanded(each, made.name, run, packets))
        return found

    def _take_over(
        self, launch: Launch, refs: Sequence[TestRef], rows: dict[TestRef, TestRow]
    ) -> list[TestRef]:
        """Of a test's new records, those the launch runs: not in another launch's hands,
        not left alone (books lock held)."""
        active = self._books.active_refs(besides=launch)  # its own new records are in it
        run = []
        for ref in refs:
            known = record(rows.get(ref))
            if ref in active:
                launch.skipped.add(ref)
            elif known is not None and leaves_alone(launch.control, *known):
                launch.progress.update(ref, *known)
                launch.skipped.add(ref)
            else:
                run.append(ref)
        self._books.hand_over(launch)
        return run

    # -- notes for a restart and for the agents -------------------------------------------

    def _note(self, launch: Launch, made: _Made, packets: Sequence[StatusPacket]) -> None:
        """Note the items made before their records are committed."""
        seq = max((packet.seq for packet in packets), default=None)
        self._notes.write(launch.control.id, made.name, ItemNote(made.items, made.error, seq))

    def restore(self, launch: Launch, rows: dict[TestRef, TestRow]) -> Restored:
        """Give a resumed launch's deferred tests the items an earlier home made for it
        (books lock held).

        A test with a note gets its items from there; if their records were never
        committed, those the launch runs are to be recorded again. A test without one
        waits for its items to be made, unless the launch leaves its toplevel alone
        (as :meth:`Launcher._plan <mtpkt.agents.home.launches.Launcher._plan>` decided).
        """
        again: set[TestRef] = set()
        waiting: set[TestRef] = set()
        for name, test in launch.plan.tests.items():
            if not test.deferred:
                continue
            note = self._read(launch, name)
            if note is None:
                top = launch.plan.toplevel(name)
                known = record(rows.get(top))
                has_items = any(ref.test == name and ref.item for ref in rows)
                if has_items and not (known and leaves_alone(launch.control, *known)):
                    waiting.add(top)  # its record is the roll-up of earlier items
                continue
            made, seq = note
            refs = launch.progress.expand(name, _planned(launch, made))
            if refs and (seq is not None and seq > self._committed):
                again.update(self._take_over(launch, refs, rows))
        return Restored(frozenset(again), frozenset(waiting))

    def _read(self, launch: Launch, name: str) -> tuple[_Made, int | None] | None:
        note = self._notes.read(launch.control.id, name)
        if note is None:
            return None
        return _Made(launch, name, note.items, note.error), note.seq

    def forget(self, launch: Launch) -> None:
        """A launch settled: its notes go."""
        self._notes.forget(launch.control.id)


def _planned(launch: Launch, made: _Made) -> PlannedTest:
    """The launch's test planned with the items made (or without, with the error)."""
    if made.error:
        return launch.plan.unmade(made.name, made.error)
    try:
        return launch.plan.expand(made.name, made.items)
    except AreaError as exc:  # an item path that cannot be a directory …
        return launch.plan.unmade(made.name, str(exc))
