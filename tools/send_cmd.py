"""``mtpkt send``: ask an area's home to run, kill, clean or archive tests of a run.

The control packet is signed with the area's key and sent to the home, which
journals it durably before it answers. The packet's id is printed (hex) once
the home has it; with --wait, the command then follows the run until every
selected test has settled.

examples:
  mtpkt send run -t ubuntu/x86_64 -r nightly
  mtpkt send run -t ubuntu/x86_64 -r nightly --testpatt 'unit/%,~slow' --wait
  mtpkt send kill -t ubuntu/x86_64 -r nightly --testpatt sleeper --grace 5

Run 'mtpkt send KIND --help' for the options of one kind.
"""

import argparse
import contextlib
import functools
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO, TypeVar

import attrs

from mtpkt import pkts
from mtpkt.pkts import State, Status
from mtpkt.pkts.control import Archive, Clean, Kill, RerunClean, Run
from mtpkt.pkts.link import NOT_JOURNALED
from mtpkt.pkts.outcome import FINAL, ended_badly
from mtpkt.pkts.status import StatusChange
from mtpkt.pkts.text import display_name
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.shown import end_label
from mtpkt.tools.tls_options import add_tls_options, check_handshake, dial_tls, tls_endpoint

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.agents.area import TestPatt
    from mtpkt.agents.homedir import HomeDir
    from mtpkt.bus.follow import Follower
    from mtpkt.bus.tls import Tls

__all__ = [
    "area_option",
    "check_listening",
    "close_when_idle",
    "DEFAULT_TIMEOUT",
    "RunWatch",
    "add_parser",
    "area_dir",
    "bad_address",
    "grace_seconds",
    "home_address",
    "in_thread",
    "interrupts_as_flag",
    "load_key",
    "publish_address",
    "report_watch",
    "run_options",
    "run",
    "seconds",
    "add_testpatt",
    "unreachable",
    "where_options",
    "word_list",
]

DEFAULT_TIMEOUT: Final = 10.0
REFUSED_WAIT: Final = 2.0
"""Seconds a home address may refuse connections (a home starting up) before send gives up."""
"""Seconds ``mtpkt send`` waits for the home's receipt by default."""
ABORT_JOIN: Final = 5.0
"""Seconds Ctrl-C waits for a socket call to end once its socket is closed."""
PROGRESS_EVERY: Final = 1.0
"""Least seconds between two progress lines of ``--wait``."""
SHOWN_BAD: Final = 10
"""Tests named in the summary of ``--wait`` when some ended badly."""
_T = TypeVar("_T")

_EXAMPLES: Final = {
    "run": (
        "run the selected tests, creating the run if it is new",
        "mtpkt send run -t ubuntu/x86_64 -r nightly --wait\n"
        "  mtpkt send run -t ubuntu/x86_64 -r nightly --testpatt 'ez_%' --rerun FAIL,ABORT",
    ),
    "kill": (
        "stop the selected tests: running ones are killed, waiting ones withdrawn",
        "mtpkt send kill -t ubuntu/x86_64 -r nightly --testpatt sleeper --grace 5 --wait",
    ),
    "rerunclean": (
        "clean and rerun the selected tests that ended badly",
        "mtpkt send rerunclean -t ubuntu/x86_64 -r nightly --wait",
    ),
    "clean": (
        "kill, then remove the selected tests' run directories (and records)",
        "mtpkt send clean -t ubuntu/x86_64 -r nightly --testpatt 'unit/%' --keep-records",
    ),
    "archive": (
        "pack the selected tests' run directories into the area's archive, or restore them",
        "mtpkt send archive -t ubuntu/x86_64 -r nightly --remove",
    ),
}
_KILL_GRACE: Final = attrs.fields(Kill).grace.default
_WAITABLE: Final = ("run", "rerunclean", "kill")
"""Kinds whose end shows in the tests' states, so --wait can tell when they are done."""


# -- arguments ------------------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds (an argparse ``type``)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def grace_seconds(text: str) -> float:
    """Zero or more seconds (an argparse ``type``)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds, 0 or more")
    return value


def word_list(kind: str, words: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse ``type``: comma-separated words of ``words`` (any case), as spelt there,
    each once; an unknown one is an error that lists them."""
    known = {word.upper(): word for word in words}

    def parse(text: str) -> tuple[str, ...]:
        chosen: list[str] = []
        for part in text.split(","):
            word = known.get(part.strip().upper())
            if word is None:
                plural = f"{kind}es" if kind.endswith("s") else f"{kind}s"
                raise argparse.ArgumentTypeError(
                    f"unknown {kind} {part.strip()!r} ({plural}: {', '.join(words)})"
                )
            if word not in chosen:
                chosen.append(word)
        return tuple(chosen)

    return parse


def _statuses(text: str) -> tuple[Status, ...]:
    """Comma-separated statuses, e.g. ``FAIL,ABORT`` (any case), as Megatest spells them."""
    return tuple(Status(word) for word in _STATUS_WORDS(text))


_STATUS_WORDS: Final = word_list("status", [status.value for status in Status])


def where_options() -> argparse.ArgumentParser:
    """Options that say which area, home, key and TLS settings; shared with ``mtpkt agent``
    and ``mtpkt tail``."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("area and home")
    area_option(where)
    where.add_argument(
        "--home",
        metavar="ADDR",
        help="the home's request address (default: the one in AREA/.mtpkt/home.json)",
    )
    where.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the area's secret, mode 0600 (default: AREA/.mtpkt/secret)",
    )
    add_tls_options(options, role="dial")
    return options


def area_option(group: "argparse._ActionsContainer") -> None:
    """``--area DIR``, as every command takes it."""
    group.add_argument(
        "--area",
        type=Path,
        metavar="DIR",
        help="the test-suite area (default: $MT_RUN_AREA_HOME, else the current directory)",
    )


def run_options(group: "argparse._ActionsContainer", *, required: bool) -> None:
    """``-t TARGET`` and ``-r RUNNAME``: the run (``required``), or filters on the runs."""
    if required:
        group.add_argument(
            "-t",
            "--target",
            required=True,
            help="the run's key values joined by /, e.g. ubuntu/x86_64",
        )
        group.add_argument("-r", "--runname", required=True, help="the run's name, e.g. nightly")
    else:
        group.add_argument("-t", "--target", default="", help="only this target's runs")
        group.add_argument("-r", "--runname", default="", help="only runs of this name")


_TESTPATT_HELP: Final = (
    "comma-separated test/itempath patterns, %% as wildcard, ~ to exclude (default: %%)"
)


def add_testpatt(group: "argparse._ActionsContainer", *, lead: str = "") -> None:
    """``--testpatt PATT`` (Megatest's syntax), its help led by ``lead``."""
    group.add_argument("--testpatt", default="%", metavar="PATT", help=lead + _TESTPATT_HELP)


def _common_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False, parents=[where_options()])
    which = options.add_argument_group("which tests")
    run_options(which, required=True)
    add_testpatt(which)
    which.add_argument("--host", metavar="H", help="only the agent of this name may take the work")
    options.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the home's answer (default: {DEFAULT_TIMEOUT:g})",
    )
    return options


def _wait_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    wait = options.add_argument_group("waiting")
    wait.add_argument(
        "--wait",
        action="store_true",
        help="then follow the run until every selected test has settled; exit 3 if any"
        " ended FAIL, ABORT, DEAD, KILLED …",
    )
    wait.add_argument(
        "--wait-timeout",
        type=seconds,
        metavar="S",
        help="give up waiting after S seconds (exit 8; the run goes on)",
    )
    wait.add_argument(
        "--publish",
        metavar="ADDR",
        help="the home's live stream address (default: the one in AREA/.mtpkt/home.json)",
    )
    return options


def _kind_options(kind: str, parser: argparse.ArgumentParser) -> None:
    match kind:
        case "run":
            parser.add_argument(
                "--rerun",
                type=_statuses,
                default=(),
                metavar="STATUS[,STATUS]",
                help="also rerun tests that completed with one of these statuses, e.g. FAIL,ABORT",
            )
            parser.add_argument(
                "--rerun-all", action="store_true", help="rerun every selected test, whatever it is"
            )
            parser.add_argument(
                "--preclean",
                action="store_true",
                help="remove a test's run directory before running it",
            )
        case "kill":
            parser.add_argument(
                "--grace",
                type=grace_seconds,
                metavar="S",
                help="seconds between SIGTERM and SIGKILL to a test's processes"
                f" (default: {_KILL_GRACE:g})",
            )
        case "clean":
            parser.add_argument(
                "--keep-records",
                action="store_true",
                help="keep the tests' database records; only their directories go",
            )
        case "archive":
            how = parser.add_mutually_exclusive_group()
            how.add_argument(
                "--remove",
                action="store_true",
                help="delete each run directory once its archive is verified",
            )
            how.add_argument(
                "--restore", action="store_true", help="unpack the archives back instead"
            )


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt send`` and its kinds."""
    parser = commands.add_parser(
        "send",
        help="ask the area's home to run, kill, clean or archive tests (prints the packet id)",
        description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_subparsers(title="kinds", metavar="KIND", dest="kind")
    kinds.required = True
    common = _common_options()
    wait = _wait_options()
    for kind, (summary, example) in _EXAMPLES.items():
        sub = kinds.add_parser(
            kind,
            help=summary,
            description=f"mtpkt send {kind}: {summary}.",
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common, wait] if kind in _WAITABLE else [common],
        )
        _kind_options(kind, sub)
        sub.set_defaults(wait=False, wait_timeout=None, publish=None)
    parser.set_defaults(run=run)


# -- the area, its key and its home ---------------------------------------------------------


def area_dir(given: Path | None) -> Path:
    """The area: ``--area``, else ``$MT_RUN_AREA_HOME``, else the nearest directory from the
    current one up that holds a ``megatest.config`` (else the current directory)."""
    chosen = given or os.environ.get("MT_RUN_AREA_HOME")
    if chosen:
        return Path(os.path.abspath(chosen))
    here = Path(os.path.abspath("."))
    for directory in (here, *here.parents):
        if (directory / "megatest.config").is_file():
            return directory
    return here


def _not_an_area(home: "HomeDir") -> CliError | None:
    """The error for a directory that is no area at all, which explains more than what
    it lacks of ``.mtpkt/``."""
    from mtpkt.agents.area import not_an_area

    if not (why := not_an_area(home.area)):
        return None
    return CliError(
        f"{why}: cd into the area, pass --area DIR, or give --home and --key-file",
        ExitCode.BAD_AREA,
    )


def load_key(home: "HomeDir", key_file: Path | None) -> bytes:
    """The area's key, or a :class:`CliError` (``BAD_AREA``) saying what is wrong with it."""
    from mtpkt.agents.homedir import HomeError

    try:
        return home.key(key_file)
    except HomeError as exc:
        not_an_area = None if key_file else _not_an_area(home)
        raise not_an_area or CliError(str(exc), ExitCode.BAD_AREA) from None


def home_address(home: "HomeDir", given: str | None) -> str:
    """The home's request address: ``--home``, else the one in ``.mtpkt/home.json``."""
    from mtpkt.agents.homedir import HomeError

    if given:
        return given
    try:
        return home.addresses()[0]
    except HomeError as exc:
        raise _not_an_area(home) or CliError(str(exc), ExitCode.BAD_AREA) from None


def publish_address(
    home: "HomeDir", listen: str, publish: str | None, *, home_given: bool, needed_by: str
) -> str:
    """The home's live stream address: ``publish`` if given, else the one in ``home.json``
    (only if that file is about the home at ``listen``).

    Args:
        needed_by: the option or command that needs it, for the error messages.
    """
    from mtpkt.agents.homedir import HomeError

    if publish:
        return publish
    try:
        recorded_listen, recorded_publish = home.addresses()
    except HomeError as exc:
        if home_given:
            raise CliError(
                f"{needed_by} needs the home's stream address too: pass --publish ADDR with --home",
                ExitCode.USAGE,
            ) from None
        raise CliError(str(exc), ExitCode.BAD_AREA) from None
    if recorded_listen != listen:
        raise CliError(
            f"{needed_by} needs the stream address of the home at {listen}: pass --publish ADDR"
            f" ({home.address_path} is about the home at {recorded_listen})",
            ExitCode.USAGE,
        )
    return recorded_publish


# -- the packet -----------------------------------------------------------------------------


def _packet(args: argparse.Namespace) -> pkts.Control:
    """The control packet the command line asks for; a USAGE error for a bad value."""
    from mtpkt.agents.area import AreaError, TestPatt
    from mtpkt.agents.area.paths import check_name, check_relative

    if not args.target.strip():
        raise CliError("the target is empty: give its key values joined by /", ExitCode.USAGE)
    try:
        check_relative("target", args.target)
        check_name("run name", args.runname)
        TestPatt.parse(args.testpatt)
        if args.host is not None:
            check_name("host", args.host)
    except AreaError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    selection: dict[str, Any] = {
        "target": args.target,
        "runname": args.runname,
        "testpatt": args.testpatt,
        "host": args.host,
    }
    match args.kind:
        case "run":
            return Run(
                rerun=args.rerun,
                rerun_all=args.rerun_all,
                preclean=args.preclean,
                **selection,
            )
        case "kill":
            if args.grace is not None:
                selection["grace"] = args.grace
            return Kill(**selection)  # without --grace: the packet's own default
        case "rerunclean":
            return RerunClean(**selection)
        case "clean":
            return Clean(keep_records=args.keep_records, **selection)
        case "archive":
            return Archive(remove=args.remove, restore=args.restore, **selection)
    raise CliError(f"unknown kind {args.kind!r}", ExitCode.USAGE)


# -- asking the home ------------------------------------------------------------------------


def in_thread(call: Callable[[], _T], name: str, *, stop: Callable[[], None] | None = None) -> _T:
    """``call()`` in a worker thread, so that Ctrl-C is seen while NNG blocks (pynng #49).

    On Ctrl-C, ``stop()`` (if given) asks the call to end soon, and the worker is
    waited for a while (:data:`ABORT_JOIN`) before the interrupt goes on; without
    ``stop`` the interrupt goes on at once. A worker still running then is left to
    end with the process: its socket must not be closed under it (NNG may panic,
    nng #2238), which :func:`close_when_idle` sees to. The wait is on an event of our
    own: in Python 3.11 a ``Thread.join`` interrupted by Ctrl-C can release the
    thread's state lock and mark it stopped while it still runs (the bpo-45274
    branch of ``Thread._wait_for_tstate_lock``).

    Meanwhile Ctrl-C only sets a flag, which the wait checks: the default handler's
    ``KeyboardInterrupt`` is lost when it is raised inside a finalizer that happens to
    run then (a pynng socket's ``__del__`` at a garbage collection, say).
    """
    result: list[_T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the caller's thread as it is
            failure.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name=name, daemon=True)
    with interrupts_as_flag():
        try:
            _check_interrupt()
            thread.start()  # inside the try: Ctrl-C may come while start() waits for the thread
            while not done.wait(0.1):
                _check_interrupt()
            _check_interrupt()
        except BaseException:
            if stop is not None:
                stop()
                if thread.ident is not None:
                    done.wait(ABORT_JOIN)
            if not done.is_set():
                _LEFT_RUNNING.append(done)
            raise
    if failure:
        raise failure[0]
    return result[0]


_LEFT_RUNNING: list[threading.Event] = []
"""Ends of the workers :func:`in_thread` gave up waiting for."""


def close_when_idle(close: Callable[[], None]) -> None:
    """``close()``, unless a worker :func:`in_thread` gave up on may still wait in NNG on
    what it would close: then that is left to the end of the process."""
    if all(done.is_set() for done in _LEFT_RUNNING):
        close()


_INTERRUPTED = threading.Event()
"""Set by Ctrl-C inside :func:`interrupts_as_flag`."""


def _check_interrupt() -> None:
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_as_flag() -> Iterator[None]:
    """Within the block, Ctrl-C sets a flag that :func:`in_thread` turns into
    ``KeyboardInterrupt`` (as does the end of the block), instead of raising it at once.

    The default handler's ``KeyboardInterrupt`` is lost when it is raised inside a
    finalizer that happens to run then (a pynng socket's ``__del__`` during a garbage
    collection, say). Only in the main thread, and only where Python's own handler is
    in place (not where SIGINT is ignored); nested blocks change nothing.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _INTERRUPTED.clear()
    signal.signal(signal.SIGINT, lambda signum, frame: _INTERRUPTED.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _check_interrupt()


def bad_address(address: str, error: Exception) -> CliError:
    """The USAGE error for an address NNG cannot dial."""
    reason = str(error).rpartition(": ")[2]
    return CliError(
        f"cannot dial the home at {address!r}: {reason}"
        " (addresses look like tcp://host:port or ipc:///path)",
        ExitCode.USAGE,
    )


def check_listening(address: str, timeout: float, tls: "Tls | None" = None) -> None:
    """Fail at once (UNREACHABLE) if ``address`` has refused connections for a while: nothing
    listens there (a home still starting up is given up to 2 s); with TLS, also if the
    handshake fails."""
    from mtpkt.bus.sockets import refused

    if refused(address, within=min(timeout, REFUSED_WAIT), tls=tls):
        raise CliError(
            f"nothing listens at {address}: the connection is refused (is `mtpkt home` running?)",
            ExitCode.UNREACHABLE,
        )
    check_handshake(address, tls)


def unreachable(address: str, timeout: float) -> CliError:
    from mtpkt.bus.tls import is_tls_address

    trusted = ", and its certificate trusted by --tls-ca" if is_tls_address(address) else ""
    return CliError(
        f"no answer from the home at {address} within {timeout:g}s"
        f" (is `mtpkt home` running{trusted}?)",
        ExitCode.UNREACHABLE,
    )


def _ask(packet: pkts.Control, key: bytes, address: str, timeout: float, tls: "Tls | None") -> None:
    """Send the packet; return once the home's receipt names it.

    Raises:
        CliError: no answer in time (UNREACHABLE), an answer that does not verify
            (BAD_REPLY), or a refusal (REFUSED).
    """
    from mtpkt.bus.sockets import BusError, BusTimeout, Requester
    from mtpkt.pkts.link import Receipt

    try:
        requester = Requester(address, timeout=timeout, tls=tls)
    except BusError as exc:
        raise bad_address(address, exc) from None
    try:
        check_listening(address, timeout, tls)
    except CliError:
        requester.close()
        raise
    frame = pkts.encode(packet, key)
    try:
        raw = in_thread(lambda: requester.request(frame, timeout=timeout), "mtpkt send request")
    except BusTimeout:
        raise unreachable(address, timeout) from None
    except BusError as exc:
        raise CliError(
            f"no answer from the home at {address}: {exc}", ExitCode.UNREACHABLE
        ) from None
    finally:
        close_when_idle(requester.close)
    try:
        packets = pkts.decode_batch(raw, key)  # a single packet reads as a batch of one
    except pkts.PacketError as exc:
        raise CliError(
            f"the answer from {address} does not verify ({exc}): is the key the area's?",
            ExitCode.BAD_REPLY,
        ) from None
    reply = packets[0] if packets else None
    if not isinstance(reply, Receipt):
        what = f"a {reply.kind} packet" if reply is not None else "nothing"
        raise CliError(f"the home at {address} answered with {what}", ExitCode.BAD_REPLY)
    if reply.error.startswith(NOT_JOURNALED):  # its disk failed: nothing was done
        reason = reply.error.removeprefix(NOT_JOURNALED)
        raise CliError(
            f"the home could not journal the {packet.kind}, so nothing was done: {reason}",
            ExitCode.REFUSED,
        )
    if reply.error:
        raise CliError(f"the home refused the {packet.kind}: {reply.error}", ExitCode.REFUSED)
    if packet.id not in reply.ids:
        raise CliError(
            f"the home's receipt does not name the {packet.kind} packet {packet.id.hex()}",
            ExitCode.BAD_REPLY,
        )


# -- waiting for the run --------------------------------------------------------------------


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
    """

    def __init__(self, kind: str, target: str, runname: str, patt: "TestPatt") -> None:
        self.kind = kind
        self.target = target
        self.runname = runname
        self.patt = patt
        self.records: dict[tuple[str, str], tuple[State, Status]] = {}
        """Newest state and status by ``(test, item)``."""
        self._killing = kind == "kill"
        """A kill's tests are expected to end KILLED: none of them counts as bad."""
        self._selected: dict[tuple[str, str], bool] = {}
        self._itemized: set[str] = set()
        self._unsettled: set[tuple[str, str]] = set()

    def add(self, packets: Iterable[pkts.StatusPacket]) -> None:
        """Take note of committed status packets (others than this run's are ignored)."""
        for packet in packets:
            if not (
                isinstance(packet, StatusChange)
                and packet.target == self.target
                and packet.runname == self.runname
            ):
                continue
            key = (packet.test, packet.item)
            selected = self._selected.get(key)
            if selected is None:
                selected = self._selected[key] = self.patt.matches(*key)
            if selected:
                self._record(key, packet.state, packet.status)

    def _record(self, key: tuple[str, str], state: State, status: Status) -> None:
        # Kept up to date packet by packet, so that `settled` costs nothing per frame.
        self.records[key] = (state, status)
        test, item = key
        if item and test not in self._itemized:
            self._itemized.add(test)
            self._unsettled.discard((test, ""))  # the items say all there is now
        if not item and test in self._itemized:
            return
        if state in FINAL:
            self._unsettled.discard(key)
        else:
            self._unsettled.add(key)

    def instances(self) -> dict[tuple[str, str], tuple[State, Status]]:
        """The records that count: every one but the toplevel of a test with items."""
        return {
            key: value
            for key, value in self.records.items()
            if key[1] or key[0] not in self._itemized
        }

    @property
    def settled(self) -> bool:
        """Whether every selected instance is in a final state."""
        return not self._unsettled

    @staticmethod
    def label(state: State, status: Status) -> str:
        """How an end is shown: ``PASS`` for COMPLETED/PASS, ``KILLED/ABORT`` otherwise."""
        return end_label(state, status)

    def bad(self) -> list[tuple[str, str]]:
        """Instances that settled badly, as ``(test/item, label)``, sorted."""
        return sorted(
            (display_name(test, item), self.label(state, status))
            for (test, item), (state, status) in self.instances().items()
            if not self._killing and ended_badly(state, status)
        )

    def progress(self) -> str:
        """One line: ``run nightly: 12/40 settled, 1 FAIL``."""
        instances = self.instances()
        done = sum(state in FINAL for state, _ in instances.values())
        counts = Counter(label for _, label in self.bad())
        line = f"{self.kind} {self.runname}: {done}/{len(instances)} settled"
        return line + "".join(f", {count} {label}" for label, count in sorted(counts.items()))

    def summary(self) -> str:
        """One line: how every instance ended, e.g. ``… 40 tests: 38 PASS, 1 FAIL, 1 SKIP``."""
        instances = self.instances()
        if not instances:
            return (
                f"{self.kind} {self.target} {self.runname}:"
                f" no test matches {self.patt.text!r} in this run"
            )
        counts = Counter(self.label(state, status) for state, status in instances.values())
        ends = ", ".join(f"{count} {label}" for label, count in counts.most_common())
        tests = "test" if len(instances) == 1 else "tests"
        return f"{self.kind} {self.target} {self.runname}: {len(instances)} {tests}: {ends}"

    def exit_code(self) -> ExitCode:
        """OK, or TESTS_FAILED if an instance settled badly."""
        return ExitCode.TESTS_FAILED if self.bad() else ExitCode.OK


def report_watch(watch: RunWatch, out: TextIO) -> None:
    """Print how the watched tests ended: a summary line, then the first bad ones."""
    print(watch.summary(), file=out, flush=True)
    bad = watch.bad()
    for name, label in bad[:SHOWN_BAD]:
        print(f"  {label}  {name}", file=out)
    if len(bad) > SHOWN_BAD:
        print(f"  … and {len(bad) - SHOWN_BAD} more", file=out)
    out.flush()


def _follower(
    packet: pkts.Control,
    key: bytes,
    addresses: tuple[str, str],
    timeout: float,
    tls: "Tls | None",
) -> "Follower":
    """A :class:`bus.follow.Follower` of the packet's run (made before the packet is sent, so
    that a bad stream address stops the command before anything happens)."""
    from mtpkt.bus.follow import Follower
    from mtpkt.bus.sockets import BusError

    listen, publish = addresses
    try:
        return Follower(
            listen,
            publish,
            key,
            target=packet.target,
            runname=packet.runname,
            timeout=timeout,
            tls=tls,
        )
    except BusError as exc:
        raise bad_address(publish, exc) from None


def _wait(
    packet: pkts.Control,
    follower: "Follower",
    *,
    listen: str,
    timeout: float,
    wait_timeout: float | None,
    out: TextIO,
) -> int:
    """Follow the run until the selected tests have settled; the exit status says how."""
    from mtpkt.agents.area import TestPatt
    from mtpkt.bus.sockets import BusError

    watch = RunWatch(packet.kind, packet.target, packet.runname, TestPatt.parse(packet.testpatt))
    deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
    try:
        snapshot = in_thread(follower.catch_up, "mtpkt send follow", stop=follower.stop)
    except BusError:
        raise unreachable(listen, timeout) from None
    watch.add(status for _, status in snapshot)
    shown = watch.progress()
    print(shown, file=out, flush=True)
    next_progress = time.monotonic() + PROGRESS_EVERY
    while not watch.settled:
        left = math.inf if deadline is None else deadline - time.monotonic()
        if left <= 0:
            report_watch(watch, out)
            raise CliError(
                f"not every test had settled after {wait_timeout:g}s (the run goes on)",
                ExitCode.WAIT_TIMEOUT,
            )
        try:
            step = functools.partial(follower.poll, min(0.5, left))
            rows = in_thread(step, "mtpkt send follow", stop=follower.stop)
        except BusError:
            time.sleep(min(0.5, left))  # the home is away; the stream resumes when it is back
            continue
        watch.add(status for _, status in rows)
        if time.monotonic() >= next_progress:  # at most one line a second, however busy
            next_progress = time.monotonic() + PROGRESS_EVERY
            line = watch.progress()
            if line != shown:
                print(line, file=out, flush=True)
                shown = line
    if shown != watch.progress():
        print(watch.progress(), file=out)
    report_watch(watch, out)
    return watch.exit_code()


# -- the command ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Send one control packet; with --wait, follow its run. Returns the exit status."""
    from mtpkt.agents.homedir import HomeDir

    packet = _packet(args)
    home = HomeDir(area_dir(args.area))
    key = load_key(home, args.key_file)
    tls = dial_tls(args)
    listen = tls_endpoint(home_address(home, args.home), tls)
    follower = None
    if args.wait:
        publish = publish_address(
            home, listen, args.publish, home_given=bool(args.home), needed_by="--wait"
        )
        follower = _follower(packet, key, (listen, tls_endpoint(publish, tls)), args.timeout, tls)
    try:
        _ask(packet, key, listen, args.timeout, tls)
        print(packet.id.hex(), flush=True)
        if follower is None:
            return ExitCode.OK
        try:
            with interrupts_as_flag():
                return _wait(
                    packet,
                    follower,
                    listen=listen,
                    timeout=args.timeout,
                    wait_timeout=args.wait_timeout,
                    out=sys.stderr,
                )
        except KeyboardInterrupt:
            if packet.kind != "kill":
                stop = f"mtpkt send kill -t {packet.target} -r {packet.runname}"
                note = f"(the {packet.kind} goes on in the home; `{stop}` stops it)"
                print(note, file=sys.stderr)
            raise
    finally:
        if follower is not None:
            close_when_idle(follower.close)
