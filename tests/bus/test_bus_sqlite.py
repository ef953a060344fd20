"""The write transaction the agent's SQLite files use."""

from pathlib import Path

import apsw
import pytest

from mtpkt.bus.sqlite import transaction


def in_transaction(conn: apsw.Connection) -> bool:
    """Read anew at each call: an ``assert conn.in_transaction`` would narrow the attribute
    for the type checker, as if the statements after it could not change it."""
    return conn.in_transaction


def insert_then_fail(conn: apsw.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")


def test_commits_at_the_end_and_rolls_back_on_error(tmp_path: Path) -> None:
    conn = apsw.Connection(str(tmp_path / "t.db"))
    conn.execute("CREATE TABLE t (a INTEGER)")
    with transaction(conn) as inside:
        inside.execute("INSERT INTO t VALUES (1)")
        assert in_transaction(conn)
    assert not in_transaction(conn)
    with pytest.raises(RuntimeError, match="boom"):
        insert_then_fail(conn)
    assert not in_transaction(conn)
    with pytest.raises(apsw.SQLError), transaction(conn):
        conn.execute("INSERT INTO nowhere VALUES (3)")
    assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
    conn.close()
