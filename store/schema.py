"""Tables, schema versions and the upgrade path of ``main.db`` and ``<run_id>.db``.

Table and column names are Megatest's, so users' SQL keeps working. Every
database records its schema version in ``metadat`` (``var='schema_version'``);
one without it is version 0 (e.g. a database made by Megatest itself, or by an
early build). :data:`MAIN` and :data:`RUN` list their migrations in order:
migration ``n`` takes a database from version ``n`` to ``n + 1``, so a new
database and an old one reach the current version the same way. A database
newer than this code is refused before anything is written to it.
"""

import re
from collections.abc import Callable, Sequence
from typing import Final

import apsw
import attrs

from mtpkt.store.connection import Database
from mtpkt.store.errors import StoreError
from mtpkt.store.journal import ACCEPTED

__all__ = [
    "MAIN",
    "RUN",
    "RUN_COLUMNS",
    "DbSchema",
    "Table",
    "check_fields",
    "check_version",
    "open_schema",
    "quote",
    "read_keys",
    "schema_version",
]

RUN_COLUMNS: Final = (
    "id",
    "runname",
    "state",
    "status",
    "owner",
    "event_time",
    "comment",
    "fail_count",
    "pass_count",
    "last_update",
    "locked",
    "run_status",
)
"""The ``runs`` columns besides one per field key (a key may not take one of these names)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote(name: str) -> str:
    """An SQL identifier in double quotes (names are checked by :func:`check_fields`)."""
    return '"' + name.replace('"', '""') + '"'


@attrs.frozen
class Table:
    """A table as created by a migration: its columns and table constraints."""

    name: str
    columns: tuple[tuple[str, str], ...]
    """``(name, declaration)`` pairs, e.g. ``("state", "TEXT NOT NULL DEFAULT 'NOT_STARTED'")``."""
    constraints: tuple[str, ...] = ()

    def create_sql(self) -> str:
        """The ``CREATE TABLE`` statement."""
        parts = [f"{quote(name)} {decl}".rstrip() for name, decl in self.columns]
        return f"CREATE TABLE {self.name} ({', '.join([*parts, *self.constraints])})"


_METADAT = Table(
    "metadat",
    (("id", "INTEGER PRIMARY KEY"), ("var", "TEXT NOT NULL"), ("val", "TEXT")),
    ("UNIQUE (var)",),
)
# The same packet always has the same id, origin and origin seq, so the key
# that dedupes it is (origin, origin_seq, packet_id). A unique index on the
# random id alone would make every batch dirty pages all over the index: a
# batch of 1000 packets cost 4.8 ms at 50k rows and 19 ms at 300k. Led by
# origin and its growing seq, the index is written near its end and stays flat.
_HISTORY = Table(
    "history",
    (
        ("seq", "INTEGER PRIMARY KEY"),  # stream sequence number, global across databases
        ("packet_id", "BLOB NOT NULL"),
        ("origin", "TEXT NOT NULL DEFAULT ''"),
        ("origin_seq", "INTEGER NOT NULL DEFAULT 0"),
        ("kind", "TEXT NOT NULL DEFAULT ''"),
        ("testname", "TEXT NOT NULL DEFAULT ''"),
        ("item_path", "TEXT NOT NULL DEFAULT ''"),
        ("received", "REAL"),  # home's clock
        ("packet", "BLOB NOT NULL"),  # pkts.pack(packet)
    ),
    ("UNIQUE (origin, origin_seq, packet_id)",),
)


def _main_tables_v1(fields: Sequence[str]) -> tuple[Table, ...]:
    key_columns = tuple((field, "TEXT NOT NULL DEFAULT ''") for field in fields)
    unique = ", ".join(quote(name) for name in (*fields, "runname"))
    return (
        Table(
            "keys",
            (
                ("id", "INTEGER PRIMARY KEY"),
                ("fieldname", "TEXT NOT NULL"),
                ("fieldtype", "TEXT NOT NULL DEFAULT 'TEXT'"),
            ),
            ("UNIQUE (fieldname)",),
        ),
        Table(
            "runs",
            (
                # AUTOINCREMENT: a deleted run's id, and so its <id>.db, is never reused.
                ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
                *key_columns,
                ("runname", "TEXT NOT NULL DEFAULT ''"),
                ("state", "TEXT NOT NULL DEFAULT 'NOT_STARTED'"),
                ("status", "TEXT NOT NULL DEFAULT 'n/a'"),
                ("owner", "TEXT NOT NULL DEFAULT ''"),
                ("event_time", "REAL"),
                ("comment", "TEXT NOT NULL DEFAULT ''"),
                ("fail_count", "INTEGER NOT NULL DEFAULT 0"),
                ("pass_count", "INTEGER NOT NULL DEFAULT 0"),
                ("last_update", "REAL"),
            ),
            (f"UNIQUE ({unique})",),
        ),
        _METADAT,
        Table(
            "journal",  # control packets, journaled before the sender is answered
            (
                ("id", "BLOB PRIMARY KEY"),
                ("kind", "TEXT NOT NULL DEFAULT ''"),
                ("origin", "TEXT NOT NULL DEFAULT ''"),
                ("ts", "REAL"),
                ("received", "REAL"),
                ("target", "TEXT NOT NULL DEFAULT ''"),
                ("runname", "TEXT NOT NULL DEFAULT ''"),
                ("testpatt", "TEXT NOT NULL DEFAULT '%'"),
                ("host", "TEXT"),
                ("packet", "BLOB"),
                ("state", f"TEXT NOT NULL DEFAULT '{ACCEPTED}'"),
                ("reason", "TEXT NOT NULL DEFAULT ''"),
            ),
        ),
        Table(
            "agents",
            (
                ("name", "TEXT PRIMARY KEY"),
                ("pid", "INTEGER NOT NULL DEFAULT 0"),
                ("slots", "INTEGER NOT NULL DEFAULT 0"),
                ("busy", "INTEGER NOT NULL DEFAULT 0"),
                ("interval", "REAL NOT NULL DEFAULT 0"),
                ("state", "TEXT NOT NULL DEFAULT 'online'"),  # online | lost | offline
                ("first_seen", "REAL"),
                ("last_beat", "REAL"),  # home's clock
                ("last_ts", "REAL"),  # agent's clock
                ("skew", "REAL"),  # last_beat - last_ts
            ),
        ),
        Table(
            "run_heads",  # newest stream seq in each run's history: readers skip the others
            (("run_id", "INTEGER PRIMARY KEY"), ("last_seq", "INTEGER NOT NULL DEFAULT 0")),
        ),
        Table(
            "origins",  # last status seq committed per origin, to see gaps
            (("origin", "TEXT PRIMARY KEY"), ("last_seq", "INTEGER NOT NULL DEFAULT 0")),
        ),
        _HISTORY,  # Ack packets (they belong to no run)
    )


_RUN_TABLES_V1: Final = (
    Table(
        "tests",
        (
            ("id", "INTEGER PRIMARY KEY"),
            ("run_id", "INTEGER NOT NULL DEFAULT -1"),
            ("testname", "TEXT NOT NULL DEFAULT ''"),
            ("host", "TEXT NOT NULL DEFAULT ''"),
            ("rundir", "TEXT NOT NULL DEFAULT ''"),
            ("item_path", "TEXT NOT NULL DEFAULT ''"),
            ("state", "TEXT NOT NULL DEFAULT 'NOT_STARTED'"),
            ("status", "TEXT NOT NULL DEFAULT 'n/a'"),
            ("attemptnum", "INTEGER NOT NULL DEFAULT 0"),
            ("run_duration", "REAL NOT NULL DEFAULT 0"),
            ("comment", "TEXT NOT NULL DEFAULT ''"),
            ("event_time", "REAL"),
            ("fail_count", "INTEGER NOT NULL DEFAULT 0"),
            ("pass_count", "INTEGER NOT NULL DEFAULT 0"),
            ("archived", "INTEGER NOT NULL DEFAULT 0"),
            ("last_update", "REAL"),
        ),
        ("UNIQUE (run_id, testname, item_path)",),
    ),
    Table(
        "test_steps",
        (
            ("id", "INTEGER PRIMARY KEY"),
            ("test_id", "INTEGER NOT NULL DEFAULT 0"),
            ("stepname", "TEXT NOT NULL DEFAULT ''"),
            ("state", "TEXT NOT NULL DEFAULT ''"),  # start | end
            ("status", "TEXT NOT NULL DEFAULT 'n/a'"),
            ("event_time", "REAL"),
            ("comment", "TEXT NOT NULL DEFAULT ''"),
            ("logfile", "TEXT NOT NULL DEFAULT ''"),
        ),
    ),
    Table(
        "test_data",
        (
            ("id", "INTEGER PRIMARY KEY"),
            ("test_id", "INTEGER"),
            ("category", "TEXT NOT NULL DEFAULT ''"),
            ("variable", "TEXT"),
            ("value", "REAL"),
            ("expected", "REAL"),
            ("tol", "REAL"),
            ("units", "TEXT"),
            ("comment", "TEXT NOT NULL DEFAULT ''"),
            ("status", "TEXT NOT NULL DEFAULT 'n/a'"),
            ("type", "TEXT NOT NULL DEFAULT ''"),
            ("last_update", "REAL"),
        ),
        ("UNIQUE (test_id, category, variable)",),
    ),
    _METADAT,
    _HISTORY,
)
_RUN_INDEXES_V1: Final = ("CREATE INDEX IF NOT EXISTS test_steps_test_id ON test_steps(test_id)",)


def _table_columns(conn: apsw.Connection, table: str) -> set[str] | None:
    """Lower-cased column names of ``table``, or ``None`` if there is no such table."""
    columns = {str(row[1]).lower() for row in conn.execute(f"PRAGMA table_info({table})")}
    return columns or None


def _ensure(conn: apsw.Connection, label: str, tables: Sequence[Table]) -> None:
    """Create missing tables; add missing columns to tables that exist.

    Constraints of a table that already exists are left as they are (SQLite
    cannot add them); the writer does not rely on them.
    """
    for table in tables:
        existing = _table_columns(conn, table.name)
        if existing is None:
            conn.execute(table.create_sql())
            continue
        for name, decl in table.columns:
            if name.lower() in existing:
                continue
            if "PRIMARY KEY" in decl or "UNIQUE" in decl:
                raise StoreError(f"cannot upgrade {label}: table {table.name} lacks column {name}")
            conn.execute(f"ALTER TABLE {table.name} ADD COLUMN {quote(name)} {decl}")


def read_keys(conn: apsw.Connection) -> tuple[str, ...]:
    """The field keys recorded in a ``main.db``'s ``keys`` table, in order (empty if none)."""
    if _table_columns(conn, "keys") is None:
        return ()
    return tuple(str(row[0]) for row in conn.execute("SELECT fieldname FROM keys ORDER BY rowid"))


def check_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """Check an area's ``[fields]`` keys can name ``runs`` columns.

    Raises:
        StoreError: none given, one is not an SQL identifier, a repeat, or a ``runs`` column.
    """
    keys = tuple(fields)
    if not keys:
        raise StoreError("the area has no [fields] keys; a target needs at least one")
    seen: set[str] = set()
    for key in keys:
        if not _IDENTIFIER.fullmatch(key):
            raise StoreError(f"field key {key!r} is not a valid column name (letters, digits, _)")
        if key.lower() in RUN_COLUMNS or key.lower() in seen:
            raise StoreError(f"field key {key!r} repeats or clashes with a column of runs")
        seen.add(key.lower())
    return keys


def _main_v1(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 0 → 1: the schema of the first release (creates everything in a new main.db)."""
    existing = read_keys(conn)
    if existing and existing != tuple(fields):
        raise StoreError(
            f"{label} was made with fields {'/'.join(existing)}, "
            f"the area has fields {'/'.join(fields)}"
        )
    _ensure(conn, label, _main_tables_v1(fields))
    if not existing:
        conn.executemany(
            "INSERT INTO keys(fieldname, fieldtype) VALUES (?, 'TEXT')", ((f,) for f in fields)
        )


def _run_v1(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 0 → 1: the schema of the first release (creates everything in a new run db)."""
    _ensure(conn, label, _RUN_TABLES_V1)
    for statement in _RUN_INDEXES_V1:
        conn.execute(statement)


_ARCHIVES: Final = Table(
    "archives",  # the newest archive of each test's run directory (mtpkt send archive)
    (
        ("test_id", "INTEGER PRIMARY KEY"),
        ("path", "TEXT NOT NULL"),
        ("sha256", "TEXT NOT NULL"),
        ("size", "INTEGER NOT NULL DEFAULT 0"),
        ("files", "INTEGER NOT NULL DEFAULT 0"),
        ("archived_at", "REAL"),  # home's clock
    ),
)


_CLEANED: Final = Table(
    "cleaned",  # status packets whose history rows `clean` removed: a retry is not new
    (
        ("origin", "TEXT NOT NULL"),
        ("origin_seq", "INTEGER NOT NULL"),
        ("packet_id", "BLOB NOT NULL"),
        ("cleaned_at", "REAL"),  # home's clock
    ),
    ("PRIMARY KEY (origin, origin_seq, packet_id)",),
)


def _main_v2(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 1 → 2: the ``cleaned`` table."""
    _ensure(conn, label, (_CLEANED,))


_AGENT_WORK: Final = Table(
    "agent_work",  # the dispatcher's books of each agent, written at most once a second
    (
        ("name", "TEXT PRIMARY KEY"),
        ("running", "INTEGER NOT NULL DEFAULT 0"),  # run tasks handed out, test not final
        ("pending", "INTEGER NOT NULL DEFAULT 0"),  # tasks sent, not acknowledged yet
        ("updated", "REAL"),  # home's clock
    ),
)


def _main_v3(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 2 → 3: the ``agent_work`` table (``mtpkt agents`` reads it)."""
    _ensure(conn, label, (_AGENT_WORK,))


def _run_v2(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 1 → 2: the ``archives`` table."""
    _ensure(conn, label, (_ARCHIVES,))


def _run_v3(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 2 → 3: ``tests.final_logf``, the test's main log (Megatest's column, db.scm:1283;
    empty where Megatest's default is ``logs/final.log``: no log is named until a test
    names one)."""
    # Through _ensure: a tests table made by Megatest itself has the column already.
    _ensure(conn, label, (Table("tests", (("final_logf", "TEXT NOT NULL DEFAULT ''"),)),))


def _run_v4(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 3 → 4: ``tests.job``, the batch job a test runs in (``slurm:4711``; empty for
    a test run by an agent started by hand)."""
    _ensure(conn, label, (Table("tests", (("job", "TEXT NOT NULL DEFAULT ''"),)),))


def _run_v5(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 4 → 5: ``archives.state_before``, the test's state when it was archived, which
    ``archive --restore`` gives back (``ARCHIVED`` names where the files are, not a verdict);
    empty for an archive recorded before, which restores as ``COMPLETED`` (Megatest's
    archive.scm:288)."""
    _ensure(conn, label, (Table("archives", (("state_before", "TEXT NOT NULL DEFAULT ''"),)),))


def _main_v4(conn: apsw.Connection, label: str, fields: Sequence[str]) -> None:
    """Version 3 → 4: ``runs.locked`` and ``runs.run_status`` (Megatest's ``-lock`` and
    ``-set-run-status``; Megatest keeps them in ``runs.state`` and ``runs.status``, which
    here hold the roll-up of the run's tests)."""
    columns = (("locked", "INTEGER NOT NULL DEFAULT 0"), ("run_status", "TEXT NOT NULL DEFAULT ''"))
    _ensure(conn, label, (Table("runs", columns),))


Migration = Callable[[apsw.Connection, str, Sequence[str]], None]
"""``(connection, label for messages, field keys)``; runs inside the upgrade's transaction."""


@attrs.frozen
class DbSchema:
    """One kind of database: its migrations, in order."""

    kind: str
    migrations: tuple[Migration, ...]

    @property
    def version(self) -> int:
        """The version this code writes: the number of migrations."""
        return len(self.migrations)


MAIN: Final = DbSchema("main", (_main_v1, _main_v2, _main_v3, _main_v4))
"""``main.db``: runs (locked, with a status set by hand, since v4), keys, the journal, agents
and their work, origins, Ack history, cleaned packet ids."""
RUN: Final = DbSchema("run", (_run_v1, _run_v2, _run_v3, _run_v4, _run_v5))
"""``<run_id>.db``: one run's tests (with their main log since v3, their batch job since v4),
steps, test data, history and archives (with the state before, since v5)."""


def schema_version(conn: apsw.Connection, label: str) -> int:
    """The version recorded in ``metadat``; 0 when there is none.

    Raises:
        StoreError: the recorded version is not a number.
    """
    if _table_columns(conn, "metadat") is None:
        return 0
    row = conn.execute("SELECT val FROM metadat WHERE var = 'schema_version'").fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise StoreError(f"{label} has a bad schema_version {row[0]!r}") from None


def _set_version(conn: apsw.Connection, version: int) -> None:
    updated = conn.execute(
        "UPDATE metadat SET val = ? WHERE var = 'schema_version' RETURNING var", (str(version),)
    ).fetchall()
    if not updated:
        conn.execute("INSERT INTO metadat(var, val) VALUES ('schema_version', ?)", (str(version),))


def check_version(conn: apsw.Connection, schema: DbSchema, label: str) -> int:
    """The database's version, refusing one newer than this code.

    Raises:
        StoreError: the database is newer than this code knows.
    """
    version = schema_version(conn, label)
    if version > schema.version:
        raise StoreError(
            f"{label} has schema version {version}, newer than this mtpkt knows "
            f"({schema.version}): upgrade mtpkt"
        )
    return version


def open_schema(db: Database, schema: DbSchema, fields: Sequence[str]) -> None:
    """Bring a writer's database to the current schema, or refuse it.

    Nothing is written to a database that is current or newer. Migrations of
    an older one run in one transaction: it is upgraded completely or not at all.

    Raises:
        StoreError: the database is newer than this code, a migration cannot
            apply (e.g. ``main.db`` made with other fields), or SQLite failed.
    """
    label = str(db.path)
    with db.guard("prepare"):
        if check_version(db.conn, schema, label) == schema.version:
            return
    with db.transaction("prepare") as conn:
        version = check_version(conn, schema, label)  # again, under the write lock
        for migration in schema.migrations[version:]:
            migration(conn, label, fields)
        _set_version(conn, schema.version)
