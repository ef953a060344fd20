"""The writer of one run's database, ``<run_id>.db``: tests, steps, test data and history.

It keeps a mirror of the run's ``tests`` rows in memory (:mod:`store.mirror`),
so a batch needs no reads besides the dedupe lookup; the mirror is dropped
whenever a transaction does not commit, and read again when next needed.
"""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Final, TypeVar

import attrs

from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.enums import State
from mtpkt.pkts.outcome import ACTIVE, FINAL
from mtpkt.store import history, schema, testdata
from mtpkt.store.batch import Share
from mtpkt.store.connection import connect
from mtpkt.store.history import HistoryDb
from mtpkt.store.mirror import Key, Mirror, Start
from mtpkt.store.rows import ArchiveRow, StepRow, TestDataRow, TestRow
from mtpkt.store.tally import RunSummary

__all__ = ["RunDb"]

_UPDATE_TEST: Final = (
    "UPDATE tests SET state = ?, status = ?, host = ?, comment = ?,"
    " event_time = coalesce(?, event_time), last_update = ?,"
    " run_duration = coalesce(?, run_duration) WHERE id = ?"
)
_INSERT_STEP: Final = (
    "INSERT INTO test_steps(test_id, stepname, state, status, event_time, comment, logfile)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SET_LOG: Final = "UPDATE tests SET final_logf = ? WHERE id = ?"
_SET_JOB: Final = "UPDATE tests SET job = ? WHERE id = ?"

T = TypeVar("T")

_DOOMED: Final = (
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
)
"""The ``(testname, item_path)`` pairs of a JSON list of pairs, for ``IN``."""
_RESETS: Final = frozenset({State.NOT_STARTED, State.LAUNCHED})
"""Changes that begin a new attempt: the start of the one before no longer counts."""


def _moves_files(before: State | None, state: State) -> bool:
    """Whether a change from ``before`` to ``state`` says only where the test's files are:
    into ``ARCHIVED`` (``archive --remove``), or out of it into an ended state (``archive
    --restore``). Such a change keeps the record's ``event_time`` and ``run_duration``: the
    test did not run again."""
    if state is State.ARCHIVED:
        return True
    return before is State.ARCHIVED and state in FINAL


def _duration(state: State, when: float, origin: str, started: Start | None) -> float | None:
    """``tests.run_duration`` after a change to ``state`` at ``when`` from ``origin``: 0 when
    a run starts or the record is reset; when it ends, the seconds since the RUNNING change,
    if both come from the same origin (the same clock; ``""``: not known); else ``None``
    (unchanged)."""
    if state in (State.RUNNING, State.NOT_STARTED):
        return 0.0
    if state in FINAL and started is not None and started[1] in (origin, ""):
        return max(0.0, when - started[0])
    return None


@attrs.frozen
class Removal:
    """What :meth:`RunDb.remove` removed."""

    keys: list[Key]
    """The tests' ``(testname, item_path)``, toplevel rows of emptied itemized tests included."""
    summary: RunSummary
    """The run's roll-up after."""
    left: int
    """Rows of ``tests`` that remain."""
    packets: list[tuple[str, int, bytes]]
    """``(origin, origin_seq, packet_id)`` of the history rows removed."""


class RunDb(HistoryDb):
    """Writes one run's database; used only by :class:`store.Store`, under its lock."""

    def __init__(self, path: Path, run_id: int, *, durable: bool) -> None:
        """Open (creating or upgrading) ``path``.

        Raises:
            StoreError: it cannot be opened or upgraded, or is newer than this code.
        """
        conn = connect(path, durable=durable)
        super().__init__(path, conn)
        try:
            schema.open_schema(self, schema.RUN, ())
        except BaseException:
            self.close()
            raise
        self.optimize_on_close = True
        self.run_id = run_id
        """The run's id (``runs.id`` in ``main.db``)."""
        self._mirrored: Mirror | None = None
        # When each running test started; kept when the mirror is dropped and read again.
        self._starts: dict[Key, Start] = {}

    # -- the mirror ---------------------------------------------------------

    def forget(self) -> None:
        """Drop the mirror (after a transaction that did not commit)."""
        self._mirrored = None

    def _mirror(self) -> Mirror:
        if self._mirrored is None:
            self._mirrored = Mirror(self.conn, self.run_id, self._starts)
        return self._mirrored

    # -- reading ------------------------------------------------------------

    def origins_since(self, seq: int) -> list[tuple[int, str, int]]:
        """``(seq, origin, origin_seq)`` of history rows after ``seq``, ascending."""
        with self.guard("read"):
            rows = self.conn.execute(
                "SELECT seq, origin, origin_seq FROM history WHERE seq > ? ORDER BY seq", (seq,)
            )
            return [(int(s), str(o), int(n)) for s, o, n in rows]

    def summary(self) -> RunSummary:
        """The run's roll-up: its toplevel-level records' state, worst status and counts."""
        with self.guard("read"):
            return self._mirror().summary()

    def tests(self, testname: str | None = None) -> list[TestRow]:
        """Every row of ``tests`` (of test ``testname`` only, if given), by test name and item
        path."""
        where, args = (
            ("", ())
            if testname is None
            else (" WHERE run_id = ? AND testname = ?", (self.run_id, testname))
        )
        with self.guard("read"):
            rows = self.conn.execute(
                f"SELECT {TestRow.COLUMNS} FROM tests{where} ORDER BY testname, item_path", args
            )
            return [TestRow.from_sql(row) for row in rows]

    def steps(self) -> list[StepRow]:
        """Every row of ``test_steps`` in the order written, with its test's name and item."""
        with self.guard("read"):
            rows = self.conn.execute(
                f"SELECT {StepRow.COLUMNS} FROM test_steps AS s"
                " LEFT JOIN tests AS t ON t.id = s.test_id ORDER BY s.id"
            )
            return [StepRow.from_sql(row) for row in rows]

    def test_data(self) -> list[TestDataRow]:
        """Every row of ``test_data``, by its test's name and item path, category and
        variable."""
        with self.guard("read"):
            rows = self.conn.execute(TestDataRow.SELECT)
            return [TestDataRow.from_sql(row) for row in rows]

    # -- writing ------------------------------------------------------------

    def write(self, columns: StatusColumns, share: Share, received: float) -> RunSummary:
        """Write a batch's new status packets, inside the open transaction.

        Each packet gets a history row; each Step a ``test_steps`` row (its
        test's row is created ``NOT_STARTED`` if missing); each test's row
        takes the last StatusChange of the batch, and the last log file one
        names (``final_logf``); each TestData a ``test_data`` row
        (:mod:`store.testdata`). Itemized tests whose items changed get their
        toplevel row rolled up from their items.

        Args:
            columns: the batch.
            share: this run's packets of it.
            received: the home's time of receipt.

        Returns:
            The run's roll-up after the batch.
        """
        with self.guard("write"):
            mirror = self._mirror()
            history.insert(self.conn, share.history_rows(columns, received))
            steps = share.among(columns.steps)
            if steps:
                self._write_steps(mirror, columns, steps, received)
            changes = share.among(columns.changes)
            if changes:
                self._change(mirror, columns, changes, received)
            data = share.among(columns.data)
            if data:
                testdata.write(
                    self.conn, mirror, columns, [columns.data[p] for p in data], received
                )
            mirror.roll_up(self.conn, received)
            return mirror.summary()

    def _write_steps(
        self, mirror: Mirror, columns: StatusColumns, positions: list[int], received: float
    ) -> None:
        """Insert the ``test_steps`` rows of the Steps at ``positions`` of ``columns.steps``."""
        everything = len(positions) == len(columns.steps)

        def pick(column: list[T]) -> list[T]:
            return column if everything else list(map(column.__getitem__, positions))

        indices = pick(columns.steps)
        keys = list(
            zip(
                map(columns.tests.__getitem__, indices),
                map(columns.items.__getitem__, indices),
                strict=True,
            )
        )
        tests = list(map(mirror.tests.get, keys))
        if None in tests:  # a Step of a test with no row yet
            for position, test in enumerate(tests):
                if test is None:
                    key = keys[position]
                    tests[position] = mirror.tests.get(key) or mirror.add_not_started(
                        key, columns.ts[indices[position]], received
                    )
            mirror.flush(self.conn)
        self.conn.executemany(
            _INSERT_STEP,
            zip(
                [test.id for test in tests],  # type: ignore[union-attr]
                pick(columns.step_names),
                pick(columns.step_states),
                pick(columns.step_statuses),
                map(columns.ts.__getitem__, indices),
                pick(columns.step_comments),
                pick(columns.step_logfiles),
                strict=True,
            ),
        )

    def remove(self, keys: Iterable[Key], received: float) -> Removal:
        """Delete tests' rows, steps, data and history, inside the open transaction.

        An itemized test whose items all go loses its toplevel row too; one
        that keeps some gets its toplevel rolled up again.
        """
        with self.guard("write"):
            mirror = self._mirror()
            tests = mirror.tests
            doomed = {key for key in keys if key in tests}
            for name in {name for name, item in doomed if item}:
                if all((name, item) in doomed for item in mirror.items.get(name, ())):
                    doomed.add((name, ""))
            doomed &= tests.keys()  # a toplevel row cleaned before its items is gone already
            for key in doomed:
                self._starts.pop(key, None)
            rows = [(tests[key].id,) for key in doomed]
            self.conn.executemany("DELETE FROM test_steps WHERE test_id = ?", rows)
            self.conn.executemany("DELETE FROM test_data WHERE test_id = ?", rows)
            self.conn.executemany("DELETE FROM archives WHERE test_id = ?", rows)
            self.conn.executemany("DELETE FROM tests WHERE id = ?", rows)
            # History has no index by test (it would slow every insert): one pass over it,
            # the doomed keys looked up in an index SQLite builds for the IN list.
            doomed_json = json.dumps(sorted(doomed))
            packets = [
                (str(origin), int(seq), bytes(packet_id))
                for origin, seq, packet_id in self.conn.execute(
                    "SELECT origin, origin_seq, packet_id FROM history"
                    f" WHERE (testname, item_path) IN {_DOOMED} ORDER BY testname, item_path, seq",
                    (doomed_json,),
                )
            ]
            self.conn.execute(
                f"DELETE FROM history WHERE (testname, item_path) IN {_DOOMED}", (doomed_json,)
            )
            self.forget()
            mirror = self._mirror()  # read again: the roll-up's books start from what is left
            mirror.stale = {name for name, item in doomed if item and name in mirror.items}
            mirror.roll_up(self.conn, received)
            return Removal(sorted(doomed), mirror.summary(), len(mirror.tests), packets)

    def set_rundirs(self, rundirs: Iterable[tuple[str, str, str]]) -> None:
        """Set the ``rundir`` of tests rows, ``(testname, item_path, rundir)``; commits.

        Rows that do not exist are left alone.
        """
        # run_id leads the UNIQUE index: without it each row is a scan of the table.
        rows = [(rundir, self.run_id, name, item) for name, item, rundir in rundirs]
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE tests SET rundir = ? WHERE run_id = ? AND testname = ? AND item_path = ?",
                rows,
            )

    def record_archive(self, key: Key, archive: ArchiveRow, received: float) -> bool:
        """Record a test's newest archive (with ``archive.state_before``) and set its
        ``archived`` flag; commits.

        Returns:
            False if the run has no such test (nothing was written).
        """
        with self.guard("read"):
            row = self.conn.execute(
                "SELECT id FROM tests WHERE run_id = ? AND testname = ? AND item_path = ?",
                (self.run_id, *key),
            ).fetchone()
        if row is None:
            return False
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO archives(test_id, path, sha256, size, files,"
                " archived_at, state_before) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row[0],
                    archive.path,
                    archive.sha256,
                    archive.size,
                    archive.files,
                    received,
                    archive.state_before,
                ),
            )
            conn.execute("UPDATE tests SET archived = 1 WHERE id = ?", (row[0],))
        return True

    def archive(self, key: Key) -> ArchiveRow | None:
        """A test's newest archive, if it has one."""
        with self.guard("read"):
            row = self.conn.execute(
                f"SELECT {ArchiveRow.COLUMNS} FROM archives AS a"
                " JOIN tests AS t ON t.id = a.test_id WHERE t.testname = ? AND t.item_path = ?",
                key,
            ).fetchone()
        return None if row is None else ArchiveRow.from_sql(row)

    def forget_archives(self, keys: Iterable[Key]) -> list[Key]:
        """Delete tests' archive records and clear their ``archived`` flag; commits.

        Returns:
            The keys that had an archive record.
        """
        wanted = json.dumps(sorted(set(keys)))
        with self.transaction() as conn:
            ids = conn.execute(
                "SELECT t.id, t.testname, t.item_path FROM tests AS t"
                " JOIN archives AS a ON a.test_id = t.id"
                f" WHERE (t.testname, t.item_path) IN {_DOOMED}",
                (wanted,),
            ).fetchall()
            rows = [(test_id,) for test_id, _, _ in ids]
            conn.executemany("DELETE FROM archives WHERE test_id = ?", rows)
            conn.executemany("UPDATE tests SET archived = 0 WHERE id = ?", rows)
        return sorted((str(name), str(item)) for _, name, item in ids)

    def _change(
        self, mirror: Mirror, columns: StatusColumns, positions: list[int], received: float
    ) -> None:
        """Upsert the tests rows of the batch's last StatusChange per test (``positions``:
        this run's, in ``columns.changes``)."""
        indices = columns.changes
        tests, items = columns.tests, columns.items
        # The last position of each test wins: a dict keeps the last value per key.
        last = dict(
            zip(
                zip(
                    [tests[indices[position]] for position in positions],
                    [items[indices[position]] for position in positions],
                    strict=True,
                ),
                positions,
                strict=True,
            )
        )
        states, statuses = columns.change_states, columns.change_statuses
        hosts, comments, ts = columns.change_hosts, columns.change_comments, columns.ts
        started = self._started(columns, positions)
        updates = []
        for key, position in last.items():
            state, status, when = states[position], statuses[position], ts[indices[position]]
            start = started[key] if key in started else self._starts.get(key)
            duration = _duration(state, when, columns.origins[indices[position]], start)
            test = mirror.tests.get(key)
            if test is None:
                values = (state, status, hosts[position], comments[position], when, received)
                mirror.add(key, (*key, *values, duration or 0.0))
            else:
                # Archiving and restoring move files; the record keeps when and how long it ran.
                kept = _moves_files(test.state, state)
                event, took = (None, None) if kept else (when, duration)
                change = (state, status, hosts[position], comments[position], event, received)
                updates.append((*change, took, test.id))
                mirror.set(key, test, state, status)
            if state in ACTIVE and start is not None:
                self._starts[key] = start
            else:
                self._starts.pop(key, None)
        mirror.flush(self.conn)
        if updates:
            self.conn.executemany(_UPDATE_TEST, updates)
        for column, sql in ((columns.change_logfiles, _SET_LOG), (columns.change_jobs, _SET_JOB)):
            if any(map(column.__getitem__, positions)):
                self._set_last(mirror, columns, positions, column, sql)

    def _set_last(
        self,
        mirror: Mirror,
        columns: StatusColumns,
        positions: list[int],
        values: list[str],
        sql: str,
    ) -> None:
        """Set a column of each test (``final_logf``, ``job``) to the last value its changes
        among ``positions`` give (an empty one leaves it as it was)."""
        indices = columns.changes
        last: dict[Key, str] = {}
        for position in positions:
            if values[position]:
                index = indices[position]
                last[columns.tests[index], columns.items[index]] = values[position]
        self.conn.executemany(sql, [(value, mirror.tests[key].id) for key, value in last.items()])

    @staticmethod
    def _started(columns: StatusColumns, positions: list[int]) -> dict[Key, Start | None]:
        """Each test's start as of its last change among ``positions``, where they say:
        its RUNNING change, or ``None`` after a reset (NOT_STARTED, LAUNCHED) that no
        RUNNING followed."""
        indices, states = columns.changes, columns.change_states
        started: dict[Key, Start | None] = {}
        for position in positions:
            state = states[position]
            if state is State.RUNNING or state in _RESETS:
                index = indices[position]
                key = (columns.tests[index], columns.items[index])
                started[key] = (
                    (columns.ts[index], columns.origins[index]) if state is State.RUNNING else None
                )
        return started
