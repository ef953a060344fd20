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

--log-file PATH appends the log to PATH instead of stderr, for an agent run
as a service (docs/systemd/).

examples:
  mtpkt agent --area ~/suites/nightly
  mtpkt agent --log-file ~/log/nightly-agent.log
  mtpkt agent --name build7 --slots 4 --home tcp://home1:7400 --key-file ~/.mtpkt/nightly.key
  mtpkt agent --tls-ca ca.crt --tls-cert build7.crt --tls-key build7.key
"""

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any, Final

from mtpkt.tools.agent_shutdown import Agent, Shutdown
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import load_area
from mtpkt.tools.options import command_parser, grace_seconds, where_options, whole_number
from mtpkt.tools.reach import HomeLink, bad_address
from mtpkt.tools.service_log import add_log_file, setup_logging
from mtpkt.tools.tls_options import handshake_problem

__all__ = ["Agent", "Shutdown", "add_parser", "run"]

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
    add_log_file(parser)
    parser.set_defaults(run=run)


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
    setup_logging("agent", args.log_file)
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
    print(f"agent {name} stopped", file=sys.stderr, flush=True)  # the log has its own line
    return ExitCode.OK
