"""How ``mtpkt tail`` shows the packets it follows: a line each (``--plain``, ``--json``) or
the live view on a terminal; each form also feeds ``--until-done``.

An output is a context manager: the live view takes the screen on entry and
leaves its last state there on exit.
"""

import abc
import argparse
import json
import time
from typing import TYPE_CHECKING, Final, TextIO

from mtpkt.pkts.status import Ack, StatusPacket
from mtpkt.tools.shown import json_record, plain_line
from mtpkt.tools.watch import Rows, RunWatches

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.agents.area import TestPatt

__all__ = ["REFRESH", "Lines", "LiveScreen", "Output", "output_for"]

REFRESH: Final = 4
"""Redraws of the live view per second, at most."""


class Output(abc.ABC):
    """Shows the selected packets in the chosen form, and feeds ``--until-done``
    (:attr:`done`)."""

    def __init__(self, args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> None:
        self.patt = patt
        self.everything = patt.text == "%"  # acks are about no test: shown only then
        self.done = RunWatches(patt) if args.until_done else None
        """The runs seen, with ``--until-done``."""
        self.out = out

    def show(self, rows: Rows) -> None:
        """Show the selected ones of ``rows`` (the followed runs' committed packets)."""
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

    @abc.abstractmethod
    def draw(self, rows: list[tuple[int, StatusPacket]]) -> None:
        """Show ``rows``, selected already."""

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()  # all that was shown is out before the summary on stderr


class Lines(Output):
    """``--plain`` and ``--json``: a line per packet."""

    def __init__(self, args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> None:
        super().__init__(args, patt, out)
        self.json = bool(args.json)

    def draw(self, rows: list[tuple[int, StatusPacket]]) -> None:
        for seq, packet in rows:
            line = json.dumps(json_record(seq, packet)) if self.json else plain_line(packet)
            print(line, file=self.out)
        self.out.flush()


class LiveScreen(Output):
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

    def __enter__(self) -> "Output":
        self.live.start()
        self.draw([])
        return self

    def __exit__(self, *exc: object) -> None:
        self.drawn = 0.0
        self.draw([])  # the last state stays on the screen
        self.live.stop()


def output_for(args: argparse.Namespace, patt: "TestPatt", out: TextIO) -> Output:
    """The form the command line asks for: the live view on a terminal, unless --plain or
    --json say otherwise."""
    live = not (args.plain or args.json) and out.isatty()
    return (LiveScreen if live else Lines)(args, patt, out)
