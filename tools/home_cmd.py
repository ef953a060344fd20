"""``mtpkt home``: run an area's home (collector and dispatcher) in the foreground.

The first start creates ``.mtpkt/`` in the area: the secret key (mode
0600) that signs every packet, and the database directory. The home writes
its addresses to ``.mtpkt/home.json``, so ``mtpkt agent`` and ``mtpkt send``
run inside the area (or below it) need no address. One home per area.

With --tls-cert and --tls-key both endpoints take TLS only (tls+tcp://, as
home.json records); with --tls-ca as well, only peers with a certificate
signed by that CA (mutual TLS).

example:
  mtpkt home --area ~/suites/nightly
  mtpkt home --listen tcp://0.0.0.0:7400      # agents on other hosts dial it
  mtpkt home --log-file ~/log/nightly-home.log
  mtpkt home --agent-grace 300                # tests of an agent lost 5 min become DEAD
  mtpkt home --listen tcp://0.0.0.0:7400 --tls-cert home1.crt --tls-key home1.key --tls-ca ca.crt

Run as a service (docs/systemd/), --log-file PATH appends the log to PATH
instead of stderr (a file logrotate moves away is reopened by name).

A home that stops (even killed) and starts again listens where it did before
if it can, and carries on with the runs it left unfinished.
"""

import argparse
import signal
import sys
import threading
from typing import Any

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import area_dir
from mtpkt.tools.options import area_option, command_parser
from mtpkt.tools.service_log import add_log_file, setup_logging
from mtpkt.tools.tls_options import add_tls_options, listen_tls

__all__ = ["add_parser", "run"]


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt home``."""
    parser = command_parser(
        commands, "home", "run the collector and dispatcher of an area (foreground)", __doc__
    )
    area_option(parser)
    parser.add_argument(
        "--listen",
        default=None,
        help="request endpoint for agents and commands (default tcp://127.0.0.1 on a free port)",
    )
    parser.add_argument(
        "--publish",
        default=None,
        help="live stream endpoint (default: the port after --listen's, or a free one)",
    )
    parser.add_argument(
        "--agent-grace",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long an agent may be lost (no heartbeats) before its unfinished tests"
        " become DEAD (default: [setup] deadtime of megatest.config, else a minute)",
    )
    parser.add_argument(
        "--not-durable",
        action="store_true",
        help="commit with synchronous=NORMAL: survives a crash of the home, not of the OS",
    )
    add_log_file(parser)
    add_tls_options(parser, role="listen")
    parser.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the home until SIGINT or SIGTERM."""
    from mtpkt.agents.area import AreaError, not_an_area
    from mtpkt.agents.home import Home
    from mtpkt.agents.homedir import HomeError
    from mtpkt.bus import BusError
    from mtpkt.store import StoreError

    setup_logging("home", args.log_file)
    area = area_dir(args.area)
    if why := not_an_area(area):
        raise CliError(f"{why}: cd into the area or pass --area DIR", ExitCode.BAD_AREA)
    tls = listen_tls(args, args.listen, args.publish)
    try:
        home = Home(
            area,
            listen=args.listen,
            publish=args.publish,
            durable=not args.not_durable,
            agent_grace=args.agent_grace,
            tls=tls,
        )
    except AreaError as exc:  # its config files: the area is wrong
        raise CliError(str(exc), ExitCode.BAD_AREA) from None
    except (BusError, HomeError, StoreError, ValueError) as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        home.start()
    except Exception as exc:
        home.close()
        raise CliError(f"cannot start the home: {exc}") from None
    print(
        f"home ready: requests {home.listen_address}, stream {home.publish_address}, area {area}",
        flush=True,
    )
    code = ExitCode.OK
    try:
        while not stop.wait(0.5):
            if gone := home.dir.gone():  # its .mtpkt/ removed or replaced: not its area's home
                print(f"mtpkt home: error: {gone}; stopping", file=sys.stderr, flush=True)
                code = ExitCode.BAD_AREA
                break
    finally:
        home.close()
    print("home stopped", file=sys.stderr, flush=True)
    return code
