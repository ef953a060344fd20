"""The home's slow work on runs: ``clean``, ``archive`` and ``setstate``, in a thread of their own.

Each journaled ``clean``, ``archive`` or ``setstate`` packet is queued here and carried out
in turn, so requests are answered at once however many directories there are.

* ``clean``: the dispatcher has already asked for the selected tests to be
  killed; this waits until none of them runs any more, removes their run
  directories, then (unless ``keep_records``) their records. With
  ``archives`` their archive files go too (only inside the archive root), and
  their archive records; without it the archive files stay. A test whose
  directory is refused keeps its record. The journal entry ends ``done``
  with what was removed.
* ``archive``: each selected test instance that has ended gets its run
  directory packed into the area's archive and the archive recorded
  (checksum, size, date, the state it had: the ``archives`` table,
  ``tests.archived``); with ``remove`` the directory then goes and the test
  becomes ``ARCHIVED``; with ``restore`` the newest archive is unpacked back
  and the test has the state it had before again (``COMPLETED`` for an
  archive recorded without one). Archiving and restoring move files: the
  status, host and comment are carried over, and the store keeps the
  record's event time and duration (:mod:`mtpkt.store.rundb`).
* ``setstate``: each selected record that is not running or waiting, and whose
  state and status fit the packet's filters, gets the packet's state and
  status (Megatest's ``-set-state-status``, runs.scm:2168-2182).

Every path is checked to stay inside the run tree (:mod:`agents.rundirs`);
a test whose directory cannot be handled is named in the journal's reason
and the others go on. The outcome is also committed as an ``ack`` status
packet (``done``), so it shows on the live stream.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from mtpkt.agents.area import Area, AreaError, TestPatt, TestRef
from mtpkt.agents.area.disks import disk_roots
from mtpkt.agents.area.testpatt import any_of
from mtpkt.agents.rundirs import (
    archive_root,
    archive_test_dir,
    remove_archive,
    remove_test_dir,
    restore_test_dir,
)
from mtpkt.pkts import State, Status
from mtpkt.pkts.control import Archive, Clean, SetState
from mtpkt.pkts.outcome import ACTIVE, FINAL, read_state, read_status
from mtpkt.pkts.text import display_name
from mtpkt.store import ArchiveRow, Store, StoreError, TestRow

__all__ = ["Change", "Chores"]

_log = logging.getLogger(__name__)

Change = tuple[TestRef, State, Status, str, str]
"""A record change the home commits: instance, state, status, comment, host."""

SETTLE_WAIT: Final = 60.0
"""Seconds a ``clean`` waits for the tests it killed to end (their grace, then their report);
what still runs then is left alone and named in the journal."""
_POLL: Final = 0.2


class Chores:
    """Carries out ``clean`` and ``archive`` packets one at a time, in its own thread.

    Args:
        area: the area (its linktree and archive disks).
        store: the home's store.
        report: commits record changes as the home's status packets.
        finish: marks a journaled packet done (or, third argument true, failed) with a
            reason, and publishes its ``ack``.
    """

    def __init__(
        self,
        area: Area,
        store: Store,
        *,
        report: Callable[[Sequence[Change]], None],
        finish: Callable[[bytes, str, bool], None],
    ) -> None:
        self.area = area
        self.store = store
        self._report = report
        self._finish = finish
        self._queue: queue.Queue[Clean | Archive | SetState | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="home chores", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the packet in hand (queued ones stay journaled, for the next home)."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, packet: Clean | Archive | SetState) -> None:
        self._queue.put(packet)

    def _loop(self) -> None:
        while (packet := self._queue.get()) is not None:
            try:
                reason = self._do(packet)
                self._finish(packet.id, reason, False)
            except (StoreError, AreaError, TimeoutError) as exc:
                _log.error("%s %s/%s: %s", packet.kind, packet.target, packet.runname, exc)
                self._failed(packet, str(exc))
            except Exception as exc:  # a bug must not stop the chores of later packets
                _log.exception("%s %s/%s failed", packet.kind, packet.target, packet.runname)
                self._failed(packet, f"internal error: {exc}")

    def _failed(self, packet: Clean | Archive | SetState, reason: str) -> None:
        """Journal a chore that could not be done (the next home does not try it again), and
        say so on the stream: ``megatest -remove-runs`` waits for the ``ack``."""
        try:
            self._finish(packet.id, reason, True)
        except (StoreError, TimeoutError) as exc:
            _log.error("cannot journal the failure of %s: %s", packet.id.hex(), exc)

    # -- selection ------------------------------------------------------------------------

    def selected(self, packet: Clean | Archive | SetState) -> list[TestRow]:
        """The run's records the packet's testpatt selects."""
        run_id = self.store.run_id(packet.target, packet.runname, create=False)
        if run_id is None:
            return []
        patt = TestPatt.parse(packet.testpatt)
        rows = self.store.tests(run_id)
        return [row for row in rows if patt.matches(row.testname, row.item_path)]

    def has_archive(self, packet: Archive, row: TestRow) -> bool:
        """Whether the record's test has an archive to restore."""
        key = (row.testname, row.item_path)
        return self.store.archive(packet.target, packet.runname, key) is not None

    def _disks(self) -> list[Path]:
        """The area's ``[disks]``: test directories may be links into them."""
        return disk_roots(self.area.config, self.area.env, self.area.home)

    def _ref(self, packet: Clean | Archive | SetState, row: TestRow) -> TestRef:
        return TestRef(packet.target, packet.runname, row.testname, row.item_path)

    @staticmethod
    def _own_dirs(rows: Sequence[TestRow]) -> list[TestRow]:
        """The records that have a run directory of their own: not an itemized test's toplevel."""
        itemized = {row.testname for row in rows if row.item_path}
        return [row for row in rows if row.item_path or row.testname not in itemized]

    def _do(self, packet: Clean | Archive | SetState) -> str:
        if self.store.locked(packet.target, packet.runname):  # locked after it was taken
            raise AreaError(f"run {packet.target}/{packet.runname} is locked")
        if isinstance(packet, Clean):
            return self._clean(packet)
        if isinstance(packet, Archive):
            return self._archive(packet)
        return self._set_state(packet)

    # -- setstate ---------------------------------------------------------------------------

    def _set_state(self, packet: SetState) -> str:
        state_fits, status_fits = any_of(packet.only_states), any_of(packet.only_statuses)
        rows = [
            row
            for row in self.selected(packet)
            if state_fits(row.state) and status_fits(row.status)
        ]
        busy = [row for row in rows if row.state in ACTIVE]
        rows = [row for row in rows if row.state not in ACTIVE]
        changes = [
            (
                self._ref(packet, row),
                packet.state,
                packet.status,
                packet.comment or row.comment,
                row.host,
            )
            for row in rows
        ]
        if changes:
            self._report(changes)
        verb = f"set {len(rows)} test(s) to {packet.state.value}/{packet.status.value}"
        return _reason(verb, [_name(row) for row in rows], busy, [])

    # -- clean ------------------------------------------------------------------------------

    def _clean(self, packet: Clean) -> str:
        rows = self._settled(packet)
        running = [row for row in rows if row.state in ACTIVE]
        rows = [row for row in rows if row.state not in ACTIVE]
        removed_dirs, problems, refused = 0, [], []
        disks = self._disks()
        for row in rows:
            try:
                removed_dirs += remove_test_dir(
                    self.area.linktree,
                    packet.target,
                    packet.runname,
                    row.testname,
                    row.item_path,
                    disks=disks,
                )
            except AreaError as exc:
                problems.append(str(exc))
                refused.append(row)
        # A test whose directory stays (it leads out of the run tree …) keeps its record:
        # the directory is not left behind unrecorded, and the refusal can be seen and redone.
        rows = [row for row in rows if row not in refused]
        names = [_name(row) for row in rows]
        archives = self._clean_archives(packet, rows, problems)
        if packet.keep_records:
            what = f"removed the run directories of {len(rows)} test(s), kept their records"
        else:
            self._report(
                [(self._ref(packet, r), State.DELETED, Status.NA, "cleaned", "") for r in rows]
            )
            keys = [(row.testname, row.item_path) for row in rows]
            self.store.remove_tests(packet.target, packet.runname, keys)
            dirs = "run directory" if removed_dirs == 1 else "run directories"
            what = f"removed {len(rows)} test record(s) and {removed_dirs} {dirs}"
        return _reason(what + archives, names, running, problems)

    def _clean_archives(self, packet: Clean, rows: Sequence[TestRow], problems: list[str]) -> str:
        """With ``archives``, delete the cleaned tests' archive files (only inside the archive
        root) and, for records that stay, their archive records. What it did, or what it
        left, said for the journal: ``, 2 archive(s) removed``."""
        found = [
            (row, archive)
            for row in rows
            if (archive := self.store.archive(packet.target, packet.runname, _key(row)))
        ]
        if not found:
            return ""
        root = archive_root(self.area)
        if not packet.archives:
            return f", kept {len(found)} archive(s) in {root} (--archives removes them)"
        gone: list[TestRow] = []
        for row, archive in found:
            try:
                remove_archive(root, Path(archive.path))
                gone.append(row)
            except AreaError as exc:
                problems.append(str(exc))
        if packet.keep_records:
            self.store.forget_archives(packet.target, packet.runname, map(_key, gone))
        return f", {len(gone)} archive(s) removed"

    def _settled(self, packet: Clean) -> list[TestRow]:
        """The selected records, once none of them runs (or the wait is over)."""
        deadline = time.monotonic() + SETTLE_WAIT
        while True:
            rows = self.selected(packet)
            if not any(row.state in ACTIVE for row in rows) or time.monotonic() >= deadline:
                return rows
            time.sleep(_POLL)

    # -- archive ----------------------------------------------------------------------------

    def _archive(self, packet: Archive) -> str:
        rows = self._own_dirs(self.selected(packet))
        running = [row for row in rows if row.state in ACTIVE or row.state == State.NOT_STARTED]
        rows = [row for row in rows if row not in running]
        done: list[str] = []
        problems: list[str] = []
        for row in rows:
            try:
                if packet.restore:
                    self._restore_one(packet, row)
                else:
                    self._archive_one(packet, row)
                done.append(_name(row))
            except AreaError as exc:
                problems.append(str(exc))
        if packet.restore:
            verb = "restored"
        elif packet.remove:
            verb = "archived and removed"
        else:
            verb = "archived"
        return _reason(f"{verb} {len(done)} test(s)", done, running, problems)

    def _archive_one(self, packet: Archive, row: TestRow) -> None:
        if row.state == State.ARCHIVED:
            return  # packed and removed already
        info = archive_test_dir(
            self.area.linktree,
            archive_root(self.area),
            packet.target,
            packet.runname,
            row.testname,
            row.item_path,
            disks=self._disks(),
        )
        archive = ArchiveRow(
            path=str(info.path),
            sha256=info.sha256,
            size=info.size,
            files=info.files,
            state_before=row.state,
        )
        key = (row.testname, row.item_path)
        self.store.record_archive(packet.target, packet.runname, key, archive)
        if packet.remove:
            remove_test_dir(
                self.area.linktree,
                packet.target,
                packet.runname,
                row.testname,
                row.item_path,
                disks=self._disks(),
            )
            # Megatest's archive-remove: state ARCHIVED, status and comment as they were
            # (runs.scm:2303). A status word another tool wrote, which no packet can carry,
            # becomes CHECK, as every reader of records counts it.
            self._report([self._moved(packet, row, State.ARCHIVED)])

    def _restore_one(self, packet: Archive, row: TestRow) -> None:
        key = (row.testname, row.item_path)
        archive = self.store.archive(packet.target, packet.runname, key)
        if archive is None:
            raise AreaError(f"{_name(row)} has no archive to restore")
        restore_test_dir(
            self.area.linktree,
            Path(archive.path),
            archive.sha256,
            packet.target,
            packet.runname,
            row.testname,
            row.item_path,
            disks=self._disks(),
        )
        if row.state == State.ARCHIVED:
            before = read_state(archive.state_before) if archive.state_before else None
            # Megatest's restore sets COMPLETED (archive.scm:288); an archive that recorded
            # the state before gives that back: a KILLED test is KILLED again.
            state = before if before in FINAL and before is not State.ARCHIVED else None
            self._report([self._moved(packet, row, state or State.COMPLETED)])

    def _moved(self, packet: Archive, row: TestRow, state: State) -> Change:
        """The record change of a test whose files moved: only the state differs."""
        return (self._ref(packet, row), state, read_status(row.status), row.comment, row.host)


def _key(row: TestRow) -> tuple[str, str]:
    return (row.testname, row.item_path)


def _name(row: TestRow) -> str:
    return display_name(row.testname, row.item_path)


def _reason(
    what: str, names: Sequence[str], running: Sequence[TestRow], problems: list[str]
) -> str:
    """The journal's account of a chore: what was done to which tests, and what was not."""
    parts = [f"{what}: {', '.join(names)}" if names else what]
    if running:
        parts.append(f"left alone, not ended: {', '.join(_name(row) for row in running)}")
    parts += problems
    return "; ".join(parts)
