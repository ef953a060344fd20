"""mtpkt demo: a small farm on this machine, from an empty directory to a finished run.

It writes an example test-suite area (Megatest's format: megatest.config,
runconfigs.config, tests/*/testconfig) into a new directory, starts its home
and two agents, sends a run of passing, failing, itemized and dependent
tests, and shows it with `mtpkt tail` (the live view on a terminal, one line
per packet otherwise). Then it prints how the run ended, where its database,
run directories and logs are, and stops every process it started. The area
stays, to be looked at; remove it when done.

examples:
  mtpkt demo
  mtpkt demo --area ~/mtpkt-demo
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from mtpkt.tools.demo_area import EXPECTED, RUNNAME, TARGET, write_area
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.options import command_parser

__all__ = ["add_parser", "run"]

AGENTS: Final = ("host-a", "host-b")
START_TIMEOUT: Final = 30.0
"""Seconds the home has to say it is ready."""
RUN_TIMEOUT: Final = 120.0
"""Seconds the run has to finish (it takes about ten)."""
STOP_TIMEOUT: Final = 20.0


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt demo``."""
    parser = command_parser(
        commands,
        "demo",
        "start a small farm on this machine and watch a run: home, two agents, a run",
        __doc__,
    )
    parser.add_argument(
        "--area",
        metavar="DIR",
        type=Path,
        help="where to write the example area: a new or empty directory"
        " (default: a new directory under the system's temporary directory)",
    )
    parser.set_defaults(run=run)


def _new_area(given: Path | None) -> Path:
    if given is None:
        return Path(tempfile.mkdtemp(prefix="mtpkt-demo-"))
    area = given.expanduser().absolute()
    if area.exists() and (not area.is_dir() or any(area.iterdir())):
        raise CliError(
            f"{area} is not an empty directory: the demo writes a new area there"
            " (pass a new or empty --area DIR)",
            ExitCode.USAGE,
        )
    try:
        area.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {area}: {exc.strerror}", ExitCode.ERROR) from None
    return area


class _Farm:
    """The processes the demo starts, each logging to ``logs/<name>.log``; all stopped at the
    end."""

    def __init__(self, area: Path) -> None:
        self.area = area
        self.logs = area / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = {**os.environ, "MT_RUN_AREA_HOME": str(area)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def mtpkt(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mtpkt.tools", *args]

    def start(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                self.mtpkt(*args),
                cwd=self.area,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops them in order
            )

    def wait_ready(self) -> None:
        """Wait until the home says it is ready; fail with its log's last line."""
        deadline = time.monotonic() + START_TIMEOUT
        log = self.logs / "home.log"
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "home ready" in text:
                return
            if self.processes["home"].poll() is not None:
                break
            time.sleep(0.1)
        last = (log.read_text(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        raise CliError(f"the demo's home did not start: {last} (see {log})", ExitCode.ERROR)

    def stop(self) -> None:
        """Agents first (one SIGTERM: they have nothing left to drain), then the home."""
        order = sorted(self.processes, key=lambda name: name == "home")
        for name in order:
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def _farm(area: Path) -> Iterator[_Farm]:
    farm = _Farm(area)
    try:
        yield farm
    finally:
        with _ignoring_interrupts():
            farm.stop()


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    """A second Ctrl-C must not leave the farm's processes running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    """Build the area, start the farm, run and watch, report, stop."""
    area = _new_area(args.area)
    write_area(area)
    _say(f"mtpkt demo: an example area in {area}")
    try:
        return _demo(area)
    except KeyboardInterrupt:  # the farm has stopped: say where what it made is
        _say(f"\n  stopped; every process it started has stopped; the area stays in {area}")
        _say(f"  (rm -rf {area} when done)")
        raise


def _demo(area: Path) -> int:
    """Start the farm in ``area``, run and watch, report; the farm stops whatever happens."""
    with _farm(area) as farm:
        farm.start("home", "home", "--area", str(area))
        farm.wait_ready()
        for name in AGENTS:
            farm.start(name, "agent", "--area", str(area), "--name", name, "--slots", "2")
        _say(f"  home and agents {', '.join(AGENTS)} started; logs in {farm.logs}")
        sent = subprocess.run(
            farm.mtpkt("send", "run", "-t", TARGET, "-r", RUNNAME),
            cwd=area,
            env=farm.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        if sent.returncode != 0:
            raise CliError(f"the run was not accepted: {sent.stderr.strip()}", ExitCode.ERROR)
        _say(f"  sent: run -t {TARGET} -r {RUNNAME} (packet {sent.stdout.strip()})")
        _say(f"  watching it with: mtpkt tail -r {RUNNAME} --until-done\n")
        watched = subprocess.run(
            farm.mtpkt("tail", "-r", RUNNAME, "--until-done"),
            cwd=area,
            env=farm.env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    summary = watched.stderr.strip()
    _say(f"\n{summary}")
    if watched.returncode not in (ExitCode.OK, ExitCode.TESTS_FAILED) or EXPECTED not in summary:
        raise CliError(f"the demo's run did not end as expected ({EXPECTED})", ExitCode.ERROR)
    _say(_where(area))
    return ExitCode.OK


def _where(area: Path) -> str:
    db = area / ".mtpkt" / "db"
    runs = " and ".join(path.name for path in sorted(db.glob("[0-9]*.db"))) or "none"
    mtpkt = os.path.abspath(sys.argv[0]) if Path(sys.argv[0]).name == "mtpkt" else "mtpkt"
    return textwrap.dedent(f"""
        The failures are part of the demo: unit/parser fails on purpose, so package
        (which waits on unit) is not run: PREQ_FAIL.

        Everything is still there:
          databases       {db}/: main.db, and {runs} for the run (SQLite)
          run directories {area}/links/{TARGET}/{RUNNAME}/<test>/<item> (step logs inside)
          process logs    {area}/logs/
        Every process the demo started has stopped. To go on by hand:
          cd {area}                 # mtpkt finds the area it is in
          {mtpkt} home &
          {mtpkt} agent --name host-a &
          {mtpkt} send run -t {TARGET} -r second --wait
          {mtpkt} tail
        Remove the area when done: rm -rf {area}""")
