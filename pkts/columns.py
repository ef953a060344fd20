"""A batch of status packets by columns: the collector's way from frames to the store.

Reading packets one by one into objects costs several microseconds of Python
each, which at tens of thousands a second is most of the collector's time.
:func:`read_status_frame` reads the rows of a packed batch frame into columns
instead (one list per field), so that checking a field is one pass in C over
its column (the set of its values' types, the set of its values) and the
store can hand columns to SQLite as they are. It checks exactly what
:func:`pkts.decode_batch` checks; a frame it cannot read that way (maps
instead of rows, ints for floats, a bad field, packets of an older version
…) is read packet by packet, which also gives the precise reason for a bad
one. TestData packets are few (a handful per test, against a Step pair per
step), so they have no columns of their own but their indices: the fast path
checks each TestData row as the codec does, and the store reads them as
packets (:meth:`StatusColumns.packet`).
"""

import math
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import eq, itemgetter
from typing import Any, Final, cast

import msgpack

from mtpkt.pkts.codec import KINDS, decode_packed, open_packed, pack, unpack
from mtpkt.pkts.enums import State, Status, StepState
from mtpkt.pkts.envelope import ID_SIZE
from mtpkt.pkts.schema import FieldError
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step, TestData

__all__ = ["StatusColumns", "read_status_frame"]

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_NONE: Final = type(None)

_COMMON: Final = ("kind", "v", "id", "ts", "origin", "seq", "target", "runname", "test", "item")
"""The values every Step and StatusChange row starts with, in this order."""
_STEP_KEYS: Final = KINDS[Step.kind].keys
_CHANGE_KEYS: Final = KINDS[StatusChange.kind].keys
_DATA: Final = KINDS[TestData.kind]
assert _STEP_KEYS[: len(_COMMON)] == _CHANGE_KEYS[: len(_COMMON)] == _COMMON
assert _DATA.keys[: len(_COMMON)] == _COMMON
_LENGTHS: Final = frozenset({len(_STEP_KEYS), len(_CHANGE_KEYS), len(_DATA.keys)})

_STATES: Final = {member.value: member for member in State}
_STATUSES: Final = {member.value: member for member in Status}
_STATUS_VALUES: Final = frozenset(_STATUSES)
_STEP_STATES: Final = frozenset(member.value for member in StepState)
_KINDS: Final = frozenset({Step.kind, StatusChange.kind, _DATA.cls.kind})
_VERSIONS: Final = frozenset({Step.VERSION, StatusChange.VERSION, _DATA.cls.VERSION})
"""The versions the fast path reads: each kind's current one (older rows have fewer values
and are read packet by packet)."""
_OWN_COLUMNS: Final[dict[str, dict[str, str | None]]] = {
    Step.kind: {
        "steps": None,  # the packet's index
        "step_names": "step",
        "step_states": "state",
        "step_statuses": "status",
        "step_logfiles": "logfile",
        "step_comments": "comment",
    },
    StatusChange.kind: {
        "changes": None,
        "change_states": "state",
        "change_statuses": "status",
        "change_hosts": "host",
        "change_comments": "comment",
        "change_logfiles": "logfile",
        "change_jobs": "job",
    },
    TestData.kind: {"data": None},
}
"""The columns of a kind's own fields (column name → field name)."""


class StatusColumns:
    """Status packets as columns, in the order the senders meant.

    Every packet has an entry in the common columns (an Ack's test identity
    is ``""``). Steps and StatusChanges have columns of their own, aligned
    with :attr:`steps` and :attr:`changes`, the packets' indices; TestData
    packets only their indices, :attr:`data`.
    """

    __slots__ = (
        "_packets",
        "change_comments",
        "change_hosts",
        "change_jobs",
        "change_logfiles",
        "change_states",
        "change_statuses",
        "changes",
        "data",
        "ids",
        "items",
        "kinds",
        "origins",
        "packed",
        "runnames",
        "seqs",
        "step_comments",
        "step_logfiles",
        "step_names",
        "step_states",
        "step_statuses",
        "steps",
        "targets",
        "tests",
        "ts",
    )

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.ids: list[bytes] = []
        self.ts: list[float] = []
        self.origins: list[str] = []
        self.seqs: list[int] = []
        self.targets: list[str] = []
        self.runnames: list[str] = []
        self.tests: list[str] = []
        self.items: list[str] = []
        self.packed: list[bytes] = []
        """Each packet as :func:`pkts.pack` makes it (as it came, for a frame)."""
        self.steps: list[int] = []
        """Indices of the Step packets."""
        self.step_names: list[str] = []
        self.step_states: list[str] = []
        self.step_statuses: list[str] = []
        self.step_logfiles: list[str] = []
        self.step_comments: list[str] = []
        self.changes: list[int] = []
        """Indices of the StatusChange packets."""
        self.change_states: list[State] = []
        self.change_statuses: list[Status] = []
        self.change_hosts: list[str] = []
        self.change_comments: list[str] = []
        self.change_logfiles: list[str] = []
        self.change_jobs: list[str] = []
        self.data: list[int] = []
        """Indices of the TestData packets."""
        self._packets: list[StatusPacket] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(
        cls, packets: Sequence[StatusPacket], packed: Sequence[bytes] | None = None
    ) -> "StatusColumns":
        """The columns of packets already made (``packed``: their :func:`pkts.pack` bytes).

        Raises:
            PacketError: a packet cannot be packed.
        """
        columns = cls()
        columns._packets = list(packets)
        columns.packed = list(packed) if packed is not None else [pack(p) for p in packets]
        if len(columns.packed) != len(packets):
            raise ValueError("StatusColumns.of: packed must have one entry per packet")
        for index, packet in enumerate(packets):
            columns.kinds.append(packet.kind)
            columns.ids.append(packet.id)
            columns.ts.append(packet.ts)
            columns.origins.append(packet.origin)
            columns.seqs.append(packet.seq)
            if isinstance(packet, Ack):
                target = runname = test = item = ""
            else:
                target, runname, test, item = (
                    packet.target,
                    packet.runname,
                    packet.test,
                    packet.item,
                )
            columns.targets.append(target)
            columns.runnames.append(runname)
            columns.tests.append(test)
            columns.items.append(item)
            own = _OWN_COLUMNS.get(packet.kind, {})
            for column, field in own.items():
                getattr(columns, column).append(index if field is None else getattr(packet, field))
        return columns

    @classmethod
    def join(cls, parts: Iterable["StatusColumns"]) -> "StatusColumns":
        """One batch of several, in order."""
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        joined = cls()
        packets: list[StatusPacket] | None = []
        for part in parts:
            offset = len(joined)
            for name in cls.__slots__:
                if name == "_packets":
                    continue
                column = getattr(part, name)
                if name in ("steps", "changes", "data"):
                    column = [index + offset for index in column]
                getattr(joined, name).extend(column)
            if packets is not None and part._packets is not None:
                packets.extend(part._packets)
            else:
                packets = None
        joined._packets = packets
        return joined

    def packet(self, index: int) -> StatusPacket:
        """Packet number ``index`` as an object (read again from its bytes if need be)."""
        if self._packets is not None:
            return self._packets[index]
        return cast(StatusPacket, unpack(self.packed[index]))


def read_status_frame(frame: bytes, key: bytes) -> StatusColumns | None:
    """The status packets of a packed batch frame, by columns.

    Returns:
        ``None`` if the frame is not a packed batch (:func:`pkts.seal`) or
        holds packets other than status packets: read it with
        :func:`pkts.decode_batch`.

    Raises:
        PacketError: for any fault in the frame, as :func:`pkts.decode_batch`.
    """
    packed = open_packed(frame, key)
    if packed is None:
        return None
    columns = _read_rows(packed)
    if columns is not None:
        return columns
    # Not plain Step/StatusChange rows: read packet by packet (and say what is wrong).
    decoded = decode_packed(frame, key)
    packets = [packet for packet, _ in decoded]
    if not all(isinstance(packet, StatusPacket) for packet in packets):
        return None
    return StatusColumns.of(cast(list[StatusPacket], packets), [raw for _, raw in decoded])


def _strs(column: Sequence[object]) -> bool:
    return set(map(type, column)) <= {str}


def _ints(column: Sequence[Any], optional: bool = False) -> bool:
    if not set(map(type, column)) <= ({int, _NONE} if optional else {int}):
        return False
    values = list(filter(None, column))  # drops None (and 0, which is in range)
    return not values or (min(values) >= _INT_MIN and max(values) <= _INT_MAX)


def _floats(column: Sequence[Any], optional: bool = False) -> bool:
    if not set(map(type, column)) <= ({float, _NONE} if optional else {float}):
        return False
    return all(map(math.isfinite, filter(None, column)))


def _column(rows: Sequence[list[Any]], keys: tuple[str, ...], name: str) -> list[Any]:
    return list(map(itemgetter(keys.index(name)), rows))


def _read_rows(packed: list[bytes]) -> StatusColumns | None:
    """Columns of rows of Step, StatusChange and TestData packets of the current version
    only, every value exactly of its wire type; ``None`` for anything else (the caller
    reads such a frame packet by packet)."""
    try:
        rows = list(map(msgpack.unpackb, packed))
    except Exception:  # msgpack raises many types; the slow path says which
        return None
    try:
        return _check_rows(cast(list[list[Any]], rows), packed)
    except (TypeError, KeyError, ValueError):  # unhashable or unknown values
        return None


def _check_rows(rows: list[list[Any]], packed: list[bytes]) -> StatusColumns | None:
    if not set(map(type, rows)) <= {list}:
        return None
    if not set(map(len, rows)) <= _LENGTHS:
        return None
    kinds, v, ids, ts, origins, seqs, targets, runnames, tests, items = (
        list(map(itemgetter(index), rows)) for index in range(len(_COMMON))
    )
    found, versions = set(kinds), set(v)
    if not found <= _KINDS or not versions <= _VERSIONS:
        return None
    if not (_ints(v) and _ints(seqs) and _floats(ts)):
        return None
    if not set(map(type, ids)) <= {bytes} or not set(map(len, ids)) <= {ID_SIZE}:
        return None
    if not all(map(_strs, (origins, targets, runnames, tests, items))):
        return None
    columns = StatusColumns()
    columns.kinds, columns.ids, columns.ts = kinds, ids, ts
    columns.origins, columns.seqs = origins, seqs
    columns.targets, columns.runnames = targets, runnames
    columns.tests, columns.items = tests, items
    columns.packed = packed
    return columns if _check_kinds(columns, rows, kinds, v, (found, versions)) else None


def _of_version(version: int, versions: set[int], v: list[int], at: list[bool]) -> bool:
    """Whether the rows at ``at`` are all of ``version`` (at once when the batch's are)."""
    return versions == {version} or set(compress(v, at)) == {version}


def _check_kinds(
    columns: StatusColumns,
    rows: list[list[Any]],
    kinds: list[str],
    v: list[int],
    sets: tuple[set[str], set[int]],
) -> bool:
    """Check the fields of each kind's own, and fill their columns (``sets``: the batch's
    kinds and versions)."""
    found, versions = sets
    steps_at = list(map(eq, kinds, repeat(Step.kind)))
    if any(steps_at):
        if not _of_version(Step.VERSION, versions, v, steps_at):
            return False
        if not _check_steps(columns, rows, steps_at):
            return False
        if len(found) == 1:
            return True  # only steps: the common case
    has_data = _DATA.cls.kind in found
    if has_data:
        changes_at = list(map(eq, kinds, repeat(StatusChange.kind)))
    else:
        changes_at = [not at for at in steps_at]
    if any(changes_at):
        if not _of_version(StatusChange.VERSION, versions, v, changes_at):
            return False
        if not _check_changes(columns, rows, changes_at):
            return False
    return not has_data or _check_data(columns, rows, kinds)


def _check_steps(columns: StatusColumns, rows: list[list[Any]], at: list[bool]) -> bool:
    steps = list(compress(rows, at))
    if set(map(len, steps)) != {len(_STEP_KEYS)}:
        return False
    names, states, statuses, codes, logfiles, durations, comments = (
        _column(steps, _STEP_KEYS, name)
        for name in ("step", "state", "status", "exit_code", "logfile", "duration", "comment")
    )
    if not (_strs(names) and _strs(logfiles) and _strs(comments)):
        return False
    if not _ints(codes, optional=True):
        return False
    if not set(states) <= _STEP_STATES or not set(statuses) <= _STATUS_VALUES:
        return False
    if not _floats(durations, optional=True):
        return False
    columns.steps = list(compress(range(len(rows)), at))
    columns.step_names, columns.step_states = names, states
    columns.step_statuses, columns.step_logfiles = statuses, logfiles
    columns.step_comments = comments
    return True


def _check_changes(columns: StatusColumns, rows: list[list[Any]], at: list[bool]) -> bool:
    changes = list(compress(rows, at))
    if set(map(len, changes)) != {len(_CHANGE_KEYS)}:
        return False
    states, statuses, comments, hosts, pids, logfiles, jobs = (
        _column(changes, _CHANGE_KEYS, name)
        for name in ("state", "status", "comment", "host", "pid", "logfile", "job")
    )
    if not (_strs(comments) and _strs(hosts) and _strs(logfiles) and _strs(jobs)):
        return False
    if not _ints(pids, optional=True):
        return False
    columns.changes = list(compress(range(len(rows)), at))
    columns.change_states = list(map(_STATES.__getitem__, states))  # KeyError: not a state
    columns.change_statuses = list(map(_STATUSES.__getitem__, statuses))
    columns.change_comments, columns.change_hosts = comments, hosts
    columns.change_logfiles, columns.change_jobs = logfiles, jobs
    return True


def _check_data(columns: StatusColumns, rows: list[list[Any]], kinds: list[str]) -> bool:
    """Check each TestData row as the codec reads it (they are few); note their indices."""
    at = [index for index, kind in enumerate(kinds) if kind == _DATA.cls.kind]
    try:
        for index in at:
            _DATA.read_row(rows[index])
    except FieldError:
        return False
    columns.data = at
    return True
