"""A write transaction on an apsw connection that lets other threads run while SQLite syncs.

apsw's own ``with connection:`` works through a savepoint whose release (the
commit, with its disk sync and any WAL checkpoint) keeps the GIL: every other
thread of the process waits for the disk. Measured beside a thread that wakes
every half millisecond, its wake-up p99 went from 1.7 ms to 29 ms. Statements
run through ``execute`` release the GIL while SQLite works.
"""

import contextlib
from collections.abc import Iterator

import apsw

__all__ = ["transaction"]


@contextlib.contextmanager
def transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` around the block; rolled back if it raises.

    Not nestable (unlike ``with connection:``).

    Raises:
        apsw.Error: SQLite failed inside the block or at commit (nothing was committed).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
