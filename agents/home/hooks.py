"""Runs' ``pre-hook`` and ``post-hook`` (``[runs]`` of megatest.config), run by the home.

Megatest runs them from the ``megatest -run`` process, the one that plans the
run and launches its tests (runs.scm:235-311): in mtpkt that is the home, so
the home runs them, on its host, in the area's home directory, with the run's
environment (``MT_TARGET``, ``MT_RUNNAME``, the runconfig variables …). Each
is ``bash -c "<hook> >> <area>/logs/<pre|post>-hook-<target, / as ->-<runname>.log 2>&1"``.

* ``pre-hook``: only for a run that has no tests yet (runs.scm:237-250,
  "Skipping pre-hook call … as there are existing tests for this run"), and
  before any of its tests starts (runs.scm:469): the launch is *held*, its
  tests recorded ``NOT_STARTED`` but handed to no agent, until the hook ends.
* ``post-hook``: for every ``run`` packet (the check for existing tests is
  commented out in runs.scm:289-291), once Megatest's ``-run`` would reach
  its end (runs.scm:1597): with ``[setup] run-wait yes`` once every test has
  ended, otherwise once every test has left ``NOT_STARTED`` (launched, or ended
  without running).

A hook's exit code does not stop the run (Megatest ignores what ``system``
returns); a failure is a warning in the home's log. Hooks run one at a time
in a thread of their own, never in a thread that answers requests or commits.
"""

import contextlib
import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from mtpkt.agents.area import Area, ConfigError

__all__ = ["Hooks", "hook_log"]

_log = logging.getLogger(__name__)


def hook_log(area: Path, which: str, target: str, runname: str) -> Path:
    """``<area>/logs/<which>-<target with / as ->-<runname>.log`` (runs.scm:247-249)."""
    return area / "logs" / f"{which}-{target.replace('/', '-')}-{runname}.log"


@attrs.frozen
class _Call:
    which: str
    """``pre-hook`` or ``post-hook``."""
    target: str
    runname: str
    env: Mapping[str, str]
    then: Callable[[], None] | None = None


class Hooks:
    """Runs the hooks of runs in a thread of their own, one after the other.

    Args:
        area: the area (its megatest.config names the hooks).
    """

    def __init__(self, area: Area) -> None:
        self.area = area
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="home hooks", daemon=True)
        self._running: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def configured(self, which: str) -> bool:
        """Whether megatest.config names this hook."""
        return self.area.config.has("runs", which)

    def run_wait(self) -> bool:
        """``[setup] run-wait yes``: the post-hook waits for every test to end."""
        try:
            return (self.area.config.get("setup", "run-wait") or "").strip() == "yes"
        except ConfigError as exc:
            _log.warning("run-wait: %s", exc)
            return False

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop: the hook running now is killed (its process group), queued ones dropped."""
        self._queue.put(None)
        with self._lock:
            if self._running is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._running.pid, signal.SIGKILL)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(
        self,
        which: str,
        target: str,
        runname: str,
        env: Mapping[str, str],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Run hook ``which`` of a run (if configured), then call ``then`` (always)."""
        self._queue.put(_Call(which, target, runname, env, then))

    def _loop(self) -> None:
        while (call := self._queue.get()) is not None:
            try:
                self._run(call)
            except Exception:  # a bug here must not keep the launch held for ever
                _log.exception("%s of %s/%s failed", call.which, call.target, call.runname)
            finally:
                if call.then is not None:
                    call.then()

    def _run(self, call: _Call) -> None:
        home = self.area.home
        try:
            command = self.area.config.get("runs", call.which, env=call.env, cwd=home) or ""
        except ConfigError as exc:
            _log.error("run %s/%s: %s not run: %s", call.target, call.runname, call.which, exc)
            return
        if not command.strip():
            return
        log = hook_log(home, call.which, call.target, call.runname)
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # Megatest then writes the log in the working directory
            _log.warning("failed to create %s: %s", log.parent, exc)
            log = home / log.name
        _log.info("running run-%s: %r, log is %s", call.which, command, log)
        started = time.monotonic()
        try:
            with self._lock:
                process = self._running = subprocess.Popen(
                    ["bash", "-c", f"{command} >> {shlex.quote(str(log))} 2>&1"],
                    cwd=home,
                    env=dict(call.env),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a group of its own: the home's close kills it
                )
        except OSError as exc:
            _log.error("failed to run %s %r: %s", call.which, command, exc)
            return
        code = process.wait()
        with self._lock:
            self._running = None
        took = time.monotonic() - started
        if code:
            _log.warning("%s %r exited with %d, check the log %s", call.which, command, code, log)
        _log.info("%s %r took %.0f seconds to run", call.which, command, took)
