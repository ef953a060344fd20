"""Read-only queries of a store directory, for ``mtpkt runs``, ``tests``, ``agents`` and
``report``.

The databases are opened read-only and every query is one short statement
(its own read transaction), or a few in one short read transaction where they
must agree (:meth:`StoreQuery.results`), so these work beside a running home
without holding back its checkpoints, and just as well while no home runs.
"""

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar

import attrs

from mtpkt import pkts
from mtpkt.pkts.enums import State, StepState
from mtpkt.pkts.liveness import GRACE, Liveness
from mtpkt.pkts.liveness import liveness as agent_liveness
from mtpkt.pkts.outcome import ACTIVE, read_state, read_status
from mtpkt.pkts.outcome import settled as is_settled
from mtpkt.pkts.status import StatusChange, StatusPacket, Step
from mtpkt.pkts.text import end_label
from mtpkt.store import schema
from mtpkt.store.connection import Database, connect_readonly
from mtpkt.store.errors import StoreError
from mtpkt.store.maindb import split_target
from mtpkt.store.mirror import Key
from mtpkt.store.registry import GRACE_VAR
from mtpkt.store.rows import (
    RUN_SELECT,
    AgentRow,
    ArchiveListRow,
    RunRow,
    StepRow,
    TestDataRow,
    TestRow,
    integer,
    real,
)

__all__ = [
    "NOT_STARTED",
    "RUNNING",
    "AgentInfo",
    "RunInfo",
    "RunResults",
    "StoreQuery",
    "last_attempts",
    "liveness",
    "most_first",
    "standing",
]

R = TypeVar("R")

RUNNING: Final = "running"
"""Where a test being run stands (LAUNCHED, REMOTEHOSTSTART, RUNNING, KILLREQ)."""
NOT_STARTED: Final = "not_started"
"""Where a test not handed out yet stands."""

# Instances: every record but the toplevel (roll-up) record of a test with items, which only
# sums up its items: the rule mtpkt.tools.itemized.Itemized keeps for the other commands.
_INSTANCE_COUNTS: Final = (
    "SELECT state, status, count(*) FROM tests AS t WHERE t.item_path != '' OR NOT EXISTS"
    " (SELECT 1 FROM tests AS i WHERE i.run_id = t.run_id AND i.testname = t.testname"
    " AND i.item_path != '') GROUP BY state, status"
)


def _match(column: str, value: str) -> str:
    """The SQL test of ``column`` against ``value``: LIKE for a ``%`` pattern, else ``=``."""
    return f"{column} LIKE ?" if "%" in value else f"{column} = ?"


def standing(state: str, status: str) -> str:
    """Where a test instance stands, in one word: its status once ``COMPLETED``
    (``PASS``, ``FAIL`` …), its state if it ended otherwise (``KILLED`` …, or a word
    mtpkt does not know), its status if it will never run (``PREQ_FAIL`` …), else
    :data:`RUNNING` or :data:`NOT_STARTED`."""
    known = read_state(state)  # a word mtpkt does not know: INCOMPLETE, it ended
    if known in ACTIVE:
        return RUNNING
    if known is State.NOT_STARTED:
        # One that will never run stands where its status says (PREQ_FAIL, ZERO_ITEMS …).
        return str(status) if is_settled(known, read_status(status)) else NOT_STARTED
    return end_label(state, status, with_status=False)


def most_first(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts by where they stand (:func:`standing`), the most first, ties by name."""
    return dict(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))


@attrs.frozen(kw_only=True)
class RunInfo:
    """A run and how its test instances stand."""

    run: RunRow
    counts: Mapping[str, int]
    """Test instances by :func:`standing`, most first (the toplevel record of a test with
    items is not counted: its items are)."""
    settled: bool
    """Every instance is in a final state (none running or waiting)."""

    @property
    def total(self) -> int:
        """Test instances of the run."""
        return sum(self.counts.values())


@attrs.frozen(kw_only=True)
class AgentInfo:
    """An agent of the registry, with the dispatcher's books of it."""

    agent: AgentRow
    running: int | None
    """Run tasks the home handed it whose test is not final (``None``: not recorded)."""
    pending: int | None
    """Tasks the home sent it that it has not acknowledged (``None``: not recorded)."""
    recorded: float | None
    """When the home recorded ``running`` and ``pending`` (home's clock)."""


@attrs.frozen(kw_only=True)
class RunResults:
    """What a run's report needs, read from one commit of its database."""

    tests: tuple[TestRow, ...]
    """Every ``tests`` record, by test name and item path."""
    steps: Mapping[Key, tuple[Step, ...]]
    """Each instance's steps of its last attempt (:func:`last_attempts`)."""
    data: Mapping[Key, tuple[TestDataRow, ...]] = attrs.field(factory=dict)
    """Each instance's test data, by category and variable."""


def last_attempts(packets: Iterable[StatusPacket]) -> dict[Key, tuple[Step, ...]]:
    """Each test instance's steps in its last attempt, in the order they started: each as its
    newest packet (its END, or its START while it runs); an END that names no log file
    carries its START's.

    Args:
        packets: a run's Step and StatusChange packets in commit order. A change
            to NOT_STARTED or LAUNCHED begins a new attempt (a rerun): the steps
            of the one before are dropped, as the store drops their start.
    """
    attempts: dict[Key, dict[str, Step]] = {}
    for packet in packets:
        match packet:
            case StatusChange(state=State.NOT_STARTED | State.LAUNCHED):
                attempts.pop((packet.test, packet.item), None)
            case Step():
                steps = attempts.setdefault((packet.test, packet.item), {})
                began = steps.get(packet.step)
                if packet.state is StepState.END and not packet.logfile and began is not None:
                    packet = attrs.evolve(packet, logfile=began.logfile)
                steps[packet.step] = packet
    return {key: tuple(steps.values()) for key, steps in attempts.items()}


def _check_current(version: int, path: Path) -> None:
    """Refuse a run database older than this code: the home upgrades every run database
    when it starts (an old home may still be running)."""
    if version < schema.RUN.version:
        raise StoreError(
            f"{path} has schema version {version}, older than this mtpkt reads"
            f" ({schema.RUN.version}): start the upgraded mtpkt home to upgrade it"
        )


def liveness(agent: AgentRow, now: float, grace: float) -> Liveness:
    """How the home sees an agent at ``now`` (:func:`mtpkt.pkts.liveness.liveness`)."""
    return agent_liveness(agent.state == "offline", now - agent.last_beat, agent.interval, grace)


class StoreQuery:
    """Read-only queries of one store directory; a context manager that closes its connections.

    Raises:
        StoreError: ``main.db`` is missing, cannot be opened, was never
            upgraded by ``mtpkt home``, or is newer than this code.
    """

    def __init__(self, dbdir: Path) -> None:
        self.dbdir = Path(dbdir)
        """The store directory."""
        path = self.dbdir / "main.db"
        if not path.exists():
            raise StoreError(f"no store in {self.dbdir}: main.db is missing")
        self._main = Database(path, connect_readonly(path))
        try:
            with self._main.guard("read"):
                self.version = schema.check_version(self._main.conn, schema.MAIN, str(path))
                self.fields = schema.read_keys(self._main.conn)
            if self.version < 1:
                raise StoreError(f"{path} has schema version 0: let mtpkt home upgrade it")
            # A main.db an older home still runs on has no lock or run status: none is set.
            self._run_select = (
                RUN_SELECT
                if self.version >= 4
                else RUN_SELECT.replace("locked, run_status", "0, ''")
            )
        except BaseException:
            self._main.close()
            raise

    def close(self) -> None:
        """Close the connection to ``main.db``."""
        self._main.close()

    def __enter__(self) -> "StoreQuery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._main.guard("read"):
            return [tuple(row) for row in self._main.conn.execute(sql, args)]

    # -- runs ---------------------------------------------------------------------------

    def runs(self, *, target: str = "", runname: str = "") -> list[RunRow]:
        """Runs of ``target`` and ``runname`` (empty: any), by id.

        A run name, or a part of the target, holding ``%`` is a pattern, as Megatest reads
        them (``runname LIKE ?``, db.scm ``db:get-runs``): ``%`` stands for any text and
        ``_`` for any one character; one without ``%`` is matched exactly.

        Raises:
            StoreError: the target does not fit the area's fields.
        """
        clauses: list[str] = []
        args: list[object] = []
        if target:
            values = split_target(target, self.fields)
            args += values
            pairs = zip(self.fields, values, strict=True)
            clauses += [_match(schema.quote(key), value) for key, value in pairs]
        if runname:
            clauses.append(_match("runname", runname))
            args.append(runname)
        columns = ", ".join(schema.quote(key) for key in self.fields)
        sql = (
            f"SELECT id, {columns}, {self._run_select} FROM runs"
            + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
            + " ORDER BY id"
        )
        return [RunRow.from_sql(row, len(self.fields)) for row in self._select(sql, args)]

    def run_info(self, run: RunRow) -> RunInfo:
        """How a run's test instances stand (none if it has no database yet).

        Raises:
            StoreError: its database cannot be read.
        """
        counts: collections.Counter[str] = collections.Counter()
        settled = True
        for state, status, number in self._run_rows(run.id, _INSTANCE_COUNTS):
            counts[standing(str(state), str(status))] += integer(number)
            settled = settled and is_settled(read_state(state), read_status(status))
        return RunInfo(run=run, counts=most_first(counts), settled=settled)

    # -- tests --------------------------------------------------------------------------

    def tests(
        self, run_id: int, *, states: Iterable[str] = (), statuses: Iterable[str] = ()
    ) -> list[TestRow]:
        """A run's ``tests`` records by test name and item path, optionally only those in
        one of ``states`` and with one of ``statuses``.

        Raises:
            StoreError: the run's database cannot be read.
        """
        clauses: list[str] = []
        args: list[object] = []
        for column, values in (("state", list(states)), ("status", list(statuses))):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                args += values
        sql = (
            f"SELECT {TestRow.COLUMNS} FROM tests"
            + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
            + " ORDER BY testname, item_path"
        )
        rows = self._run_rows(run_id, sql, args, version=schema.RUN.version)
        return [TestRow.from_sql(row) for row in rows]

    def steps(self, run_id: int) -> list[StepRow]:
        """A run's ``test_steps`` rows (one per step packet) in the order written.

        Raises:
            StoreError: the run's database cannot be read.
        """
        return self._current(
            run_id,
            StepRow.from_sql,
            f"SELECT {StepRow.COLUMNS} FROM test_steps AS s"
            " LEFT JOIN tests AS t ON t.id = s.test_id ORDER BY s.id",
        )

    def archives(self, run_id: int) -> list[ArchiveListRow]:
        """A run's archived tests with their newest archive, by test name and item path.

        Raises:
            StoreError: the run's database cannot be read.
        """
        return self._current(
            run_id,
            ArchiveListRow.from_sql,
            f"SELECT {ArchiveListRow.COLUMNS} FROM archives AS a"
            " JOIN tests AS t ON t.id = a.test_id ORDER BY t.testname, t.item_path",
        )

    def results(self, run: RunRow) -> RunResults:
        """The run's records, the steps of each instance's last attempt and its test data,
        from the same commit (one read transaction).

        Raises:
            StoreError: the run has no database yet, it cannot be read, it is older or newer
                than this code, or it holds a packet that cannot be read back.
        """
        path = self.dbdir / f"{run.id}.db"
        if not path.is_file():
            raise StoreError(
                f"run {run.target} {run.runname} has no database ({path}): nothing recorded yet"
            )
        db = Database(path, connect_readonly(path))
        try:
            with db.guard("read"):
                _check_current(schema.check_version(db.conn, schema.RUN, str(path)), path)
                db.conn.execute("BEGIN")
                rows = db.conn.execute(
                    f"SELECT {TestRow.COLUMNS} FROM tests ORDER BY testname, item_path"
                ).fetchall()
                data = db.conn.execute(TestDataRow.SELECT).fetchall()
                packed = db.conn.execute(
                    "SELECT packet FROM history WHERE kind IN ('step', 'status_change')"
                    " ORDER BY seq"
                ).fetchall()
        finally:
            db.close()  # ends the read transaction (a rollback: nothing was written)
        packets = [_unpack(path, row[0]) for row in packed]
        changes = [packet for packet in packets if isinstance(packet, Step | StatusChange)]
        by_test: dict[Key, list[TestDataRow]] = collections.defaultdict(list)
        for row in data:
            found = TestDataRow.from_sql(row)
            by_test[found.testname, found.item_path].append(found)
        return RunResults(
            tests=tuple(TestRow.from_sql(row) for row in rows),
            steps=last_attempts(changes),
            data={key: tuple(rows) for key, rows in by_test.items()},
        )

    def _current(self, run_id: int, make: Callable[[Sequence[object]], R], sql: str) -> list[R]:
        """``make`` of each row of a query on a run's database, refusing one older than this
        code; none if it has no database yet."""
        return [make(row) for row in self._run_rows(run_id, sql, version=schema.RUN.version)]

    def _run_rows(
        self, run_id: int, sql: str, args: Sequence[object] = (), *, version: int = 1
    ) -> list[tuple[object, ...]]:
        """Rows of a query on a run's database of at least ``version``; none if it has no
        database yet."""
        path = self.dbdir / f"{run_id}.db"
        if not path.exists():
            return []
        db = Database(path, connect_readonly(path))
        try:
            with db.guard("read"):
                found = schema.schema_version(db.conn, str(path))
                if found < version:
                    _check_current(found, path)
                return [tuple(row) for row in db.conn.execute(sql, args)]
        finally:
            db.close()

    # -- agents -------------------------------------------------------------------------

    def agent_grace(self) -> float:
        """The seconds of grace the home gives a lost agent (as the last home recorded it)."""
        rows = self._select("SELECT val FROM metadat WHERE var = ?", (GRACE_VAR,))
        try:
            return float(str(rows[0][0])) if rows else GRACE
        except ValueError:
            return GRACE

    def agents(self) -> list[AgentInfo]:
        """Every agent of the registry, by name, with the home's books of it."""
        agents = [
            AgentRow.from_sql(row)
            for row in self._select(f"SELECT {AgentRow.COLUMNS} FROM agents ORDER BY name")
        ]
        work: dict[str, tuple[object, ...]] = {}
        if self.version >= 3:  # agent_work came with version 3
            sql = "SELECT name, running, pending, updated FROM agent_work"
            work = {str(row[0]): row[1:] for row in self._select(sql)}
        infos = []
        for agent in agents:
            figures = work.get(agent.name)
            infos.append(
                AgentInfo(
                    agent=agent,
                    running=None if figures is None else integer(figures[0]),
                    pending=None if figures is None else integer(figures[1]),
                    recorded=None if figures is None else real(figures[2]),
                )
            )
        return infos


def _unpack(path: Path, data: object) -> pkts.Packet:
    """A packet of a run's history.

    Raises:
        StoreError: it cannot be read back.
    """
    try:
        if not isinstance(data, bytes):
            raise pkts.PacketError(f"a {type(data).__name__} where a packet belongs", b"")
        return pkts.unpack(data)
    except pkts.PacketError as exc:
        raise StoreError(f"{path} holds a packet that cannot be read: {exc}") from None
