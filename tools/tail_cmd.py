"""``mtpkt tail``: follow the status packets the area's home commits, as they are committed.

It starts with what the home has already committed for the selected runs
(all runs by default), then follows the live stream; a gap in the stream is
filled from the home's history, so every committed packet is counted once, in
commit order.

On a terminal it shows a live view: each run with a progress bar and counts
by status, the running tests with their host, step and elapsed time, the
tests that ended badly, and the newest packets; Ctrl-C leaves it. --plain
prints one line per packet instead (the default when the output is not a
terminal) and --json one JSON object per packet (the fields of the packet,
with "seq", the home's stream number, and "origin_seq", the sender's own
number).

examples:
  mtpkt tail
  mtpkt tail -t ubuntu/x86_64 -r nightly --testpatt 'unit/%'
  mtpkt tail -r nightly --until-done --json > nightly.jsonl
"""

import argparse
import functools
import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from mtpkt import pkts
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.send_cmd import (
    DEFAULT_TIMEOUT,
    RunWatch,
    add_testpatt,
    area_dir,
    bad_address,
    check_listening,
    close_when_idle,
    home_address,
    in_thread,
    interrupts_as_flag,
    load_key,
    publish_address,
    report_watch,
    run_options,
    seconds,
    unreachable,
    where_options,
)
from mtpkt.tools.shown import json_record, plain_line

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from pathlib import Path

    from mtpkt.agents.area import TestPatt
    from mtpkt.bus.follow import Follower
    from mtpkt.bus.tls import Tls

__all__ = ["add_parser", "run"]

POLL: float = 0.25
"""Seconds of one wait for the live stream (how soon Ctrl-C and --until-done are seen)."""

REFRESH: float = 4
"""Redraws of the live view per second, at most."""


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt tail``."""
    parser = commands.add_parser(
        "tail",
        help="follow the status packets of the area's runs as the home commits them",
        description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[where_options()],
    )
    parser.add_argument(
        "--publish",
        metavar="ADDR",
        help="the home's live stream address (default: the one in AREA/.mtpkt/home.json)",
    )
    which = parser.add_argument_group("which packets")
    run_options(which, required=False)
    add_testpatt(which, lead="only these tests and items: ")
    how = parser.add_argument_group("output")
    form = how.add_mutually_exclusive_group()
    form.add_argument(
        "--plain",
        action="store_true",
        help="one line per packet (the default when the output is not a terminal)",
    )
    form.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per packet (its fields, the stream's seq)",
    )
    how.add_argument(
        "--until-done",
        action="store_true",
        help="exit once every selected test of the selected runs has settled; exit 3 if any"
        " ended FAIL, ABORT, DEAD, KILLED …",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the home's answer (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.set_defaults(run=run)


# -- following ------------------------------------------------------------------------------


class _Done:
    """``--until-done``: a :class:`RunWatch` per run seen, settled when all are."""

    def __init__(self, patt: "TestPatt") -> None:
        self.patt = patt
        self.watches: dict[tuple[str, str], RunWatch] = {}

    def add(self, packet: StatusPacket) -> None:
        if not isinstance(packet, StatusChange):
            return
        run = (packet.target, packet.runname)
        watch = self.watches.get(run)
        if watch is None:
            watch = self.watches[run] = RunWatch("run", *run, self.patt)
        watch.add([packet])

    @property
    def settled(self) -> bool:
        return bool(self.watches) and all(w.settled for w in self.watches.values())

    def report(self, out: TextIO) -> int:
        code = ExitCode.OK
        for _, watch in sorted(self.watches.items()):
            report_watch(watch, out)
            code = max(code, watch.exit_code())
        return code


class _Output:
    """Shows the selected packets in the chosen form, and feeds ``--until-done``."""

    def __init__(self, args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> None:
        self.patt = patt
        self.everything = patt.text == "%"  # acks are about no test: shown only then
        self.done = _Done(patt) if args.until_done else None
        self.out = out

    def show(self, rows: list[tuple[int, StatusPacket]]) -> None:
        selected = []
        for seq, packet in rows:
            if isinstance(packet, Ack):
                if not self.everything:
                    continue
            elif not self.patt.matches(packet.test, packet.item):
                continue
            if self.done is not None:
                self.done.add(packet)
            selected.append((seq, packet))
        self.draw(selected)

    def draw(self, rows: list[tuple[int, StatusPacket]]) -> None:
        raise NotImplementedError

    def __enter__(self) -> "_Output":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Lines(_Output):
    """``--plain`` and ``--json``: a line per packet."""

    def __init__(self, args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> None:
        super().__init__(args, patt, out)
        self.json = bool(args.json)

    def draw(self, rows: list[tuple[int, StatusPacket]]) -> None:
        for seq, packet in rows:
            line = json.dumps(json_record(seq, packet)) if self.json else plain_line(packet)
            print(line, file=self.out)
        self.out.flush()


class _LiveView(_Output):
    """The live view (a terminal, neither --plain nor --json): redrawn :data:`REFRESH`
    times a second at most, and once a second when nothing comes (elapsed times)."""

    def __init__(self, args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        from mtpkt.tools.live import LiveModel

        super().__init__(args, patt, out)
        self.model = LiveModel()
        where = " ".join(filter(None, (args.target, args.runname))) or "every run"
        self.title = where if patt.text == "%" else f"{where} {patt.text}"
        self.console = Console(file=out)
        self.live = Live(
            console=self.console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        )
        self.drawn = 0.0

    def draw(self, rows: list[tuple[int, StatusPacket]]) -> None:
        from mtpkt.tools.live import render

        self.model.add(packet for _, packet in rows)
        now = time.monotonic()
        if now - self.drawn < 1 / REFRESH and not (self.done is not None and self.done.settled):
            return
        self.drawn = now
        width, height = self.console.size
        view = render(self.model, width=width, height=height - 1, title=self.title)
        self.live.update(view, refresh=True)

    def __enter__(self) -> "_Output":
        self.live.start()
        self.draw([])
        return self

    def __exit__(self, *exc: object) -> None:
        self.drawn = 0.0
        self.draw([])  # the last state stays on the screen
        self.live.stop()


def _follow(
    follower: "Follower", output: _Output, listen: str, timeout: float, tls: "Tls | None"
) -> int:
    from mtpkt.bus.follow import QueryRefused
    from mtpkt.bus.sockets import BusError

    check_listening(listen, timeout, tls)
    try:
        output.show(in_thread(follower.catch_up, "mtpkt tail", stop=follower.stop))
    except BusError:
        raise unreachable(listen, timeout) from None
    except QueryRefused as exc:
        raise CliError(str(exc), ExitCode.REFUSED) from None
    except pkts.PacketError as exc:
        raise CliError(
            f"the answer from {listen} does not verify ({exc}): is the key the area's?",
            ExitCode.BAD_REPLY,
        ) from None
    done = output.done
    if done is not None and not done.watches and not isinstance(output, _LiveView):
        print("mtpkt tail: waiting for a selected run to start", file=sys.stderr, flush=True)
    poll = functools.partial(follower.poll, POLL)
    while done is None or not done.settled:
        try:
            output.show(in_thread(poll, "mtpkt tail", stop=follower.stop))
        except BusError:
            time.sleep(POLL)  # the home is away: the stream resumes when it is back
    return ExitCode.OK


def _check_target(area: "Path", target: str) -> None:
    """Refuse at once a target that does not fit the area's fields (when the area is here:
    a host that only has the key and the home's address leaves it to the home)."""
    from mtpkt.agents.area import Area, AreaError

    if not (area / "megatest.config").is_file():
        return
    try:
        Area.load(area).split_target(target)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def run(args: argparse.Namespace) -> int:
    """Follow the selected runs' packets; with --until-done, until they settle."""
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.agents.homedir import HomeDir
    from mtpkt.bus.follow import Follower
    from mtpkt.bus.sockets import BusError
    from mtpkt.tools.tls_options import dial_tls, tls_endpoint

    try:
        patt = TestPatt.parse(args.testpatt)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    home = HomeDir(area_dir(args.area))
    if args.target:
        _check_target(home.area, args.target)
    key = load_key(home, args.key_file)
    tls = dial_tls(args)
    listen = tls_endpoint(home_address(home, args.home), tls)
    publish = publish_address(
        home, listen, args.publish, home_given=bool(args.home), needed_by="mtpkt tail"
    )
    publish = tls_endpoint(publish, tls)
    try:
        follower = Follower(
            listen,
            publish,
            key,
            target=args.target,
            runname=args.runname,
            timeout=args.timeout,
            tls=tls,
        )
    except BusError as exc:
        raise bad_address(publish, exc) from None
    live = not (args.plain or args.json) and sys.stdout.isatty()
    output = (_LiveView if live else _Lines)(args, patt, sys.stdout)
    try:
        with interrupts_as_flag(), output:
            _follow(follower, output, listen, args.timeout, tls)
        return ExitCode.OK if output.done is None else output.done.report(sys.stderr)
    except BrokenPipeError:  # `mtpkt tail | head`: the reader is gone, which is fine
        sys.stdout = None  # no flush error at exit
        return ExitCode.OK
    finally:
        close_when_idle(follower.close)
