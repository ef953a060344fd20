"""Read-only views of database rows, for queries and the command line.

State and status are plain strings here: they are Megatest's words
(:class:`pkts.State`, :class:`pkts.Status` compare equal to them), but a
database written by other tools may hold words this code does not know.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, Self, TypeVar

import attrs
from attrs import AttrsInstance

from mtpkt.pkts.control import Control

__all__ = [
    "AgentRow",
    "ArchiveRow",
    "JournalRow",
    "RUN_SELECT",
    "RunRow",
    "StepRow",
    "TestDataRow",
    "TestRow",
    "data_value",
]


def text(value: object) -> str:
    """A TEXT column's value, ``''`` for NULL."""
    return "" if value is None else str(value)


def integer(value: object) -> int:
    """An INTEGER column's value, 0 for NULL or anything that is not a number."""
    if isinstance(value, int | float):
        return int(value)
    return 0


def real(value: object) -> float | None:
    """A REAL column's value, ``None`` for NULL or anything that is not a number."""
    if isinstance(value, int | float):
        return float(value)
    return None


def _real_or_zero(value: object) -> float:
    return real(value) or 0.0


def data_value(value: object) -> float | str | None:
    """A ``test_data`` value, expected value or tolerance: a number as a float, text as it
    is, ``None`` for NULL (the store keeps numbers as numbers, see :mod:`store.testdata`)."""
    if isinstance(value, int | float):
        return float(value)
    return None if value is None else str(value)


_READERS: Final[dict[object, Callable[[object], object]]] = {
    str: text,
    int: integer,
    float: _real_or_zero,
    float | None: real,
    float | str | None: data_value,
}
"""How a column's value is read, by the type of the field it fills."""

R = TypeVar("R", bound=AttrsInstance)


@functools.cache
def _readers(cls: type[AttrsInstance]) -> tuple[tuple[str, Callable[[object], object]], ...]:
    return tuple((field.name, _READERS[field.type]) for field in attrs.fields(cls))


def _from_sql(cls: type[R], row: Sequence[object]) -> R:
    """A row of ``cls`` from SQL values in the order of its fields, each read as its
    field's type says (``str``: :func:`text`, ``int``: :func:`integer`, ``float``:
    :func:`real` or 0.0, ``float | None``: :func:`real`)."""
    readers = _readers(cls)
    return cls(**{name: read(value) for (name, read), value in zip(readers, row, strict=True)})


class _Row:
    """An attrs row class whose fields are its SQL columns, in order."""

    __slots__ = ()  # the subclasses are slotted
    __attrs_attrs__: ClassVar[Any]  # set by attrs on each subclass

    @classmethod
    def from_sql(cls, row: Sequence[object]) -> Self:
        """Build from a row of the class's ``COLUMNS``, one value per field."""
        return _from_sql(cls, row)


RUN_SELECT: Final = (
    "runname, state, status, owner, event_time, comment, fail_count, pass_count, last_update,"
    " locked, run_status"
)
"""The ``runs`` columns :meth:`RunRow.from_sql` reads after the id and the field keys."""


@attrs.frozen(kw_only=True)
class RunRow:
    """One row of ``main.db``'s ``runs`` table."""

    id: int
    """The run's id; its database is ``<id>.db``."""
    target: str
    """The run's key values joined by ``/``."""
    runname: str
    state: str
    """Roll-up of the run's toplevel-level records, e.g. ``RUNNING``."""
    status: str
    """Worst status of those records, e.g. ``FAIL``."""
    owner: str
    event_time: float | None
    """When the run was created (home's clock, seconds since the epoch)."""
    comment: str
    fail_count: int
    """Toplevel-level records with status ``FAIL``."""
    pass_count: int
    """Toplevel-level records with status ``PASS``."""
    last_update: float | None
    locked: int = 0
    """1 when the run is locked (Megatest's ``-lock``): no clean, archive or setstate."""
    run_status: str = ""
    """The status Megatest's ``-set-run-status`` gave the run; empty when never set."""

    @classmethod
    def from_sql(cls, row: Sequence[object], nkeys: int) -> "RunRow":
        """Build from ``SELECT id, <keys…>, runname, state, status, owner, event_time, comment,
        fail_count, pass_count, last_update, locked, run_status`` (:data:`RUN_SELECT` after the
        keys)."""
        target = "/".join(text(value) for value in row[1 : 1 + nkeys])
        return _from_sql(cls, (row[0], target, *row[1 + nkeys :]))


@attrs.frozen(kw_only=True)
class TestRow(_Row):
    """One row of a run database's ``tests`` table."""

    __test__ = False  # not a pytest test class, despite the name

    id: int
    run_id: int
    testname: str
    item_path: str
    """``''`` for a test without items and for an itemized test's toplevel record."""
    host: str
    rundir: str
    state: str
    status: str
    attemptnum: int
    run_duration: float
    comment: str
    event_time: float | None
    """The sender's time of the last change (``ts`` of the packet)."""
    fail_count: int
    """For a toplevel record: items with status ``FAIL``."""
    pass_count: int
    """For a toplevel record: items with status ``PASS``."""
    archived: int
    last_update: float | None
    """When the home received the last change."""
    final_logf: str = ""
    """The test's main log, relative to its run directory (``megatest -setlog``, a logpro
    step's ``.html``); empty when none was named."""
    job: str = ""
    """The batch job the test ran in last (``slurm:4711``); empty when an agent started by
    hand ran it."""

    COLUMNS = (
        "id, run_id, testname, item_path, host, rundir, state, status, attemptnum, run_duration,"
        " comment, event_time, fail_count, pass_count, archived, last_update, final_logf, job"
    )
    """The ``SELECT`` list :meth:`from_sql` reads."""


@attrs.frozen(kw_only=True)
class StepRow(_Row):
    """One row of ``test_steps`` (one per step packet), with its test's name and item path."""

    id: int
    test_id: int
    testname: str
    item_path: str
    stepname: str
    state: str
    """``start`` or ``end``."""
    status: str
    event_time: float | None
    comment: str
    logfile: str

    COLUMNS = (
        "s.id, s.test_id, t.testname, t.item_path, s.stepname, s.state, s.status, s.event_time,"
        " s.comment, s.logfile"
    )
    """The ``SELECT`` list :meth:`from_sql` reads (``s``: test_steps, ``t``: tests)."""


@attrs.frozen(kw_only=True)
class TestDataRow(_Row):
    """One row of ``test_data`` (Megatest's test data), with its test's name and item path."""

    __test__ = False  # not a pytest test class, despite the name

    testname: str
    item_path: str
    category: str
    variable: str
    value: float | str | None
    """A number, the text given when it is not one, or ``None`` when none was given."""
    expected: float | str | None
    tol: float | str | None
    """A number, or a comparison ``>``, ``<``, ``>=``, ``<=``."""
    units: str
    comment: str
    status: str
    """``pass``, ``fail``, the status the row gave, ``ERROR: …``, or ``n/a``."""
    type: str
    last_update: float | None
    """When the home received it."""

    COLUMNS = (
        "t.testname, t.item_path, d.category, d.variable, d.value, d.expected, d.tol, d.units,"
        " d.comment, d.status, d.type, d.last_update"
    )
    """The ``SELECT`` list :meth:`from_sql` reads (``d``: test_data, ``t``: tests)."""
    SELECT = (
        f"SELECT {COLUMNS} FROM test_data AS d JOIN tests AS t ON t.id = d.test_id"
        " ORDER BY t.testname, t.item_path, d.category, d.variable"
    )
    """Every row of a run's ``test_data``, in the order views show them (Megatest's
    ``db:read-test-data`` orders by category and variable)."""


@attrs.frozen(kw_only=True)
class ArchiveRow(_Row):
    """The newest archive of a test's run directory (``archives`` in its run's database)."""

    path: str
    """The archive file."""
    sha256: str
    """Hex digest of the archive file."""
    size: int
    """Bytes of the archive file."""
    files: int
    """Regular files packed."""
    archived_at: float | None = None
    """When the home recorded it (home's clock)."""
    state_before: str = ""
    """The test's state when it was archived, which a restore gives back; empty for an
    archive recorded before mtpkt kept it (a restore then sets ``COMPLETED``)."""

    COLUMNS = "a.path, a.sha256, a.size, a.files, a.archived_at, a.state_before"
    """The ``SELECT`` list :meth:`from_sql` reads (``archives AS a``)."""


@attrs.frozen(kw_only=True)
class ArchiveListRow(_Row):
    """A test's archive as ``mtpkt archives`` lists it: the test's record and its archive."""

    testname: str
    item_path: str
    state: str
    status: str
    rundir: str
    """The test's run directory, as recorded (it may be gone: ``archive --remove``)."""
    path: str
    size: int
    files: int
    archived_at: float | None

    COLUMNS = (
        "t.testname, t.item_path, t.state, t.status, t.rundir, a.path, a.size, a.files,"
        " a.archived_at"
    )
    """The ``SELECT`` list :meth:`from_sql` reads (``tests AS t JOIN archives AS a``)."""


@attrs.frozen(kw_only=True)
class AgentRow(_Row):
    """One row of ``main.db``'s agent registry."""

    name: str
    pid: int
    slots: int
    busy: int
    interval: float
    """Seconds between the agent's beats; it is lost after twice this without one."""
    state: str
    """``online``, ``lost`` or ``offline``."""
    first_seen: float
    """Home's clock."""
    last_beat: float
    """When the home received the last heartbeat (home's clock)."""
    last_ts: float
    """The last heartbeat's ``ts`` (agent's clock)."""
    skew: float
    """``last_beat - last_ts``: clock difference plus transit time."""

    COLUMNS = "name, pid, slots, busy, interval, state, first_seen, last_beat, last_ts, skew"
    """The ``SELECT`` list :meth:`from_sql` reads."""


@attrs.frozen(kw_only=True)
class JournalRow:
    """One control packet in ``main.db``'s journal."""

    packet: Control
    """The packet as received."""
    received: float
    """When the home journaled it (home's clock)."""
    state: str
    """Where it stands, e.g. ``accepted`` or ``done``."""
    reason: str
    """Why it is in that state, if anything needs saying."""
