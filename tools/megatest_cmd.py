"""``megatest``: Megatest's command line, inside a test's steps and for people and scripts.

Run-management options (``-run``, ``-remove-runs``, ``-set-state-status`` …) go to
:mod:`mtpkt.tools.mt_manage`, which asks the area's home; queries (``-list-runs``,
``-show-config`` …) to :mod:`mtpkt.tools.mt_lists`, which reads the databases
(docs/megatest-cli.md). The rest of this module is the in-test half.

A step calls ``$MT_MEGATEST -step …``, ``-runstep …``, ``-test-status …``,
``-load-test-data`` … as it would call Megatest (docs/in-test.md lists each
option, what it becomes and where it differs). Each invocation is one call to
the agent that runs the test (:mod:`mtpkt.tools.intest_call`), recorded exactly
once; ``-runstep`` makes two, one as its step starts and one as it ends. An
option mtpkt does not support, a bad word or bad CSV exits non-zero with one
line, and nothing is recorded. Exit codes are Megatest's: 5 outside a test, 6
for ``-step`` or ``-test-status`` without ``:state`` and ``:status``, and after
``-runstep`` its command's (or logpro's) code as megatest.scm:2289-2298 gives it
(0, 1, 2, else 3).
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtpkt.tools.intest_args import ACTIONS, QUERY_ACTIONS, RUN_ACTIONS, Args, ArgsError, parse
from mtpkt.tools.intest_call import CallFailed, call

__all__ = ["HELP", "main"]

HELP = """\
megatest (mtpkt): Megatest's in-test options, reported through the agent running this test.

  -step stepname :state start|end :status S [-setlog F] [-m comment]
                          : record a step's start or end (S: a status, or a number: 0 PASS;
                            -state and -status work as :state and :status)
  -runstep stepname [-logpro file.logpro] "command" [-m comment]
                          : run the command into stepname.log, judge it with logpro if
                            given, record the step; exit with its (or logpro's) code
  -test-status :state S :status S [-m comment] [-setlog F]
                          : set the state and status of this test (S: a status, a number,
                            or AUTO: from the test's data)
      [:value V :expected E :tol T :category C :variable V :units U]
                          : and record a test data row
  -set-values :value V :expected E :tol T [:category C :variable V :units U]
                          : record a test data row
  -load-test-data         : record test data rows, CSV on stdin:
                            category,variable,value,expected,tol,units,comment,status,type
  -setlog logfname        : set this test's log (relative to its run directory)
  -set-toplog logfname    : accepted; the top test's log is not recorded
  -summarize-items        : accepted; nothing is made
  -env2file fname         : write the environment to fname.sh and fname.csh
  -test-paths -target T [:runname R] [-testpatt P] [:state S] [:status S]
                          : print the run directories of the tests named
  -test-files GLOB -target T [...]
                          : print the files matching GLOB in those directories
  -target T -runname R -testpatt P -item I
                          : on a call that records, these must name this test

Calls wait for the agent up to MTPKT_CALL_TIMEOUT seconds (default 300).

Launching and managing runs (through the area's home: `mtpkt home` must run)
  -run | -runtests PATT    : run the tests -testpatt (or TESTPATT in runconfigs) selects;
                             waits until they have all ended
  -rerun FAIL,WARN...      : also rerun tests that ended with these statuses
  -rerun-clean | -rerun-all: rerun the tests that ended badly | every test, with -preclean
  -preclean                : remove a test's run directory before running it
  -run-wait | -runwait     : wait until the selected tests of the run have ended
  -remove-runs             : remove the selected tests (-keep-records: only their directories)
  -set-state-status X,Y    : set the selected tests' state to X and status to Y
  -kill-runs               : kill the selected tests of the run(s)
  -archive save|save-remove|restore : archive the selected tests' run directories
  -lock | -unlock          : lock (or, after a y/n on stdin, unlock) the run(s)
  -set-run-status S [-m C] | -get-run-status : set or print the status of the run
Selectors
  -target a/b | -reqtarg a/b : the target (-reqtarg: a section of runconfigs.config)
  -runname R               : the run (% is a wildcard for actions on existing runs)
  -testpatt P              : tests, test/item patterns, % is the wildcard
  :state S,.. :status S,.. : only tests in these states / with these statuses
  -modepatt KEY            : read the test pattern from KEY in runconfigs (not TESTPATT)
  -tagexpr tag1,tag2%      : only the tests with a matching [test_meta] tags word

Queries (read the area's databases; no home needed)
  -list-runs PATT [-target T] [-testpatt P] [-sort FIELD]
                           : runs and their tests, in Megatest's layout
  -list-targets | -list-db-targets | -show-keys
  -show-runconfig -target T | -show-config [-section S -var V] [-dumpmode ini|json]

docs/megatest-cli.md lists every Megatest option and what mtpkt does with it.
"""


def _fail(message: str, code: int = 1) -> int:
    print(f"megatest: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(words)
    except ArgsError as exc:
        return _fail(str(exc))
    if not words or args.has("-h") or args.has("-help") or args.has("--help"):
        print(HELP, end="")
        return 0
    managed = any(args.has(action) for action in RUN_ACTIONS)
    intest = any(args.has(action) for action in ACTIONS)
    if managed or (not intest and any(args.has(action) for action in QUERY_ACTIONS)):
        if args.rest:
            return _fail(f"unrecognised arguments: {' '.join(args.rest)}")
        from mtpkt.tools.tables import writing

        code = 0
        try:
            with writing():  # `megatest -list-runs % | head`: the reader going away is fine
                code = _outside(args, managed)
        except KeyboardInterrupt:  # Ctrl-C while it waits: what was sent goes on in the home
            return _fail("interrupted (what the home was asked goes on there)", 130)
        return code
    if not any(args.has(action) for action in ACTIONS):
        return _fail(f"nothing to do in {' '.join(words)!r} (see megatest -h)")
    if args.rest and not args.has("-runstep"):
        return _fail(f"unrecognised arguments: {' '.join(args.rest)}")
    try:
        return _run(args)
    except CallFailed as exc:
        return _fail(str(exc), exc.code)


def _outside(args: Args, managed: bool) -> int:
    """Run management (through the area's home), then queries, as Megatest does them in one call."""
    code = 0
    if managed:
        from mtpkt.tools.mt_manage import manage

        code = manage(args)
    if code == 0 and any(args.has(action) for action in QUERY_ACTIONS):
        from mtpkt.tools.mt_lists import answer

        code = answer(args)
    return code


def _run(args: Args) -> int:
    if (name := args.get("-env2file")) is not None:
        _env2file(name)
    if args.has("-test-paths") or args.has("-test-files"):
        from mtpkt.tools.intest_paths import query_paths

        for path in query_paths(args):
            print(path)
    names = {
        key: value
        for key, value in (
            ("target", args.get("-target")),
            ("runname", args.get("-runname", ":runname")),
            ("testpatt", args.get("-testpatt")),
            ("item", args.get("-item")),
        )
        if value is not None and not (args.has("-test-paths") or args.has("-test-files"))
    }
    if (step := args.get("-step")) is not None:
        state, status = args.get("-state", ":state"), args.get("-status", ":status")
        if state is None or status is None:
            raise CallFailed("You must specify :state and :status with every call to -step", 6)
        part = {"name": step, "state": state, "status": status}
        part.update(logfile=args.get("-setlog") or "", comment=args.get("-m") or "")
        call({"names": names, "step": part})
    return _group(args, names)


def _group(args: Args, names: dict[str, str]) -> int:
    """The options megatest.scm:1819-2017 handles together, in its order."""
    parts: dict[str, Any] = {"names": names}
    if args.has("-load-test-data"):
        parts["data"] = sys.stdin.read()
    if (logfile := args.get("-setlog")) is not None:
        parts["setlog"] = logfile
    status = _status(args)
    code = 0
    if (step := args.get("-runstep")) is not None:
        if not args.rest:
            raise CallFailed("nothing specified to run!", 6)
        from mtpkt.tools.intest_runstep import run_step

        start = {"name": step, "state": "start", "status": "n/a", "logfile": f"{step}.log"}
        call({**parts, "step": {**start, "comment": args.get("-m") or ""}})
        code, end, html = run_step(step, args.rest, args.get("-logpro"))
        parts = {"names": names, "step": {**end, "comment": args.get("-m") or ""}}
        if html:
            parts["setlog"] = html
    if status is not None:
        parts["status"] = status
    if len(parts) > 1 or args.has("-set-toplog") or args.has("-summarize-items"):
        call(parts)
    return code if code in (0, 1, 2) else 3


def _status(args: Args) -> dict[str, Any] | None:
    """``-test-status`` / ``-set-values``: the state, status and test data row
    (megatest.scm:1993-2016; Megatest reads only these value keys)."""
    if not (args.has("-test-status") or args.has("-set-values")):
        return None
    state, status = args.get(":state"), args.get(":status")
    if args.has("-test-status") and (state is None or status is None):
        raise CallFailed("You must specify :state and :status with every call to -test-status", 6)
    keys = ("value", "expected", "tol", "units", "category", "variable")
    values = {key: value for key in keys if (value := args.get(f":{key}")) is not None}
    return {
        "set": state is not None and status is not None,
        "state": state or "",
        "status": status or "",
        "comment": args.get("-m") or "",
        "values": values,
    }


def _env2file(name: str) -> None:
    """``-env2file``: the environment as ``name.sh`` and ``name.csh`` (common.scm:1747-1789)."""
    import os

    from mtpkt.agents.area.environment import BLACKLISTVARS, env_files

    sh, csh = env_files(dict(os.environ), BLACKLISTVARS)
    try:
        Path(f"{name}.sh").write_text(sh)
        Path(f"{name}.csh").write_text(csh)
    except OSError as exc:
        raise CallFailed(f"-env2file {name}: {exc.strerror}") from None


if __name__ == "__main__":
    sys.exit(main())
