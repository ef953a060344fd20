"""The writer's side of ``main.db``: runs, Ack history, origins and the stream head.

``metadat`` holds ``head``, the newest stream sequence number whose packets
are all committed and rolled up into ``runs``; ``run_heads`` holds the newest
one of each run. ``main.db`` is committed after the run databases of a batch,
so readers that see ``head`` see every packet up to it; a run database holding
sequence numbers above it was committed by a batch whose ``main.db`` commit
failed (or a crash came between), and :class:`store.commit.Committer` repairs it.
"""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mtpkt.store import history, schema
from mtpkt.store.connection import connect
from mtpkt.store.errors import StoreError
from mtpkt.store.history import HistoryDb, Row
from mtpkt.store.rows import RUN_SELECT, RunRow
from mtpkt.store.tally import RunSummary

__all__ = ["MainDb", "match_keys", "split_target"]


def match_keys(existing: Sequence[str], fields: Sequence[str], label: str) -> None:
    """Refuse a ``main.db`` made with other field keys.

    Raises:
        StoreError: naming both sets of keys.
    """
    if tuple(existing) != tuple(fields):
        raise StoreError(
            f"{label} was made with fields {'/'.join(existing) or '(none)'}, "
            f"the area has fields {'/'.join(fields)}"
        )


def split_target(target: str, fields: Sequence[str]) -> list[str]:
    """A target's key values, one per field.

    Raises:
        StoreError: it has not one part per field.
    """
    values = target.split("/")
    if len(values) != len(fields):
        raise StoreError(
            f"target {target!r} has {len(values)} part(s); the area's fields are {'/'.join(fields)}"
        )
    return values


class MainDb(HistoryDb):
    """Writes ``main.db`` (its history holds the Acks); used only by :class:`store.Store`,
    under its lock."""

    def __init__(self, dbdir: Path, fields: Sequence[str], *, durable: bool) -> None:
        """Open (creating or upgrading) ``dbdir/main.db``.

        Raises:
            StoreError: it cannot be opened or upgraded, was made with other
                fields, or is newer than this code.
        """
        keys = schema.check_fields(fields)
        path = dbdir / "main.db"
        super().__init__(path, connect(path, durable=durable))
        try:
            schema.open_schema(self, schema.MAIN, keys)
            with self.guard("read"):
                match_keys(schema.read_keys(self.conn), keys, str(path))
        except BaseException:
            self.close()
            raise
        self.optimize_on_close = True
        self.fields = keys
        """The area's ``[fields]`` keys."""
        columns = ", ".join(schema.quote(key) for key in keys)
        self._find = (
            f"SELECT id FROM runs WHERE {' AND '.join(f'{schema.quote(k)} = ?' for k in keys)}"
            " AND runname = ?"
        )
        # A run's id names its database file: ids of removed runs are not given again.
        self._insert = (
            f"INSERT INTO runs(id, {columns}, runname, state, status, event_time, last_update)"
            " VALUES (1 + max(coalesce((SELECT max(id) FROM runs), 0),"
            " coalesce((SELECT CAST(val AS INTEGER) FROM metadat WHERE var = 'last_run_id'), 0)),"
            f" {', '.join('?' for _ in keys)}, ?, 'NOT_STARTED', 'n/a', ?, ?) RETURNING id"
        )
        self._select = f"SELECT id, {columns}, {RUN_SELECT} FROM runs"

    def find_run(self, target: str, runname: str) -> int | None:
        """The id of a run, or ``None``.

        Raises:
            StoreError: the target does not fit the fields.
        """
        values = split_target(target, self.fields)
        with self.guard("read"):
            row = self.conn.execute(self._find, (*values, runname)).fetchone()
        return None if row is None else int(row[0])

    def create_run(self, target: str, runname: str, now: float) -> int:
        """Insert a ``NOT_STARTED`` run and commit it; returns its id.

        Raises:
            StoreError: the target does not fit the fields, or SQLite failed.
        """
        values = split_target(target, self.fields)
        with self.transaction() as conn:
            row = conn.execute(self._insert, (*values, runname, now, now)).fetchone()
        assert row is not None  # INSERT … RETURNING gives one row
        return int(row[0])

    def set_run(
        self, run_id: int, *, locked: bool | None, status: str, comment: str, now: float
    ) -> None:
        """Lock or unlock a run, and set its hand-set status and comment (empty: unchanged);
        commits."""
        with self.transaction() as conn:
            if locked is not None:
                conn.execute("UPDATE runs SET locked = ? WHERE id = ?", (int(locked), run_id))
            if status:
                conn.execute("UPDATE runs SET run_status = ? WHERE id = ?", (status, run_id))
            if comment:
                conn.execute("UPDATE runs SET comment = ? WHERE id = ?", (comment, run_id))
            conn.execute("UPDATE runs SET last_update = ? WHERE id = ?", (now, run_id))

    def remove_run(self, run_id: int) -> None:
        """Delete a run's row (its id is not given to a later run); commits."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            conn.execute("DELETE FROM run_heads WHERE run_id = ?", (run_id,))
            conn.execute(
                "INSERT INTO metadat(var, val) VALUES ('last_run_id', ?) ON CONFLICT(var)"
                " DO UPDATE SET val = max(CAST(val AS INTEGER), CAST(excluded.val AS INTEGER))",
                (str(run_id),),
            )

    def add_cleaned(self, packets: Iterable[tuple[str, int, bytes]], now: float) -> None:
        """Note the history rows ``clean`` removed, inside the open transaction."""
        with self.guard("write"):
            self.conn.executemany(
                "INSERT OR IGNORE INTO cleaned(origin, origin_seq, packet_id, cleaned_at)"
                " VALUES (?, ?, ?, ?)",
                ((origin, seq, packet_id, now) for origin, seq, packet_id in packets),
            )

    def any_cleaned(self) -> bool:
        """Whether ``clean`` ever removed history rows."""
        with self.guard("read"):
            return self.conn.execute("SELECT 1 FROM cleaned LIMIT 1").fetchone() is not None

    def cleaned(self, keys: Iterable[history.Key]) -> set[bytes]:
        """The ids of the packets of ``keys`` whose history rows ``clean`` removed."""
        with self.guard("read"):
            return history.held(self.conn, keys, "cleaned")

    def has_run(self, run_id: int) -> bool:
        """Whether a run of this id exists."""
        with self.guard("read"):
            return (
                self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
                is not None
            )

    def run_ids(self) -> list[int]:
        """Every run's id, ascending."""
        with self.guard("read"):
            return [int(row[0]) for row in self.conn.execute("SELECT id FROM runs ORDER BY id")]

    def runs(self) -> list[RunRow]:
        """Every run, by id."""
        with self.guard("read"):
            rows = self.conn.execute(f"{self._select} ORDER BY id")
            return [RunRow.from_sql(row, len(self.fields)) for row in rows]

    def stored_head(self) -> int:
        """The stream head recorded in ``metadat`` (0 if none)."""
        with self.guard("read"):
            row = self.conn.execute("SELECT val FROM metadat WHERE var = 'head'").fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def load_origins(self) -> dict[str, int]:
        """``origin → last_seq`` as committed."""
        with self.guard("read"):
            return {
                str(o): int(s) for o, s in self.conn.execute("SELECT origin, last_seq FROM origins")
            }

    def write(
        self,
        acks: Iterable[Row],
        summaries: Mapping[int, RunSummary],
        run_heads: Mapping[int, int],
        origins: Iterable[tuple[str, int]],
        head: int,
        received: float,
    ) -> None:
        """Write a batch's part of ``main.db``, inside the open transaction.

        Args:
            acks: history rows of new Ack packets.
            summaries: the roll-up of each run the batch touched (or repairs).
            run_heads: the newest stream seq of each run that got packets.
            origins: ``(origin, last_seq)`` pairs that changed.
            head: the stream head once the batch is committed.
            received: the home's time of the batch.
        """
        with self.guard("write"):
            history.insert(self.conn, acks)
            if summaries:
                self.conn.executemany(
                    "UPDATE runs SET state = ?, status = ?, pass_count = ?, fail_count = ?,"
                    " last_update = ? WHERE id = ?",
                    [
                        (s.state, s.status, s.pass_count, s.fail_count, received, run_id)
                        for run_id, s in summaries.items()
                    ],
                )
            self.conn.executemany(
                "INSERT INTO run_heads(run_id, last_seq) VALUES (?, ?)"
                " ON CONFLICT(run_id) DO UPDATE SET last_seq = excluded.last_seq",
                run_heads.items(),
            )
            self.conn.executemany(
                "INSERT INTO origins(origin, last_seq) VALUES (?, ?)"
                " ON CONFLICT(origin) DO UPDATE SET last_seq = excluded.last_seq",
                origins,
            )
            self._set_head(head)

    def _set_head(self, head: int) -> None:
        updated = self.conn.execute(
            "UPDATE metadat SET val = ? WHERE var = 'head' RETURNING var", (str(head),)
        ).fetchall()
        if not updated:
            self.conn.execute("INSERT INTO metadat(var, val) VALUES ('head', ?)", (str(head),))
