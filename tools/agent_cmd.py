"""``mtpkt agent``: run this host's agent for an area, in the foreground.

The agent pulls tests from the area's home, runs up to SLOTS of them at once
on this host (steps read from the area's own config files only) and reports
every change back. Status packets wait in a durable spool until the home has
committed them, and task ids are recorded so that none runs twice, across
restarts: both live in AREA/.mtpkt/agents/NAME/.

An agent whose key is not the home's (its answers do not verify) stops after
a few tries with exit code 6 and one line: start it again with the area's key.

It says "ready" once the home has answered; if the home does not answer
within a few seconds, one line on stderr says so (nothing listens at that
address, or nothing answers there), and it keeps trying.

The first SIGTERM or Ctrl-C drains: no new tests are taken, the running ones
finish and their status reaches the home, then the agent exits. A second one
stops at once: running tests are killed (SIGTERM, --kill-grace, SIGKILL).

With --batch it is the agent the home submits in a batch job for one test
(docs/batch.md): it ends once that test has ended, and a signal stops the
test at once; people do not start it by hand.

A home with TLS takes the agent only with --tls-ca (and, if it asks for one,
the agent's own --tls-cert and --tls-key). An agent that cannot reach the home,
or whose TLS handshake fails, keeps trying and says so in its log.

examples:
  mtpkt agent --area ~/suites/nightly
  mtpkt agent --name build7 --slots 4 --home tcp://home1:7400 --key-file ~/.mtpkt/nightly.key
  mtpkt agent --tls-ca ca.crt --tls-cert build7.crt --tls-key build7.key
"""

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, Protocol, TextIO

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import load_area
from mtpkt.tools.options import command_parser, grace_seconds, where_options, whole_number
from mtpkt.tools.reach import HomeLink, bad_address
from mtpkt.tools.tls_options import handshake_problem

__all__ = ["Agent", "Shutdown", "add_parser", "run"]

POLL: Final = 0.2
"""Seconds between the main thread's looks at signals and at the agent."""


_slots: Final = whole_number("a whole number", 1, "an agent needs at least one slot")


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt agent``."""
    parser = command_parser(
        commands,
        "agent",
        "run this host's agent: pull tests from the home, run them, report (foreground)",
        __doc__,
        parents=[where_options()],
    )
    parser.add_argument(
        "--name",
        metavar="HOST",
        help="this agent's name, the host its tests show (default: the short host name)",
    )
    parser.add_argument(
        "--slots",
        type=_slots,
        metavar="N",
        help="tests run at once (default: the number of CPUs)",
    )
    parser.add_argument(
        "--kill-grace",
        type=grace_seconds,
        default=10.0,
        metavar="S",
        help="seconds between SIGTERM and SIGKILL when a test is stopped (default: 10)",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="run the one test the home gave agent --name, inside a batch job, then end",
    )
    parser.set_defaults(run=run)


class Agent(Protocol):
    """What :class:`Shutdown` needs of a host agent (:class:`agents.host.agent.HostAgent`)."""

    @property
    def running(self) -> Sequence[object]:
        """The test instances running now."""

    def drain(self) -> None:
        """Take no new tests, let the running ones finish, then stop."""

    def stop(self) -> None:
        """Kill the running tests and stop."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the agent has stopped; whether it has."""


class Shutdown:
    """Signals to an agent's end: the first drains it, the second stops it now.

    The signal handler (:meth:`handle_signal`) only counts; :meth:`step`, called
    from the main thread's loop (:meth:`run`), acts, in threads of its own since
    :meth:`Agent.drain` takes as long as the running tests do. Tests can call
    both directly.

    Args:
        agent: the started agent.
        out: where the one-line notices go.
    """

    def __init__(self, agent: Agent, out: TextIO) -> None:
        self.agent = agent
        self.out = out
        self.signals = 0
        """Signals received so far."""
        self._acted = 0
        self._threads: list[threading.Thread] = []

    def handle_signal(self, signum: int, frame: FrameType | None = None) -> None:
        """The handler for SIGTERM and SIGINT: only counts (acted on by :meth:`step`)."""
        self.signals += 1

    def install(self) -> None:
        """Make SIGTERM and SIGINT call :meth:`handle_signal` (main thread only)."""
        signal.signal(signal.SIGTERM, self.handle_signal)
        signal.signal(signal.SIGINT, self.handle_signal)

    def _call(self, method: str) -> None:
        thread = threading.Thread(target=getattr(self.agent, method), name=f"agent {method}")
        thread.start()
        self._threads.append(thread)

    def step(self) -> None:
        """Act on the signals that came since the last step."""
        while self._acted < self.signals:
            self._acted += 1
            if self._acted == 1:
                count = len(self.agent.running)
                tests = "test" if count == 1 else "tests"
                self._say(f"draining: finishing {count} running {tests}; signal again to stop now")
                self._call("drain")
            elif self._acted == 2:
                self._say("stopping now: killing the running tests")
                self._call("stop")
            else:
                self._say("already stopping: waiting for the killed tests to end")

    def run(self, poll: float = POLL, every: Callable[[], None] = lambda: None) -> None:
        """Wait until the agent has stopped, acting on signals meanwhile (and calling
        ``every`` at each look)."""
        while not self.agent.wait(poll):
            self.step()
            every()
        for thread in self._threads:
            thread.join()

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _name(given: str | None) -> str:
    from mtpkt.agents.area.paths import PathError, check_name

    name = given if given is not None else socket.gethostname().split(".")[0]
    try:
        return check_name("agent name", name)
    except PathError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def run(args: argparse.Namespace) -> int:
    """Run the agent until it is drained or stopped by signals; returns the exit status."""
    from mtpkt.agents.homedir import HomeError
    from mtpkt.agents.host.agent import HostAgent
    from mtpkt.agents.host.seen import SeenError
    from mtpkt.bus import BusError, SpoolError, SpoolInUse, refused
    from mtpkt.tools.agent_batch import BatchShutdown
    from mtpkt.tools.agent_ready import Readiness

    if args.batch and not args.name:
        raise CliError("--batch needs the --name the home gave the job", ExitCode.USAGE)
    name = _name(args.name)
    slots: int = 1 if args.batch else args.slots or os.cpu_count() or 1
    area = load_area(args.area)
    link = HomeLink.of(args, Path(area.home))
    key, tls, listen = link.key, link.tls, link.listen
    try:
        state_dir = link.home.agent_dir(name)
    except HomeError as exc:
        raise CliError(str(exc), ExitCode.BAD_AREA) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    try:
        agent = HostAgent(
            area,
            key,
            home=listen,
            name=name,
            slots=slots,
            state_dir=state_dir,
            kill_grace=args.kill_grace,
            tls=tls,
        )
    except ValueError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    shutdown = BatchShutdown(agent, sys.stderr) if args.batch else Shutdown(agent, sys.stderr)
    shutdown.install()  # before start: a signal during start is acted on right after it
    try:
        agent.start()
    except BusError as exc:
        raise bad_address(listen, exc) from None
    except SpoolInUse:
        raise CliError(
            f"agent {name} already runs for this area (it holds {state_dir / 'spool.db'}):"
            " stop it first, or give this one another --name",
            ExitCode.ERROR,
        ) from None
    except (SpoolError, SeenError, OSError) as exc:
        raise CliError(f"cannot use {state_dir}: {exc}", ExitCode.ERROR) from None
    readiness = Readiness(
        lambda: agent.answered,
        lambda: refused(listen, within=0, tls=tls),
        ready=f"agent {name} ready: {slots} slots, home {listen}, area {area.home}",
        home=listen,
        out=sys.stdout,
        err=sys.stderr,
    )
    if tls is not None and (problem := handshake_problem(listen, tls)):
        # Not fatal: the home may be given the right CA and restarted; pulls keep trying.
        logging.getLogger("agent").warning("agent %s: %s (retrying)", name, problem)
    shutdown.run(every=readiness.step)
    if agent.failure is not None:
        raise CliError(agent.failure, ExitCode.BAD_REPLY)
    print(f"agent {name} stopped", file=sys.stderr, flush=True)
    return ExitCode.OK
