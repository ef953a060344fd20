"""``[triggers]``: a script called when a test's state or status changes, run by the home.

Megatest calls its triggers from the code that writes a state change into
the database (db.scm:2819, 2846, ``mt:process-triggers``, mt.scm:168-225), so
in the process that holds the database, for every change whoever made it:
the runner's NOT_STARTED and LAUNCHED, the test's RUNNING and COMPLETED, the
PREQ_FAIL of a test that cannot run. In mtpkt that process is the home, whose
collector commits every change; an agent sees only the changes of the tests it
runs. So the home calls them, after the commit, from a thread of its own: the
collector's writer only queues what it committed (:meth:`Triggers.observe`)
and never waits for a trigger.

For a change to ``STATE``/``STATUS`` the keys ``STATE/STATUS``, ``STATE/`` and
``/STATUS`` are looked up in that order, each first in the test's testconfig
``[triggers]``, then in megatest.config's (mt.scm:207-219). (The manual's
``PASS/`` example would match a *state* PASS: the code is what counts.) A
command found runs as Megatest's ``nbfake`` runs it, in the background::

    <command> <test-id> <rundir> <trigger> <test-name> <item-path> <state> <status> <event-time>

in the test's run directory if it exists here (else the area's home), its
output appended to ``<tconfig|mtconfig>-last-trigger-<trigger, / and space as
->.log`` there (mt.scm:132-150, 209), with ``MT_TEST_NAME``,
``MT_TEST_RUN_DIR`` and ``MT_ITEMPATH`` set (mt.scm:196-199) besides the run's
target variables. One difference: every argument is quoted, so an empty item
path is an empty argument, where Megatest's unquoted line drops it and shifts
the arguments after it.
"""

import contextlib
import functools
import logging
import math
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from mtpkt.agents.area import Area, AreaError, Config
from mtpkt.pkts.status import StatusChange, StatusPacket
from mtpkt.store import Store, StoreError, TestRow

__all__ = ["MAX_RUNNING", "Triggers", "trigger_keys"]

_log = logging.getLogger(__name__)

MAX_RUNNING: Final = 16
"""Trigger commands running at once; the next waits for one to end."""
CLOSE_WAIT: Final = 2.0
"""Seconds trigger commands still running get when the home stops, before SIGKILL."""


def trigger_keys(state: str, status: str) -> tuple[str, str, str]:
    """The keys looked up for a change, in order (mt.scm:220-222)."""
    return f"{state}/{status}", f"{state}/", f"/{status}"


TESTS_LISTED: Final = 5.0
"""Seconds the trigger thread keeps its list of the area's tests."""
TESTS_RELISTED: Final = 0.5
"""Seconds after which a test not in the list has the tests listed again (a test added to
the area just before its run has its triggers run)."""


class Triggers:
    """Calls the ``[triggers]`` of committed state changes, in a thread of its own.

    Args:
        area: the area (megatest.config and the testconfigs name the triggers).
        store: the home's store (test ids, run directories, event times).
    """

    def __init__(self, area: Area, store: Store) -> None:
        self.area = area
        self.store = store
        self._queue: queue.SimpleQueue[Sequence[StatusPacket] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="home triggers", daemon=True)
        self._running: list[subprocess.Popen[bytes]] = []
        self._testconfig = functools.lru_cache(maxsize=256)(self._read_testconfig)
        self._tests: tuple[float, frozenset[str]] = (-math.inf, frozenset())
        """The area's tests, and when they were listed (the trigger thread's)."""

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the changes in hand; commands still running after
        :data:`CLOSE_WAIT` seconds are killed."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        deadline = time.monotonic() + CLOSE_WAIT
        while self._reap() and time.monotonic() < deadline:
            time.sleep(0.05)
        for process in self._running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._running.clear()

    def observe(self, packets: Sequence[StatusPacket]) -> None:
        """Queue committed packets (from the collector's writer thread: returns at once)."""
        self._queue.put(packets)

    # -- the thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        while (packets := self._queue.get()) is not None:
            try:
                self._fire(packets)
            except Exception:  # a bug must not stop the triggers of later changes
                _log.exception("triggers failed")

    def _fire(self, packets: Sequence[StatusPacket]) -> None:
        calls: list[tuple[StatusChange, str, str, str]] = []
        for packet in packets:
            if not isinstance(packet, StatusChange):
                continue
            configs = self._configs(packet)
            if not configs:  # no [triggers] for this test: nothing to look up
                continue
            for key in trigger_keys(packet.state.value, packet.status.value):
                for source, command in self._commands(packet, configs, key):
                    calls.append((packet, key, source, command))
        if not calls:
            return
        rows: dict[tuple[str, str], dict[tuple[str, str], TestRow]] = {}
        for packet, key, source, command in calls:
            run = (packet.target, packet.runname)
            if run not in rows:
                rows[run] = self._rows(*run)
            row = rows[run].get((packet.test, packet.item))
            if row is not None:  # a test with no record has no id to give (mt.scm:170)
                self._call(packet, row, key, source, command)

    def _configs(self, packet: StatusChange) -> list[tuple[str, Config]]:
        """The test's testconfig, then megatest.config, each with its log prefix, those of
        them that have a ``[triggers]`` section."""
        testconfig = self._testconfig(packet.target, packet.runname, packet.test)
        return [
            (source, config)
            for source, config in (("tconfig", testconfig), ("mtconfig", self.area.config))
            if config is not None and config.has("triggers")
        ]

    def _commands(
        self, packet: StatusChange, configs: list[tuple[str, Config]], key: str
    ) -> list[tuple[str, str]]:
        """``(log prefix, command)`` of the test's trigger ``key``, then megatest.config's."""
        found = []
        for source, config in configs:
            if not config.has("triggers", key):
                continue
            try:
                command = config.get("triggers", key, env=self.area.env, cwd=self.area.home)
            except AreaError as exc:
                _log.warning("trigger %s of %s not run: %s", key, packet.test, exc)
                continue
            if command and command.strip():
                found.append((source, command.strip()))
        return found

    def _read_testconfig(self, target: str, runname: str, test: str) -> Config | None:
        """The test's testconfig as read for the run (cached); None if it cannot be read."""
        if test not in self._known_tests() and test not in self._known_tests(again=True):
            return None
        try:
            runconfig = self.area.runconfig(target, runname)
            return self.area.testconfig(test, runconfig, runconfig.env).config
        except AreaError as exc:
            _log.warning("triggers of %s (%s %s) not read: %s", test, target, runname, exc)
            return None

    def _known_tests(self, *, again: bool = False) -> frozenset[str]:
        """The area's tests, listed again at most every :data:`TESTS_LISTED` seconds, or every
        :data:`TESTS_RELISTED` with ``again`` (for a test not found).

        One listing of the test directories for each packet of a test not cached took most
        of this thread's time with thousands of tests."""
        listed, names = self._tests
        if time.monotonic() - listed >= (TESTS_RELISTED if again else TESTS_LISTED):
            names = frozenset(self.area.test_dirs())
            self._tests = (time.monotonic(), names)
        return names

    def _rows(self, target: str, runname: str) -> dict[tuple[str, str], TestRow]:
        try:
            run_id = self.store.run_id(target, runname, create=False)
            rows = self.store.tests(run_id) if run_id is not None else []
        except StoreError as exc:
            _log.warning("triggers of run %s/%s not run: %s", target, runname, exc)
            return {}
        return {(row.testname, row.item_path): row for row in rows}

    def _call(
        self, packet: StatusChange, row: TestRow, key: str, source: str, command: str
    ) -> None:
        rundir = row.rundir or "n/a"
        here = Path(rundir) if os.path.isdir(rundir) and os.access(rundir, os.W_OK) else None
        cwd = here or self.area.home
        log = cwd / f"{source}-last-trigger-{key.replace('/', '-').replace(' ', '-')}.log"
        when = int(row.event_time if row.event_time is not None else packet.ts)
        args = [str(row.id), rundir, key, packet.test, packet.item]
        args += [packet.state.value, packet.status.value, str(when)]
        line = f"{command} {' '.join(shlex.quote(arg) for arg in args)}"
        try:
            env = self.area.base_env(packet.target, packet.runname)
        except AreaError:
            env = dict(self.area.env)
        env.update(MT_TEST_NAME=packet.test, MT_TEST_RUN_DIR=rundir, MT_ITEMPATH=packet.item)
        _log.info("TRIGGERED on %s, running command %s output at %s", key, line, log)
        while len(self._reap()) >= MAX_RUNNING:
            time.sleep(0.05)
        try:
            self._running.append(
                subprocess.Popen(
                    ["bash", "-c", f"{line} >> {shlex.quote(str(log))} 2>&1"],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # in the background, as nbfake's nohup … &
                )
            )
        except OSError as exc:
            _log.warning("trigger %s of %s could not start: %s", key, packet.test, exc)

    def _reap(self) -> list[subprocess.Popen[bytes]]:
        """The trigger commands still running (those that ended are reaped)."""
        self._running = [process for process in self._running if process.poll() is None]
        return self._running
