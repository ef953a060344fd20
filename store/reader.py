"""Reading the committed history from other threads, beside the writer."""

import collections
import heapq
import itertools
import threading
from pathlib import Path
from typing import Final

from mtpkt.pkts import PacketError, unpack
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import schema
from mtpkt.store.connection import Database, connect_readonly
from mtpkt.store.errors import StoreError
from mtpkt.store.maindb import split_target

__all__ = ["MAX_OPEN_READERS", "HistoryReader"]

MAX_OPEN_READERS: Final = 64
"""Run databases a reader keeps open between calls (least recently used are closed)."""

_READ: Final = "SELECT seq, packet FROM history WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"


class HistoryReader:
    """Committed status packets by stream sequence number, through read-only connections.

    WAL lets these connections read while the writer writes. Each call reads
    in short transactions that end before it returns, so the writer's
    checkpoints are never held back by an idle reader. One reader may be
    shared by threads (calls take turns); it is cheaper to give each thread its own.

    A reader sees a packet once ``main.db`` records a head at or above its
    sequence number: the writer commits ``main.db`` after the run databases,
    so every packet up to that head is visible in its run database by then,
    and a merged read never skips one that commits later.
    """

    def __init__(self, dbdir: Path) -> None:
        """Open ``dbdir/main.db`` read-only.

        Raises:
            StoreError: there is no ``main.db``, or it needs an upgrade by the
                writer, or it is newer than this code.
        """
        self.dbdir = Path(dbdir)
        """The store directory."""
        path = self.dbdir / "main.db"
        if not path.exists():
            raise StoreError(f"no store in {self.dbdir}: main.db is missing")
        self._lock = threading.Lock()
        self._runs: collections.OrderedDict[int, Database] = collections.OrderedDict()
        self._main: Database | None = Database(path, connect_readonly(path))
        try:
            with self._main.guard("read"):
                version = schema.check_version(self._main.conn, schema.MAIN, str(path))
                self._fields = schema.read_keys(self._main.conn)
            if version < schema.MAIN.version:
                raise StoreError(f"{path} has schema version {version}: let mtpkt home upgrade it")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every connection. Safe to call twice."""
        with self._lock:
            while self._runs:
                self._runs.popitem()[1].close()
            if self._main is not None:
                self._main.close()
                self._main = None

    def _db(self) -> Database:
        if self._main is None:
            raise StoreError(f"the history reader of {self.dbdir} is closed")
        return self._main

    def head(self) -> int:
        """The newest stream sequence number committed and visible to readers (0 if none)."""
        with self._lock:
            return self._head()

    def _head(self) -> int:
        main = self._db()
        with main.guard("read"):
            row = main.conn.execute("SELECT val FROM metadat WHERE var = 'head'").fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def history(
        self,
        *,
        after: int = 0,
        limit: int = 1000,
        target: str = "",
        runname: str = "",
        acks: bool = False,
    ) -> list[tuple[int, StatusPacket]]:
        """Committed status packets with a sequence number above ``after``, ascending.

        Args:
            after: the last sequence number the caller has (0: from the start).
            limit: at most this many packets.
            target: only packets of runs of this target (empty: every target).
            runname: only packets of runs of this name (empty: every run name).
                With both empty the Ack packets (which belong to no run) come too.
            acks: the Ack packets also when ``target`` or ``runname`` is given.

        Returns:
            ``(sequence number, packet)`` pairs.

        Raises:
            StoreError: the target does not fit the fields, a database cannot
                be read, or it holds a packet that cannot be read back.
        """
        if limit <= 0:
            return []
        with self._lock:
            head = self._head()
            if after >= head:
                return []
            sources = [self._run(run_id) for run_id in self._matching(target, runname, after)]
            if acks or (not target and not runname):
                sources.append(self._db())
            merged = heapq.merge(*(self._read(db, after, head, limit) for db in sources if db))
            picked = list(itertools.islice(merged, limit))
            self._trim()
        return [(seq, self._packet(seq, data)) for seq, data in picked]

    def _matching(self, target: str, runname: str, after: int) -> list[int]:
        """Runs of the target and runname (empty: any) with packets after ``after``.

        ``run_heads`` is read after the head, in a snapshot at least as new,
        so a run with packets up to that head is never left out.
        """
        clauses = ["h.last_seq > ?"]
        args: list[object] = [after]
        if target:
            values = split_target(target, self._fields)
            clauses += [f"r.{schema.quote(key)} = ?" for key in self._fields]
            args += values
        if runname:
            clauses.append("r.runname = ?")
            args.append(runname)
        sql = (
            "SELECT r.id FROM runs AS r JOIN run_heads AS h ON h.run_id = r.id"
            f" WHERE {' AND '.join(clauses)} ORDER BY r.id"
        )
        main = self._db()
        with main.guard("read"):
            return [int(row[0]) for row in main.conn.execute(sql, args)]

    def _run(self, run_id: int) -> Database | None:
        """A run database's reader connection; ``None`` if it has no database yet."""
        db = self._runs.get(run_id)
        if db is None:
            path = self.dbdir / f"{run_id}.db"
            if not path.exists():
                return None
            db = self._runs[run_id] = Database(path, connect_readonly(path))
        self._runs.move_to_end(run_id)
        return db

    def _trim(self) -> None:
        while len(self._runs) > MAX_OPEN_READERS:
            self._runs.popitem(last=False)[1].close()

    @staticmethod
    def _read(db: Database, after: int, head: int, limit: int) -> list[tuple[int, bytes]]:
        with db.guard("read"):
            return [
                (int(seq), bytes(data))
                for seq, data in db.conn.execute(_READ, (after, head, limit))
            ]

    def _packet(self, seq: int, data: bytes) -> StatusPacket:
        try:
            packet = unpack(data)
        except PacketError as exc:
            raise StoreError(f"history of {self.dbdir}: packet {seq} unreadable: {exc}") from exc
        if not isinstance(packet, StatusPacket):
            raise StoreError(f"history of {self.dbdir}: packet {seq} is a {packet.kind} packet")
        return packet
