"""``megatest -test-paths`` and ``-test-files``: other tests' run directories, from the store.

Megatest asks its database for the run directories of the tests matching
``-target``, ``-runname``/``:runname``, ``-testpatt`` and ``:state``/``:status``
patterns (``%`` the wildcard), and with ``-test-files PATT`` lists the files
matching the glob ``PATT`` in each (tests.scm:1414-1438, megatest.scm:1746-1790).
Here the area's databases (``$MT_RUN_AREA_HOME``) are read, read-only, as
``mtpkt tests`` reads them; a record without a run directory is left out.
"""

import glob as files
import os
from collections.abc import Mapping
from pathlib import Path

from mtpkt.agents.area.testpatt import TestPatt
from mtpkt.agents.area.testpatt import glob as like
from mtpkt.tools.intest_args import Args
from mtpkt.tools.intest_call import CallFailed

__all__ = ["query_paths"]


def query_paths(args: Args, env: Mapping[str, str] | None = None) -> list[str]:
    """The run directories (or, with ``-test-files``, the files in them) the query names.

    Raises:
        CallFailed: no ``-target`` (as Megatest), no area, or no database to read.
    """
    from mtpkt.agents.area import AreaError
    from mtpkt.store import StoreError
    from mtpkt.tools.errors import CliError
    from mtpkt.tools.local_area import load_area, query_of

    env = os.environ if env is None else env
    target = args.get("-target")
    if not target:
        raise CallFailed("-target is required.")
    home = env.get("MT_RUN_AREA_HOME", "")
    runname = like(args.get("-runname", ":runname") or "%")
    state = like(args.get("-state", ":state") or "%")
    status = like(args.get("-status", ":status") or "%")
    try:
        testpatt = TestPatt.parse(args.get("-testpatt") or "%")
        query = query_of(load_area(Path(home) if home else None))
    except (AreaError, CliError) as exc:
        raise CallFailed(str(exc)) from None
    try:
        runs = [run for run in query.runs(target=target) if runname.fullmatch(run.runname)]
        paths = [
            test.rundir
            for run in runs
            for test in query.tests(run.id)
            if test.rundir
            and testpatt.matches(test.testname, test.item_path)
            and state.fullmatch(test.state)
            and status.fullmatch(test.status)
        ]
    except StoreError as exc:
        raise CallFailed(str(exc)) from None
    finally:
        query.close()
    pattern = args.get("-test-files")
    if pattern is None:
        return paths
    return [
        found
        for path in paths
        if os.path.isdir(path)
        for found in sorted(files.glob(os.path.join(path, pattern)))
    ]
