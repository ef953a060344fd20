"""Writing a batch's TestData packets into their run's ``test_data`` table, and the counts.

Megatest's rules (``db.scm``):

* A row is written ``INSERT OR REPLACE`` by ``(test_id, category, variable)``
  (db.scm:3425): a later row of the same test with the same category and
  variable replaces the earlier one, also across batches and attempts.
* ``value``, ``expected`` and ``tol`` are stored as numbers (REAL) when they
  read as one (:func:`mtpkt.pkts.testdata.parse_number`), else as the text
  given, as Megatest's ``any->number-if-possible`` does (db.scm:3406-3408);
  an empty cell is stored as NULL, as Megatest stores a missing one.
* An empty ``status`` (nothing decided it) is stored as ``n/a``, the column's
  default (Megatest stores NULL there; ours is ``NOT NULL``).
* After each batch, each test that got rows has its ``pass_count`` and
  ``fail_count`` set to the number of its rows whose status is like ``pass``
  / ``fail``, case-insensitively (``db:test-data-rollup``, db.scm:3270-3287).
  The toplevel record of an itemized test keeps its items' counts (Megatest:
  "do NOT call this for the parent test on an iterated test"). The test's
  status is not changed here: the agent rolls the data into the status it
  reports.

A TestData of a test that has no row yet creates it ``NOT_STARTED``, as a
Step does.
"""

from collections.abc import Sequence
from typing import Final

import apsw

from mtpkt.pkts.columns import StatusColumns
from mtpkt.pkts.status import TestData
from mtpkt.pkts.testdata import parse_number
from mtpkt.store.mirror import Key, Mirror

__all__ = ["stored_number", "write"]

_INSERT: Final = (
    "INSERT OR REPLACE INTO test_data(test_id, category, variable, value, expected, tol, units,"
    " comment, status, type, last_update) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COUNTS: Final = (
    "UPDATE tests SET"
    " pass_count = (SELECT count(*) FROM test_data WHERE test_id = ?1 AND status LIKE 'pass'),"
    " fail_count = (SELECT count(*) FROM test_data WHERE test_id = ?1 AND status LIKE 'fail')"
    " WHERE id = ?1 RETURNING pass_count, fail_count"
)


def stored_number(text: str) -> float | str | None:
    """A cell as ``test_data`` keeps it: a number if it reads as one, NULL if empty, else
    the text."""
    if not text.strip():
        return None
    number = parse_number(text)
    return text if number is None else number


def write(
    conn: apsw.Connection,
    mirror: Mirror,
    columns: StatusColumns,
    indices: Sequence[int],
    received: float,
) -> None:
    """Write the TestData packets at ``indices`` of ``columns``, in order, inside the open
    transaction, then the counts of the tests they are about.

    Args:
        conn: the run database's writer connection.
        mirror: the run's mirror (new tests rows are added to it and flushed).
        columns: the batch.
        indices: the batch indices of this run's TestData packets.
        received: the home's time of receipt (``last_update``).
    """
    packets = [columns.packet(index) for index in indices]
    rows = []
    touched: dict[Key, None] = {}
    for index, packet in zip(indices, packets, strict=True):
        assert isinstance(packet, TestData)
        key = (packet.test, packet.item)
        test = mirror.tests.get(key) or mirror.add_not_started(key, columns.ts[index], received)
        touched[key] = None
        rows.append(
            (
                test.id,
                packet.category,
                packet.variable,
                stored_number(packet.value),
                stored_number(packet.expected),
                stored_number(packet.tol),
                packet.units,
                packet.comment,
                packet.status or "n/a",
                packet.type,
                received,
            )
        )
    mirror.flush(conn)
    conn.executemany(_INSERT, rows)
    for key in touched:
        name, item = key
        if not item and name in mirror.items:
            continue  # an itemized test's toplevel record counts its items
        test = mirror.tests[key]
        for passed, failed in conn.execute(_COUNTS, (test.id,)):
            test.pass_count, test.fail_count = int(passed), int(failed)
