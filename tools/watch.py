"""Following runs until their tests settle: ``send --wait`` and ``tail --until-done``.

:class:`RunWatch` keeps the newest state and status of each selected test of
one run and says when all have settled and how they ended (the rules of
:mod:`mtpkt.pkts.outcome`); :class:`RunWatches` does so for every run seen.
:func:`follow` feeds them from a :class:`bus.follow.Follower`: the home's
history first, then its live stream, with Ctrl-C heard while NNG waits.
"""

import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, TextIO

from mtpkt import pkts
from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import ended_badly, settled
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket
from mtpkt.pkts.text import UNKNOWN_AGENT, display_name, end_label, one_line
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.interrupts import in_thread, interrupts_as_flag
from mtpkt.tools.itemized import Itemized
from mtpkt.tools.reach import unreachable

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.agents.area import TestPatt
    from mtpkt.bus.follow import Follower

__all__ = [
    "CHORES",
    "ENDS_WITH_ACK",
    "PROGRESS_EVERY",
    "SHOWN_BAD",
    "RunWatch",
    "RunWatches",
    "caught_up",
    "follow",
    "report_watch",
    "wait_for_run",
]

CHORES: Final = ("clean", "archive")
"""Kinds the home's chores carry out: their ``send --wait`` ends on the chore's ``ack`` alone
(``done`` or ``rejected``), whose reason says what was done; the records are not judged."""
ENDS_WITH_ACK: Final = ("run", "rerunclean", *CHORES)
"""Kinds whose ``send --wait`` ends only once the home's ``ack`` says the launch settled too:
every record settled is not enough, as Megatest's second pass (and ``allow-auto-rerun``)
may then record tests ``NOT_STARTED`` again (:mod:`mtpkt.agents.home.reruns`)."""
REASON_WIDTH: Final = 160
"""Characters of a bad test's reason (its comment) shown in the summary of a watch."""
PROGRESS_EVERY: Final = 1.0
"""Least seconds between two progress lines of ``--wait``."""
SHOWN_BAD: Final = 10
"""Tests named in the summary of a watch when some ended badly."""
WAIT_POLL: Final = 0.5
"""Seconds of one wait for the live stream in ``--wait``."""
WARNING: Final = "warning: "
"""How a comment the home writes as a run's warning starts (:mod:`mtpkt.agents.area.launchers`)."""
_SAID: Final = (WARNING, UNKNOWN_AGENT)
"""The comments of NOT_STARTED records that ``send --wait`` prints, each once: the run's
warnings, and why its tests wait (a run pinned to an agent the home does not know)."""

Rows = list[tuple[int, StatusPacket]]
"""Committed status packets with the home's stream numbers, in commit order."""


class RunWatch:
    """The newest state and status of each selected test instance of one run.

    Fed the run's committed status packets in order (the snapshot, then the
    live stream), it tells when every instance has settled and how they ended.
    An itemized test's toplevel record is left out once its items are known:
    the items say all there is.

    Args:
        kind: the control packet's kind; for ``kill``, KILLED is the expected end.
        target: the run's target.
        runname: the run's name.
        patt: the selected tests.
        control: the id of the control packet whose ``ack`` must come too before the run
            counts as settled (None: the records alone say).
    """

    def __init__(
        self, kind: str, target: str, runname: str, patt: "TestPatt", control: bytes | None = None
    ) -> None:
        self.kind = kind
        self.target = target
        self.runname = runname
        self.patt = patt
        self.records: dict[tuple[str, str], tuple[State, Status]] = {}
        """Newest state and status by ``(test, item)``."""
        self._killing = kind == "kill"
        """A kill's tests are expected to end KILLED: none of them counts as bad."""
        self._selected: dict[tuple[str, str], bool] = {}
        self._itemized = Itemized()
        self._unsettled: set[tuple[str, str]] = set()
        self._control = control
        self._acked = control is None
        self._chore = kind in CHORES
        """Only the ack counts: what the chore did to the records is no verdict on the tests."""
        self.comments: dict[tuple[str, str], str] = {}
        """Newest comment by ``(test, item)``: why a test ended as it did."""
        self.rejected = ""
        """Why the home gave up on the control packet (its ``rejected`` ack), or ""."""
        self.done = ""
        """What the home says it did (the reason of its ``done`` ack), or ""."""
        self.warnings: list[str] = []
        """The run's warnings, in the order seen: the launcher mtpkt does not honour yet, which
        the home writes into the comment of the run's first NOT_STARTED record."""

    def add(self, packets: Iterable[StatusPacket]) -> None:
        """Take note of committed status packets (others than this run's are ignored)."""
        for packet in packets:
            if isinstance(packet, Ack):
                self._ack(packet)
                continue
            if not (
                isinstance(packet, StatusChange)
                and packet.target == self.target
                and packet.runname == self.runname
            ):
                continue
            if packet.state is State.NOT_STARTED and packet.comment.startswith(_SAID):
                if packet.comment not in self.warnings:  # of any test: a prerequisite comes first
                    self.warnings.append(packet.comment)
            key = (packet.test, packet.item)
            # Learnt from every item, selected or not: `%/` selects a toplevel record
            # whose items the pattern leaves out, and that record is never settled (the
            # home rolls it up in its database; no packet says so).
            if self._itemized.add(*key):
                self._unsettled.discard((key[0], ""))  # the items say all there is now
            selected = self._selected.get(key)
            if selected is None:
                selected = self._selected[key] = self.patt.matches(*key)
            if selected:
                self.comments[key] = packet.comment  # a record's comment is its newest one
                self._record(key, packet.state, packet.status)

    def _ack(self, packet: Ack) -> None:
        """Take note of the ack of the control packet followed (others are ignored)."""
        if packet.ref != self._control or packet.outcome is pkts.AckOutcome.ACCEPTED:
            return  # an `accepted` one says what the home will do (send printed it): no end
        self._acked = True
        if packet.outcome is pkts.AckOutcome.REJECTED:  # the home gave up on it
            self.rejected = packet.reason or "given up by the home"
        else:
            self.done = packet.reason

    def _record(self, key: tuple[str, str], state: State, status: Status) -> None:
        # Kept up to date packet by packet, so that `settled` costs nothing per frame.
        self.records[key] = (state, status)
        if not self._itemized.counts(*key):
            return
        if settled(state, status):
            self._unsettled.discard(key)
        else:
            self._unsettled.add(key)

    def instances(self) -> dict[tuple[str, str], tuple[State, Status]]:
        """The records that count: every one but the toplevel of a test with items."""
        return {key: value for key, value in self.records.items() if self._itemized.counts(*key)}

    @property
    def settled(self) -> bool:
        """Whether every selected instance is in a final state and, for a control packet
        given, its ``ack`` has come (a rejected one ends the wait whatever the records)."""
        if self._chore:
            return self._acked
        return self._acked and (bool(self.rejected) or not self._unsettled)

    def bad(self) -> list[tuple[str, str]]:
        """Instances that settled badly, as ``(test/item, label)``, sorted."""
        return [(name, label) for name, label, _ in self.bad_reasons()]

    def bad_reasons(self) -> list[tuple[str, str, str]]:
        """Instances that settled badly, as ``(test/item, label, comment)``, sorted."""
        if self._killing or self._chore:
            return []
        return sorted(
            (display_name(*key), end_label(state, status), self.comments.get(key, ""))
            for key, (state, status) in self.instances().items()
            if ended_badly(state, status)
        )

    def progress(self) -> str:
        """One line: ``run nightly: 12/40 settled, 1 FAIL``."""
        if self._chore:
            return f"{self.kind} {self.runname}: in the home's hands"
        instances = self.instances()
        done = sum(settled(*record) for record in instances.values())
        counts = Counter(label for _, label in self.bad())
        line = f"{self.kind} {self.runname}: {done}/{len(instances)} settled"
        return line + "".join(f", {count} {label}" for label, count in sorted(counts.items()))

    def summary(self) -> str:
        """One line: how every instance ended, e.g. ``… 40 tests: 38 PASS, 1 FAIL, 1 SKIP``;
        for a chore, what the home says it did."""
        if self._chore:
            what = self.done or self.rejected or "not done yet"
            return f"{self.kind} {self.target} {self.runname}: {what}"
        instances = self.instances()
        if not instances:
            return (
                f"{self.kind} {self.target} {self.runname}:"
                f" no test matches {self.patt.text!r} in this run"
            )
        counts = Counter(end_label(state, status) for state, status in instances.values())
        ends = ", ".join(f"{count} {label}" for label, count in counts.most_common())
        tests = "test" if len(instances) == 1 else "tests"
        return f"{self.kind} {self.target} {self.runname}: {len(instances)} {tests}: {ends}"

    def exit_code(self) -> ExitCode:
        """OK, or TESTS_FAILED if an instance settled badly."""
        return ExitCode.TESTS_FAILED if self.bad() else ExitCode.OK


class RunWatches:
    """A :class:`RunWatch` (as for a run) of every run seen; settled once each is."""

    def __init__(self, patt: "TestPatt") -> None:
        self.patt = patt
        self.watches: dict[tuple[str, str], RunWatch] = {}
        """By ``(target, runname)``."""

    def add(self, packet: StatusPacket) -> None:
        """Take note of a committed status packet."""
        if not isinstance(packet, StatusChange):
            return
        run = (packet.target, packet.runname)
        watch = self.watches.get(run)
        if watch is None:
            watch = self.watches[run] = RunWatch("run", *run, self.patt)
        watch.add([packet])

    @property
    def settled(self) -> bool:
        """Whether a run was seen and every test of every run seen has settled."""
        return bool(self.watches) and all(w.settled for w in self.watches.values())

    def report(self, out: TextIO) -> int:
        """Print how each run's tests ended (:func:`report_watch`); the exit status."""
        code = ExitCode.OK
        for _, watch in sorted(self.watches.items()):
            report_watch(watch, out)
            code = max(code, watch.exit_code())
        return code


def report_watch(watch: RunWatch, out: TextIO) -> None:
    """Print how the watched tests ended: a summary line, then the first bad ones, each with
    its reason (its comment) when it has one."""
    print(watch.summary(), file=out, flush=True)
    bad = watch.bad_reasons()
    for name, label, comment in bad[:SHOWN_BAD]:
        reason = _clipped(one_line(comment))
        print(f"  {label}  {name}" + (f": {reason}" if reason else ""), file=out)
    if len(bad) > SHOWN_BAD:
        print(f"  … and {len(bad) - SHOWN_BAD} more", file=out)
    out.flush()


def _clipped(text: str) -> str:
    """``text`` cut to :data:`REASON_WIDTH` characters (a long comment stays one short line)."""
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"


# -- following ------------------------------------------------------------------------------


def caught_up(follower: "Follower", *, listen: str, timeout: float, name: str) -> Rows:
    """What the home has committed of the followed runs so far, asked from a worker thread
    (:func:`tools.interrupts.in_thread`) so that Ctrl-C is heard.

    Raises:
        CliError: no answer (UNREACHABLE), a home that will not be followed
            (REFUSED), or an answer that does not verify (BAD_REPLY).
    """
    from mtpkt.bus import BusError
    from mtpkt.bus.follow import QueryRefused

    try:
        return in_thread(follower.catch_up, name, stop=follower.stop)
    except BusError:
        raise unreachable(listen, timeout) from None
    except QueryRefused as exc:
        raise CliError(str(exc), ExitCode.REFUSED) from None
    except pkts.PacketError as exc:
        raise CliError(
            f"the answer from {listen} does not verify ({exc}): is the key the area's?",
            ExitCode.BAD_REPLY,
        ) from None


def follow(
    follower: "Follower",
    take: Callable[[Rows], None],
    done: Callable[[], bool],
    *,
    poll: float,
    name: str,
    deadline: float | None = None,
) -> bool:
    """Hand ``take`` what the live stream brings until ``done()`` (checked first) or the
    ``deadline`` (``time.monotonic()``); whether ``done()`` came true.

    Args:
        poll: seconds of one wait for the stream (how soon Ctrl-C and ``done()`` are seen).
        name: the worker threads' name.
    """
    from mtpkt.bus import BusError

    while not done():
        left = math.inf if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            step = functools.partial(follower.poll, min(poll, left))
            rows = in_thread(step, name, stop=follower.stop)
        except BusError:
            time.sleep(min(poll, left))  # the home is away; the stream resumes when it is back
            continue
        take(rows)
    return True


def wait_for_run(
    packet: pkts.Control,
    follower: "Follower",
    *,
    listen: str,
    timeout: float,
    wait_timeout: float | None,
    out: TextIO,
    ack: bool | None = None,
) -> int:
    """Follow the packet's run until its selected tests have settled (``send --wait``), with
    a progress line a second at most on ``out``, then how they ended; the exit status.

    Args:
        ack: whether the packet's ``ack`` must come too (None: as :data:`ENDS_WITH_ACK`
            says; ``clean`` and ``archive`` end with theirs, for ``megatest``).

    Raises:
        CliError: as :func:`caught_up`; WAIT_TIMEOUT once ``wait_timeout`` has passed.
        KeyboardInterrupt: Ctrl-C (heard while NNG waits, see :mod:`tools.interrupts`).
    """
    from mtpkt.agents.area import TestPatt

    acked = packet.kind in ENDS_WITH_ACK if ack is None else ack
    control = packet.id if acked else None
    patt = TestPatt.parse(packet.testpatt)
    watch = RunWatch(packet.kind, packet.target, packet.runname, patt, control)
    with interrupts_as_flag():
        done = _follow_watch(watch, follower, listen, timeout, wait_timeout, out)
    chore = packet.kind in CHORES
    if not done:
        report_watch(watch, out)
        what = f"the home had not done the {packet.kind}" if chore else "not every test had settled"
        raise CliError(
            f"{what} after {wait_timeout:g}s (the {'chore' if chore else 'run'} goes on)",
            ExitCode.WAIT_TIMEOUT,
        )
    if not (chore and watch.rejected):  # the error line says why: once is enough
        report_watch(watch, out)
    if watch.rejected:
        raise CliError(f"the home gave up on the {packet.kind}: {watch.rejected}", ExitCode.REFUSED)
    return watch.exit_code()


def _follow_watch(
    watch: RunWatch,
    follower: "Follower",
    listen: str,
    timeout: float,
    wait_timeout: float | None,
    out: TextIO,
) -> bool:
    """:func:`follow` for :func:`wait_for_run`, printing progress; whether all settled."""
    name = "mtpkt send follow"
    deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
    rows = caught_up(follower, listen=listen, timeout=timeout, name=name)
    watch.add(status for _, status in rows)
    warned = 0

    def warn() -> None:  # each warning once, as soon as it is seen
        nonlocal warned
        for line in watch.warnings[warned:]:
            print(line, file=out, flush=True)
        warned = len(watch.warnings)

    warn()
    shown = watch.progress()
    print(shown, file=out, flush=True)
    next_progress = time.monotonic() + PROGRESS_EVERY

    def take(rows: Rows) -> None:
        nonlocal shown, next_progress
        watch.add(status for _, status in rows)
        warn()
        if time.monotonic() >= next_progress:  # at most one line a second, however busy
            next_progress = time.monotonic() + PROGRESS_EVERY
            line = watch.progress()
            if line != shown:
                print(line, file=out, flush=True)
                shown = line

    if not follow(
        follower, take, lambda: watch.settled, poll=WAIT_POLL, name=name, deadline=deadline
    ):
        return False
    if shown != watch.progress():
        print(watch.progress(), file=out)
    return True
