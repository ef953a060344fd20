"""The databases the store's writer has open: ``main.db``, the run databases, the runs' ids.

Used only by :class:`store.Store` and its parts, under the Store's lock.
"""

import collections
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from mtpkt.store.errors import StoreError
from mtpkt.store.files import lock_file
from mtpkt.store.maindb import MainDb
from mtpkt.store.rundb import RunDb

__all__ = ["MAX_OPEN_RUNS", "Databases"]

log = logging.getLogger(__name__)

MAX_OPEN_RUNS: Final = 64
"""Run databases the writer keeps open between batches (least recently used are closed)."""


def _take_lock(dbdir: Path) -> int:
    """Lock ``dbdir/writer.lock`` for this process, so only one Store writes a directory."""
    path = dbdir / "writer.lock"
    try:
        fd = lock_file(path)
    except OSError as exc:
        raise StoreError(f"cannot lock {path}: {exc.strerror}") from exc
    if fd is None:
        raise StoreError(f"another store writer has {dbdir} open (lock {path} is held)")
    return fd


class Databases:
    """``main.db`` and the run databases used last, of a store directory locked for writing.

    Run databases are opened on first use and kept open up to
    :data:`MAX_OPEN_RUNS` (least recently used are closed by :meth:`trim`);
    the ids of runs looked up are remembered, since a run's id never changes.
    """

    def __init__(self, dbdir: Path, fields: Sequence[str], *, durable: bool) -> None:
        """Lock the directory (creating it if missing) and open ``main.db``.

        Raises:
            StoreError: another writer has it open, or ``main.db`` cannot be
                opened (see :class:`store.maindb.MainDb`).
        """
        self.dbdir = dbdir
        """The store directory."""
        self.durable = durable
        """Commits survive power loss (``synchronous=FULL``); see :mod:`store.connection`."""
        try:
            self.dbdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.dbdir}: {exc.strerror}") from exc
        self._lock_fd: int | None = _take_lock(self.dbdir)
        self._runs: collections.OrderedDict[int, RunDb] = collections.OrderedDict()
        self._run_ids: dict[tuple[str, str], int] = {}
        self._main: MainDb | None = None
        try:
            self._main = MainDb(self.dbdir, fields, durable=durable)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every database and release the directory. Safe to call twice."""
        while self._runs:
            self._runs.popitem()[1].close()
        if self._main is not None:
            self._main.close()
            self._main = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def main(self) -> MainDb:
        """``main.db``.

        Raises:
            StoreError: the store is closed.
        """
        if self._main is None:
            raise StoreError(f"the store of {self.dbdir} is closed")
        return self._main

    def run(self, run_id: int) -> RunDb:
        """A run's database, opened (and created) if it is not open."""
        rundb = self._runs.get(run_id)
        if rundb is None:
            rundb = RunDb(self.dbdir / f"{run_id}.db", run_id, durable=self.durable)
            self._runs[run_id] = rundb
        self._runs.move_to_end(run_id)
        return rundb

    def existing_run(self, run_id: int) -> RunDb:
        """The database of a run ``main.db`` holds.

        Raises:
            StoreError: there is no such run.
        """
        if not self.main().has_run(run_id):
            raise StoreError(f"no run with id {run_id} in {self.dbdir}")
        return self.run(run_id)

    def trim(self) -> None:
        """Close the least recently used run databases beyond :data:`MAX_OPEN_RUNS`."""
        while len(self._runs) > MAX_OPEN_RUNS:
            self._runs.popitem(last=False)[1].close()

    def run_id(self, target: str, runname: str, now: float, *, create: bool = True) -> int | None:
        """The id of a run, created (``NOT_STARTED``, with its database) if new and ``create``.

        Raises:
            StoreError: the target does not have one part per field, or SQLite failed.
        """
        run_id = self._run_ids.get((target, runname))
        if run_id is not None:
            return run_id
        main = self.main()
        run_id = main.find_run(target, runname)
        if run_id is None:
            if not create:
                return None
            run_id = main.create_run(target, runname, now)
            self.run(run_id)  # creates <run_id>.db
        self._run_ids[(target, runname)] = run_id
        return run_id

    def find(self, target: str, runname: str, now: float) -> RunDb | None:
        """The database of a run that exists, or ``None``."""
        run_id = self.run_id(target, runname, now, create=False)
        return None if run_id is None else self.run(run_id)

    def remove_run(self, target: str, runname: str, run_id: int) -> None:
        """Delete a run's row (its id is not used again) and its database files."""
        self.main().remove_run(run_id)
        self._run_ids.pop((target, runname), None)
        rundb = self._runs.pop(run_id, None)
        if rundb is not None:
            rundb.close()
        for suffix in ("", "-wal", "-shm"):
            (self.dbdir / f"{run_id}.db{suffix}").unlink(missing_ok=True)
        log.info("%s/%s: no tests left, run %d removed", target, runname, run_id)
