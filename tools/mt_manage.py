"""``megatest`` run management: Megatest's ``-run``, ``-remove-runs``, ``-set-state-status``,
``-kill-runs``, ``-archive``, ``-lock``/``-unlock``, ``-set-run-status`` and ``-run-wait``,
carried out by the area's home (the options on existing runs: :mod:`mtpkt.tools.mt_states`).

Each becomes the control packets ``mtpkt send`` would send (signed with the area's key,
journaled by the home before it answers), one per run the selectors name, and the command
waits, as Megatest's does, until the home has done it: a ``-run`` until every selected test
has settled, a ``-remove-runs`` or ``-archive`` until the home's ``ack`` says it is done.
Progress goes to stderr; stdout stays for what Megatest prints there.

The selectors are Megatest's (runs.scm:2314-2361, megatest.scm:1020-1052): ``-target`` or
``-reqtarg`` (which must be a section of runconfigs.config), ``-runname`` or ``:runname``,
``-testpatt`` (``-runtests P`` is ``-run -testpatt P``; without one, ``TESTPATT``, or the key
``-modepatt`` names, from the target's runconfigs, common.scm:978-995; narrowed by ``-tagexpr``,
:mod:`mtpkt.tools.mt_tags`). Run names and target
parts may hold ``%`` for the actions on existing runs; ``-run`` needs one run. Exit codes
are Megatest's: 3 without a target or run name (runs.scm:2318-2323) or without a
``-testpatt`` for an action on existing runs (megatest.scm:1033), 1 for a bad target or any
other refusal; the home's own failures keep mtpkt's codes (``mtpkt --help``).
"""

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from mtpkt import pkts
from mtpkt.pkts.control import Archive, Clean, Kill, RerunClean, Run
from mtpkt.tools.errors import CliError
from mtpkt.tools.intest_args import RUN_ACTIONS, Args

if TYPE_CHECKING:  # imported for real where used: `megatest -step` stays quick
    from pathlib import Path

    from mtpkt.agents.area import Area
    from mtpkt.pkts import Status
    from mtpkt.tools.reach import HomeLink

__all__ = ["MISSING", "MegatestError", "Which", "manage", "send_and_follow"]

MISSING = 3
"""Megatest's exit code for a missing ``-target``, ``-runname`` or ``-testpatt``."""
_RUNS = ("-run", "-runall", "-runtests", "-rerun-clean", "-rerun-all")
"""Options that start a run (megatest.scm:1613-1617)."""
_ON_RUNS = ("-remove-runs", "-set-state-status", "-archive", "-kill-runs")
"""Options on existing runs, which need a ``-testpatt`` (megatest.scm:1033)."""
WAIT_FOREVER = None
"""A Megatest run waits as long as its tests take (no ``--wait-timeout``)."""


class MegatestError(Exception):
    """A call refused as Megatest refuses it: one line, and Megatest's exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen
class Which:
    """The selectors of one call: target and run name (patterns allowed) and test pattern."""

    target: str
    runname: str
    testpatt: str


def manage(args: Args) -> int:
    """Carry out the run-management options of one call, in Megatest's order; the exit code."""
    try:
        return _manage(args)
    except (CliError, MegatestError) as exc:
        print(f"megatest: {exc}", file=sys.stderr)
        return int(exc.code)


def _manage(args: Args) -> int:
    from mtpkt.tools.local_area import load_area

    which = _which(args)
    area = load_area(None)
    _check_target(args, area, which.target)
    testpatt = _run_testpatt(args, area, which) if any(map(args.has, _RUNS)) else None
    _check_values(args)  # all of them before anything is done
    if [name for name in RUN_ACTIONS if args.has(name)] == ["-get-run-status"]:
        from mtpkt.tools.mt_states import run_status

        run_status(args, which, None)  # reads the databases: no home needed
        return 0
    link = _link(area.home)
    _before_run(args, which, link)
    if testpatt is not None:
        _run(args, attrs.evolve(which, testpatt=testpatt), link)
    _after_run(args, which, link)
    return 0


def _check_values(args: Args) -> None:
    """Refuse a bad option value before anything is done (issue: nothing run or changed).

    Raises:
        CliError, MegatestError: naming the option.
    """
    from mtpkt.tools.mt_states import new_state_status

    _rerun(args)
    _archive_how(args)
    if args.has("-set-state-status"):
        new_state_status(args)
    if args.get("-set-run-status") == "":
        raise MegatestError("-set-run-status needs a status")


def _rerun(args: Args) -> "tuple[Status, ...]":
    """The statuses ``-rerun`` names."""
    from mtpkt.tools.options import statuses

    if not args.get("-rerun"):
        return ()
    try:
        return tuple(statuses(args.get("-rerun") or ""))
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"-rerun: {exc}") from None


def _archive_how(args: Args) -> tuple[bool, bool] | None:
    """``-archive save|save-remove|restore`` as (remove, restore); None without it."""
    how = args.get("-archive")
    if how is None:
        return None
    if how not in ("save", "save-remove", "restore"):
        raise CliError(f"-archive {how}: mtpkt archives with save, save-remove or restore")
    return how == "save-remove", how == "restore"


def _run_testpatt(args: Args, area: "Area", which: Which) -> str:
    """The run's test pattern (:func:`_testpatt`), refused when it names no test of the area
    (the home would refuse it too, after other options had been carried out)."""
    from mtpkt.agents.area import AreaError, TestPatt

    testpatt = _testpatt(args, area, which)
    try:
        TestPatt.parse(testpatt).check_tests(area.test_names())
    except AreaError as exc:
        raise CliError(str(exc)) from None
    return testpatt


def _before_run(args: Args, which: Which, link: "HomeLink") -> None:
    """What Megatest does before it runs (megatest.scm:1056-1105)."""
    from mtpkt.tools import mt_states

    if args.has("-remove-runs"):
        keep = args.has("-keep-records")
        _each_run(args, which, "remove", functools.partial(Clean, keep_records=keep), link)
    if args.has("-kill-runs"):
        _each_run(args, which, "kill", Kill, link, ack=False)
    if args.has("-set-state-status"):
        mt_states.set_state_status(args, which, link)
    if args.has("-set-run-status") or args.has("-get-run-status"):
        mt_states.run_status(args, which, link)


def _after_run(args: Args, which: Which, link: "HomeLink") -> None:
    """What Megatest does after it runs (megatest.scm:1729-1800, 2182-2190)."""
    from mtpkt.tools import mt_states

    if args.has("-lock") or args.has("-unlock"):
        mt_states.lock(args, which, link)
    if (how := _archive_how(args)) is not None:
        remove, restore = how
        archive = functools.partial(Archive, remove=remove, restore=restore)
        _each_run(args, which, "archive", archive, link)
    if _waits_alone(args):
        waited = Run(**attrs.asdict(which))
        send_and_follow(waited, link, send=False)


# -- the selectors ---------------------------------------------------------------------------


def _which(args: Args) -> Which:
    """The selectors, refused as Megatest refuses them when missing: exit 3 where
    ``general-run-call`` checks them (runs.scm:2318-2323); a ``-run-wait`` on its own goes
    straight to ``operate-on``, whose codes are 1, 2 and 3 (megatest.scm:1024-1035)."""
    alone = _waits_alone(args)
    target = args.get("-reqtarg", "-target")
    if not target:
        raise MegatestError(
            "Missing required parameter, you must specify the target with -target",
            1 if alone else MISSING,
        )
    runname = args.get("-runname", ":runname")
    if not runname:
        raise MegatestError(
            "Missing required parameter, you must specify the run name with -runname runname",
            2 if alone else MISSING,
        )
    testpatt = args.get("-testpatt", "-runtests")
    if not testpatt and (alone or any(map(args.has, _ON_RUNS))):
        raise MegatestError(
            "Missing required parameter, you must specify the test pattern with -testpatt",
            MISSING,
        )
    return Which(target, runname, testpatt or "%")


def _waits_alone(args: Args) -> bool:
    """A ``-run-wait`` with no run (megatest.scm:2182-2190)."""
    waits = args.has("-run-wait") or args.has("-runwait")
    return waits and not any(map(args.has, _RUNS))


def _check_target(args: Args, area: "Area", target: str) -> None:
    """A target of the area's keys (common.scm:1052-1074); ``-reqtarg`` one of runconfigs'
    sections too (runs.scm:2339-2349). ``%`` parts are patterns, for existing runs."""
    from mtpkt.agents.area import AreaError

    if "%" not in target:
        try:
            area.split_target(target)
        except AreaError as exc:
            raise CliError(str(exc)) from None
    if args.get("-reqtarg") is not None:
        path = area.home / "runconfigs.config"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise CliError(f"-reqtarg {target}: cannot read {path}: {exc.strerror}") from None
        # Megatest reads the file's own sections here, without evaluating it (runs.scm:2340).
        if f"[{target}]" not in (line.strip() for line in lines):
            raise CliError(f"[{target}] not found in {path}")


def _testpatt(args: Args, area: "Area", which: Which) -> str:
    """The test pattern of a ``-run``: :func:`_given_testpatt`, narrowed by ``-tagexpr``
    (:mod:`mtpkt.tools.mt_tags`)."""
    testpatt = _given_testpatt(args, area, which)
    tagexpr = args.get("-tagexpr")
    if tagexpr is None:
        return testpatt
    from mtpkt.agents.area import AreaError
    from mtpkt.tools.mt_tags import TagError, narrow, tagged_tests

    try:
        return narrow(testpatt, tagged_tests(area, which.target, which.runname, tagexpr), tagexpr)
    except (AreaError, TagError) as exc:
        raise MegatestError(str(exc)) from None


def _given_testpatt(args: Args, area: "Area", which: Which) -> str:
    """``-testpatt``/``-runtests``, else the runconfigs' key (common.scm:978-995;
    ``--modepatt`` must name one)."""
    key = args.get("-modepatt", "--modepatt") or "TESTPATT"
    if which.testpatt != "%" and not args.has("--modepatt"):
        return which.testpatt
    from mtpkt.agents.area import AreaError

    try:
        found = area.runconfig(which.target, which.runname).get(key)
    except AreaError as exc:
        raise CliError(str(exc)) from None
    if found:
        print(f"megatest: testpatt defined in {key} from runconfigs: {found}", file=sys.stderr)
        return found
    if args.has("--modepatt"):
        raise CliError(f"--modepatt {key}: runconfigs.config has no {key} for {which.target}")
    return which.testpatt


# -- talking to the home --------------------------------------------------------------------


def _link(area: "Path") -> "HomeLink":
    from mtpkt.tools.reach import HomeLink

    return HomeLink.of(_options(), area)


def _options() -> argparse.Namespace:
    """``mtpkt send``'s defaults: the home and key the area's ``.mtpkt/`` names."""
    from mtpkt.tools.options import add_timeout, where_options

    parser = argparse.ArgumentParser(add_help=False, parents=[where_options()])
    add_timeout(parser)
    return parser.parse_args([], argparse.Namespace(publish=None))


def send_and_follow(
    packet: pkts.Control, link: "HomeLink", *, ack: bool | None = None, send: bool = True
) -> int:
    """Send ``packet`` (unless not ``send``: ``-run-wait`` alone) and follow its run until it
    is done, its ``ack`` too when ``ack``; the watch's exit code."""
    from mtpkt.tools.interrupts import close_when_idle
    from mtpkt.tools.options import DEFAULT_TIMEOUT
    from mtpkt.tools.watch import wait_for_run

    follower = link.follower(
        link.stream(_options(), needed_by="megatest"),
        target=packet.target,
        runname=packet.runname,
        timeout=DEFAULT_TIMEOUT,
        acks=send,
    )
    try:
        if send and (plan := link.ask(packet, DEFAULT_TIMEOUT)):
            print(plan, file=sys.stderr, flush=True)  # what the home will do, as progress
        return wait_for_run(
            packet,
            follower,
            listen=link.listen,
            timeout=DEFAULT_TIMEOUT,
            wait_timeout=WAIT_FOREVER,
            out=sys.stderr,
            ack=ack if send else False,
        )
    finally:
        close_when_idle(follower.close)


def _run(args: Args, which: Which, link: "HomeLink") -> None:
    """``-run``, ``-runtests``, ``-rerun*``: one run, followed until its tests settle."""
    from mtpkt.agents.area import AreaError
    from mtpkt.agents.area.paths import check_name

    try:
        check_name("run name", which.runname)  # one run: no pattern
    except AreaError as exc:
        raise CliError(str(exc)) from None
    packet: pkts.Control
    if args.has("-rerun-clean"):
        packet = RerunClean(**attrs.asdict(which))
    else:
        all_ = args.has("-rerun-all")
        preclean = args.has("-preclean") or all_
        packet = Run(rerun=_rerun(args), rerun_all=all_, preclean=preclean, **attrs.asdict(which))
    send_and_follow(packet, link)


def _each_run(
    args: Args,
    which: Which,
    what: str,
    make: Callable[..., pkts.Control],
    link: "HomeLink",
    *,
    ack: bool = True,
) -> None:
    """One packet for each existing run the selectors name (none: a note, nothing done);
    ``make`` takes the selection fields (``target``, ``runname``, ``testpatt``)."""
    from mtpkt.tools.mt_states import selected_runs

    for target, runname, testpatt in selected_runs(args, which):
        packet = make(target=target, runname=runname, testpatt=testpatt)
        print(f"megatest: {what} {testpatt} of run {target}/{runname}", file=sys.stderr)
        send_and_follow(packet, link, ack=ack)
