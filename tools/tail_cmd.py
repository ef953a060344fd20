"""``mtpkt tail``: follow the status packets the area's home commits, as they are committed.

It starts with what the home has already committed for the selected runs
(all runs by default), then follows the live stream; a gap in the stream is
filled from the home's history, so every committed packet is shown once, in
commit order. --json prints one JSON object per packet (the fields of the
packet, with "seq", the home's stream number, and "origin_seq", the sender's
own number); --plain one line per packet for people and logs.

examples:
  mtpkt tail
  mtpkt tail -t ubuntu/x86_64 -r nightly --testpatt 'unit/%'
  mtpkt tail -r nightly --until-done --json > nightly.jsonl
"""

import argparse
import datetime
import enum
import functools
import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import attrs

import pkts
from pkts.status import Ack, StatusChange, StatusPacket, Step
from tools.errors import CliError
from tools.exitcodes import ExitCode
from tools.send_cmd import (
    DEFAULT_TIMEOUT,
    RunWatch,
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
    seconds,
    unreachable,
    where_options,
)

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from agents.area import TestPatt
    from bus.follow import Follower

__all__ = ["add_parser", "json_record", "plain_line", "run"]

POLL: float = 0.5
"""Seconds of one wait for the live stream (how soon Ctrl-C and --until-done are seen)."""


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
    which.add_argument("-t", "--target", default="", help="only this target's runs")
    which.add_argument("-r", "--runname", default="", help="only runs of this name")
    which.add_argument(
        "--testpatt",
        default="%",
        metavar="PATT",
        help="only these tests and items: comma-separated test/itempath patterns, %% as"
        " wildcard, ~ to exclude (default: %%)",
    )
    how = parser.add_argument_group("output")
    form = how.add_mutually_exclusive_group()
    form.add_argument("--plain", action="store_true", help="one line per packet (the default)")
    form.add_argument("--json", action="store_true", help="one JSON object per packet")
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


# -- how a packet is shown ------------------------------------------------------------------


def _value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


def json_record(seq: int, packet: StatusPacket) -> dict[str, object]:
    """A packet as a JSON object: ``seq`` (the stream's number), ``kind``, then its fields,
    its own ``seq`` named ``origin_seq``; enums as their values, ids in hex."""
    record: dict[str, object] = {"seq": seq, "kind": packet.kind}
    for field in attrs.fields(type(packet)):
        name = "origin_seq" if field.name == "seq" else field.name
        record[name] = _value(getattr(packet, field.name))
    return record


def _clock(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def plain_line(packet: StatusPacket) -> str:
    """A packet as one line: time (the sender's clock), run, test, what happened."""
    match packet:
        case Ack():
            what = f"ack of {packet.ref.hex()[:12]} from {packet.origin}: {packet.outcome.value}"
            return f"{_clock(packet.ts)}  {what}" + (f" ({packet.reason})" if packet.reason else "")
        case Step():
            what = f"step {packet.step} {packet.state.value}"
            if packet.state is pkts.StepState.END:
                details = [f"exit {packet.exit_code}"] if packet.exit_code is not None else []
                if packet.duration is not None:
                    details.append(f"{packet.duration:.2f}s")
                what += f" {packet.status.value}" + (f" ({', '.join(details)})" if details else "")
        case StatusChange():
            what = RunWatch.label(packet.state, packet.status)
            if packet.state is not pkts.State.COMPLETED and packet.status is pkts.Status.NA:
                what = packet.state.value
            if packet.host:
                what += f" on {packet.host}"
            if packet.comment:
                what += f": {' '.join(packet.comment.split())}"
    name = f"{packet.test}/{packet.item}" if packet.item else packet.test
    return f"{_clock(packet.ts)}  {packet.target} {packet.runname}  {name}  {what}"


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


class _Printer:
    """Prints the selected packets in the chosen form, and feeds ``--until-done``."""

    def __init__(self, args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> None:
        self.json = bool(args.json)
        self.patt = patt
        self.everything = patt.text == "%"  # acks are about no test: shown only then
        self.done = _Done(patt) if args.until_done else None
        self.out = out

    def show(self, rows: list[tuple[int, StatusPacket]]) -> None:
        for seq, packet in rows:
            if isinstance(packet, Ack):
                if not self.everything:
                    continue
            elif not self.patt.matches(packet.test, packet.item):
                continue
            if self.done is not None:
                self.done.add(packet)
            line = json.dumps(json_record(seq, packet)) if self.json else plain_line(packet)
            print(line, file=self.out)
        self.out.flush()


def _follow(follower: "Follower", printer: _Printer, listen: str, timeout: float) -> int:
    from bus.sockets import BusError

    check_listening(listen, timeout)
    try:
        printer.show(in_thread(follower.catch_up, "mtpkt tail", stop=follower.stop))
    except BusError:
        raise unreachable(listen, timeout) from None
    except pkts.PacketError as exc:
        raise CliError(
            f"the answer from {listen} does not verify ({exc}): is the key the area's?",
            ExitCode.BAD_REPLY,
        ) from None
    done = printer.done
    if done is not None and not done.watches:
        print("mtpkt tail: waiting for a selected run to start", file=sys.stderr, flush=True)
    poll = functools.partial(follower.poll, POLL)
    while done is None or not done.settled:
        try:
            printer.show(in_thread(poll, "mtpkt tail", stop=follower.stop))
        except BusError:
            time.sleep(POLL)  # the home is away: the stream resumes when it is back
    return done.report(sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Follow the selected runs' packets; with --until-done, until they settle."""
    from agents.area import AreaError, TestPatt
    from agents.homedir import HomeDir
    from bus.follow import Follower
    from bus.sockets import BusError

    try:
        patt = TestPatt.parse(args.testpatt)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    home = HomeDir(area_dir(args.area))
    key = load_key(home, args.key_file)
    listen = home_address(home, args.home)
    publish = publish_address(
        home, listen, args.publish, home_given=bool(args.home), needed_by="mtpkt tail"
    )
    try:
        follower = Follower(
            listen,
            publish,
            key,
            target=args.target,
            runname=args.runname,
            timeout=args.timeout,
        )
    except BusError as exc:
        raise bad_address(publish, exc) from None
    try:
        with interrupts_as_flag():
            return _follow(follower, _Printer(args, patt, sys.stdout), listen, args.timeout)
    except BrokenPipeError:  # `mtpkt tail | head`: the reader is gone, which is fine
        sys.stdout = None  # no flush error at exit
        return ExitCode.OK
    finally:
        close_when_idle(follower.close)
