"""The writer's copy in memory of one run's ``tests`` rows, and the toplevel roll-up.

:class:`store.rundb.RunDb` keeps one :class:`Mirror` of its run's ``tests``
rows (id, state, status, counts), so a batch needs no reads besides the dedupe
lookup, and the roll-ups are computed without queries. As the only writer it
also numbers new ``tests`` rows itself, so they are inserted together rather
than one statement each. The mirror is dropped whenever a transaction does not
commit, and read again from the database when next needed.
"""

from collections import Counter
from typing import Final

import apsw

from mtpkt.pkts.enums import State, Status
from mtpkt.pkts.outcome import read_state, read_status, toplevel_rollup
from mtpkt.store.tally import RunSummary, Tally

__all__ = ["Key", "Mirror", "MirroredTest", "Start"]

_INSERT_TEST: Final = (
    "INSERT INTO tests(id, run_id, testname, item_path, state, status, host, comment,"
    " event_time, last_update, run_duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_ROLLUP: Final = (
    "UPDATE tests SET state = ?, status = ?, pass_count = ?, fail_count = ?, last_update = ?"
    " WHERE id = ?"
)

Key = tuple[str, str]
"""``(testname, item_path)``."""

Start = tuple[float, str]
"""When a test's run began: the ``ts`` and origin of its RUNNING change."""


class MirroredTest:
    """The mirror of one ``tests`` row: what the writer needs of it."""

    __slots__ = ("fail_count", "id", "pass_count", "state", "status")

    def __init__(self, test_id: int, state: State, status: Status) -> None:
        self.id = test_id
        self.state = state
        self.status = status
        self.pass_count = 0
        self.fail_count = 0


class Mirror:
    """One run's ``tests`` rows as the writer knows them, with the books of its roll-ups.

    Changes go through :meth:`set` and :meth:`add`, so that the run's
    :class:`~store.tally.Tally` and the set of itemized tests whose toplevel row
    needs a roll-up stay right. Rows :meth:`add` makes are inserted by
    :meth:`flush`, which must run before anything updates them.
    """

    def __init__(self, conn: apsw.Connection, run_id: int, starts: dict[Key, Start]) -> None:
        """Read the run's ``tests`` rows (inside the caller's transaction, if any).

        Args:
            conn: the run database's writer connection.
            run_id: the run's id, for new rows.
            starts: when each running test started; a RUNNING row it lacks is
                added from the row's ``event_time`` and ``host``.
        """
        self.run_id = run_id
        self.tests: dict[Key, MirroredTest] = {}
        self.items: dict[str, set[str]] = {}
        """testname → its item paths."""
        self.toplevel: dict[str, MirroredTest] = {}
        """testname → its row with item path ``''``."""
        self.tally = Tally()
        """Over the toplevel-level rows."""
        self.stale: set[str] = set()
        """Itemized tests whose toplevel row needs a roll-up."""
        self.pairs: dict[str, Counter[tuple[State, Status]]] = {}
        """testname → how many of its items are in each (state, status): a roll-up depends
        only on which pairs there are, so it costs the same however many items a test has
        (walking every item on every commit made the home's CPU per test grow with them)."""
        self._new_rows: list[tuple[object, ...]] = []  # tests rows not inserted yet
        row = conn.execute("SELECT max(id) FROM tests").fetchone()
        self._next_id = int(row[0] or 0) + 1 if row is not None else 1
        rows = conn.execute(
            "SELECT id, testname, item_path, state, status, pass_count, fail_count,"
            " event_time, host FROM tests"
        )
        for test_id, name, item, state, status, passed, failed, event_time, host in rows:
            test = MirroredTest(int(test_id), read_state(state), read_status(status))
            test.pass_count, test.fail_count = int(passed or 0), int(failed or 0)
            key = (str(name), str(item or ""))
            self._remember(key, test)
            if test.state is State.RUNNING and isinstance(event_time, float | int):
                # Its RUNNING change, from the agent it runs on (opened again, say).
                starts.setdefault(key, (float(event_time), str(host or "")))
        self.stale.clear()

    def summary(self) -> RunSummary:
        """The run's roll-up: its toplevel-level rows' state, worst status and counts."""
        return self.tally.summary()

    def _remember(self, key: Key, test: MirroredTest) -> None:
        """Add a row to the mirror."""
        self.tests[key] = test
        name, item = key
        if item:
            self.items.setdefault(name, set()).add(item)
            self.pairs.setdefault(name, Counter())[(test.state, test.status)] += 1
            self.stale.add(name)
        else:
            self.toplevel[name] = test
            self.tally.add(test.state, test.status)

    def set(self, key: Key, test: MirroredTest, state: State, status: Status) -> None:
        """Change a mirrored row's state and status, keeping the roll-ups' books."""
        if test.state is state and test.status is status:
            return
        name, item = key
        if not item:
            self.tally.remove(test.state, test.status)
            self.tally.add(state, status)
        else:
            pairs = self.pairs[name]
            old = (test.state, test.status)
            pairs[old] -= 1
            if not pairs[old]:
                del pairs[old]
            pairs[(state, status)] += 1
        if item or name in self.items:  # an item changed, or a toplevel row was overwritten
            self.stale.add(name)
        test.state, test.status = state, status

    def add(self, key: Key, values: tuple[object, ...]) -> MirroredTest:
        """Add a tests row to the mirror, to be inserted by :meth:`flush`.

        ``values`` are ``_INSERT_TEST``'s after ``id`` and ``run_id``.
        """
        test = MirroredTest(self._next_id, read_state(values[2]), read_status(values[3]))
        self._next_id += 1
        self._new_rows.append((test.id, self.run_id, *values))
        self._remember(key, test)
        return test

    def add_not_started(self, key: Key, ts: float, received: float) -> MirroredTest:
        """Add a ``NOT_STARTED`` row for the test a Step is about."""
        name, item = key
        return self.add(key, (name, item, State.NOT_STARTED, Status.NA, "", "", ts, received, 0.0))

    def flush(self, conn: apsw.Connection) -> None:
        """Insert the tests rows :meth:`add` added (before anything updates them)."""
        if self._new_rows:
            conn.executemany(_INSERT_TEST, self._new_rows)
            self._new_rows = []

    def roll_up(self, conn: apsw.Connection, received: float) -> None:
        """Recompute the toplevel row of each itemized test whose items changed."""
        updates = []
        for name in sorted(self.stale):
            pairs = self.pairs.get(name, Counter())
            state, status = toplevel_rollup(pairs)
            passed = sum(count for (_, got), count in pairs.items() if got is Status.PASS)
            failed = sum(count for (_, got), count in pairs.items() if got is Status.FAIL)
            top = self.toplevel.get(name)
            if top is None:
                top = self.add(
                    (name, ""), (name, "", state, status, "", "", received, received, 0.0)
                )
            elif (top.state, top.status, top.pass_count, top.fail_count) == (
                state,
                status,
                passed,
                failed,
            ):
                continue
            updates.append((state, status, passed, failed, received, top.id))
            self.set((name, ""), top, state, status)
            top.pass_count, top.fail_count = passed, failed
        self.stale.clear()
        self.flush(conn)
        if updates:
            conn.executemany(_UPDATE_ROLLUP, updates)
