"""``megatest -list-runs PATT`` and ``-list-db-targets``: the area's runs, in Megatest's layout.

Megatest's own release checks judge this output with logpro rules such as
``^\\s+Test: NAME(\\(.*|\\s+)\\s+State: S\\s+Status: T\\s+Runtime:\\s+(\\d+)s``, so it is
Megatest's text line for line (megatest.scm:1243-1478, with the default fields-spec):

* one line per run, ``Run: TARGET/RUNNAME `` then ``field: value `` for each key, ``id``,
  ``runname``, ``state``, ``status``, ``owner``, ``event_time``, ``comment``,
  ``fail_count``, ``pass_count``. Megatest's query of the runs does not select the last
  two (megatest.scm:1258-1259), so it prints ``#f`` for them; so does this.
* one line per test record, ``  Test: ~25a State: ~15a Status: ~15a Runtime: ~5@as
  Time: ~22a Host: ~10a`` (Chicken ``format``: ``~25a`` pads on the right, ``~5@a`` on
  the left), an item named ``test(item/path)``. The records come as
  ``db:get-tests-for-run`` gives them: its query orders them by test name then item
  path, and it conses each row onto its answer, so the list is that order reversed
  (db.scm:2677-2706): test names and item paths descending.
* for a record whose status is not PASS or WARN and whose state is not NOT_STARTED,
  its ``cpuload``, ``diskfree``, ``uname`` and ``rundir`` lines, then a ``    Step:``
  line per step row. mtpkt measures no cpu load, free disk or uname per test: those
  lines show the values Megatest's schema gives a test that never reported them
  (``-1.0``, ``-1``, ``n/a``, db.scm:1273-1275), so the layout stays Megatest's. The
  run directory is the one recorded, ``n/a`` when none was.

Times (``event_time``) are seconds since the epoch, as Megatest keeps and prints them
(``strftime('%s','now')``, db.scm:2091); mtpkt keeps fractions, printed truncated.
A host is ``n/a`` until a test was given one, as Megatest's default (db.scm:1272).

Runs are chosen as ``db:get-runs-by-patt`` does (db.scm:2400-2438): the run name and
each part of the target are matched with SQLite's ``LIKE`` when they hold ``%``, else
with ``GLOB``; deleted runs are left out; by ``event_time``. Tests are chosen by
``-testpatt`` (else ``-runtests``, else ``%``) and ``-state``/``-status`` lists;
``-sort FIELD`` orders them by a field of their record instead.
The databases are read read-only (:mod:`mtpkt.tools.local_area`); with none yet there
is nothing to list.
"""

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TextIO

from mtpkt.tools.intest_args import Args

if TYPE_CHECKING:
    import apsw

    from mtpkt.agents.area import Area
    from mtpkt.store.query import StoreQuery
    from mtpkt.store.rows import RunRow, StepRow, TestRow

__all__ = [
    "ListError",
    "list_runs",
    "patt_match",
    "run_fields",
    "run_line",
    "step_rows",
    "target_of",
    "test_lines",
]

RUN_FIELDS: Final = ("id", "runname", "state", "status", "owner", "event_time", "comment")
"""The fields Megatest's query of the runs selects (megatest.scm:1258)."""
UNSELECTED: Final = ("fail_count", "pass_count")
"""Fields of the default runs-spec the query does not select: ``#f`` (megatest.scm:1280)."""
SORTABLE: Final = (
    "id", "run_id", "testname", "state", "status", "event_time", "host", "rundir",
    "item_path", "run_duration", "final_logf", "comment", "attemptnum", "archived",
)  # fmt: skip
"""The fields of Megatest's test record (db.scm:2987-2989) that mtpkt keeps: ``-sort``
takes one (cpuload, diskfree, uname and shortdir are not kept)."""
QUIET: Final = ("PASS", "WARN")
"""Statuses whose tests get no detail lines (megatest.scm:1402-1404); so does NOT_STARTED."""


class ListError(Exception):
    """A query the command cannot answer; the message is one line, ``code`` the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def patt_match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches a Megatest run pattern: SQLite's ``LIKE`` when it holds
    ``%`` (case-blind, ``_`` any one character), else ``GLOB`` (``*``, ``?``, ``[…]``)."""
    operator = "LIKE" if "%" in pattern else "GLOB"
    return bool(_matcher().execute(f"SELECT ? {operator} ?", (value, pattern)).get)


@functools.cache
def _matcher() -> "apsw.Connection":
    """One in-memory SQLite for every match of the command (not one per run and key)."""
    import apsw

    return apsw.Connection(":memory:")


def _seconds(value: float | None) -> str:
    return "" if value is None else str(int(value))


def run_fields(run: "RunRow", fields: Sequence[str]) -> list[tuple[str, str]]:
    """A run's fields as Megatest prints them: its keys, :data:`RUN_FIELDS`, then
    :data:`UNSELECTED` as ``#f``."""
    values = dict(zip(fields, run.target.split("/"), strict=True))
    values.update(
        id=str(run.id), runname=run.runname, state=run.state, status=run.status,
        owner=run.owner, event_time=_seconds(run.event_time), comment=run.comment,
    )  # fmt: skip
    return [*values.items(), *((name, "#f") for name in UNSELECTED)]


def run_line(run: "RunRow", fields: Sequence[str]) -> str:
    """A run's line: ``Run: TARGET/RUNNAME `` and its fields (megatest.scm:1351-1360)."""
    pairs = run_fields(run, fields)
    return f"Run: {run.target}/{run.runname} " + "".join(f"{k}: {v} " for k, v in pairs)


def test_lines(test: "TestRow", steps: Iterable["StepRow"]) -> list[str]:
    """A test record's line, and for one that did not end well its details and steps
    (megatest.scm:1385-1436)."""
    name = f"{test.testname}({test.item_path})" if test.item_path else test.testname
    runtime = str(int(test.run_duration))
    lines = [
        f"  Test: {name:<25} State: {test.state:<15} Status: {test.status:<15}"
        f" Runtime: {runtime:>5}s Time: {_seconds(test.event_time):<22}"
        f" Host: {test.host or 'n/a':<10}"
    ]
    if not _detailed(test):
        return lines
    lines += [
        "         cpuload:  -1.0",
        "         diskfree: -1",
        "         uname:    n/a",
        f"         rundir:   {test.rundir or 'n/a'}",
    ]
    lines += [
        f"    Step: {step.stepname:<20} State: {step.state:<10} Status: {step.status:<10}"
        f" Time {_seconds(step.event_time):<22}"
        for step in steps
    ]
    return lines


def _detailed(test: "TestRow") -> bool:
    """Whether a record's details and steps are shown (megatest.scm:1402-1404)."""
    return test.status not in QUIET and test.state != "NOT_STARTED"


def step_rows(rows: Iterable["StepRow"]) -> dict[int, list["StepRow"]]:
    """Each test's step rows as Megatest's table would hold them: one per step name and
    state (``INSERT OR REPLACE`` on that pair, db.scm:3185 and 1310), in the order of
    their last writing (``ORDER BY id``), deleted ones left out (db.scm:3211)."""
    last: dict[tuple[int, str, str], StepRow] = {}
    for row in rows:
        key = (row.test_id, row.stepname, row.state)
        last.pop(key, None)  # a replaced row takes a new id: it goes to the end
        last[key] = row
    by_test: dict[int, list[StepRow]] = {}
    for row in last.values():
        if row.status != "DELETED":
            by_test.setdefault(row.test_id, []).append(row)
    return by_test


def target_of(args: Args, fields: Sequence[str], env: Mapping[str, str]) -> str | None:
    """``-reqtarg``, else ``-target``, else ``$MT_TARGET`` (common.scm:1052-1074).

    Raises:
        ListError: one that does not have one non-empty part per key.
    """
    target = args.get("-reqtarg", "-target") or env.get("MT_TARGET")
    if target is None:
        return None
    parts = target.split("/")
    if len(parts) != len(fields) or not all(parts):
        raise ListError(
            f"Invalid target, spaces or blanks not allowed {target!r},"
            f" target should be: {'/'.join(fields)}"
        )
    return target


def _runs(query: "StoreQuery", runpatt: str, target: str | None) -> list["RunRow"]:
    """The runs ``db:get-runs-by-patt`` gives: matching, not deleted, by event_time."""
    chosen = []
    for run in query.runs():
        if run.state.lower() == "deleted" or not patt_match(runpatt, run.runname):
            continue
        parts = zip(target.split("/"), run.target.split("/"), strict=False) if target else ()
        if all(patt_match(pattern, value) for pattern, value in parts):
            chosen.append(run)
    return sorted(chosen, key=lambda run: (run.event_time or 0.0, run.id))


def _tests(query: "StoreQuery", run: "RunRow", args: Args) -> list["TestRow"]:
    """The run's records as ``db:get-tests-for-run`` returns them (see the module)."""
    from mtpkt.agents.area.testpatt import TestPatt

    testpatt = TestPatt.parse(args.get("-testpatt", "-runtests") or "%")
    states = [s for s in (args.get("-state") or "").split(",") if s]
    statuses = [s for s in (args.get("-status") or "").split(",") if s]
    rows = [
        row
        for row in query.tests(run.id, states=states, statuses=statuses)
        if row.state != "DELETED" and testpatt.matches(row.testname, row.item_path)
    ]
    rows.sort(key=lambda row: (row.testname, row.item_path), reverse=True)
    if (field := args.get("-sort")) is not None:
        # megatest.scm:1437-1447: by that field (a stable sort here: ties keep the order above)
        if field not in SORTABLE:
            raise ListError(f"-sort {field}: not a field of a test ({', '.join(SORTABLE)})")
        rows.sort(key=lambda row: _field(row, field))
    return rows


def _field(row: "TestRow", field: str) -> float | str:
    """A record's field by Megatest's name of it (:data:`SORTABLE`)."""
    value = getattr(row, field, None)
    return value if isinstance(value, str | int | float) else 0


def list_runs(area: "Area", args: Args, env: Mapping[str, str], out: TextIO) -> None:
    """``-list-runs`` (or ``-list-db-targets``) into ``out``; ``-dumpmode json`` gives
    Megatest's tree of them (megatest.scm:1333-1342, 1363-1372) as JSON.

    Raises:
        ListError: a bad target, testpatt or dumpmode, or a database that cannot be read.
    """
    from mtpkt.agents.area import AreaError
    from mtpkt.store import StoreError
    from mtpkt.tools.errors import CliError
    from mtpkt.tools.local_area import query_of

    fields = area.fields
    target = target_of(args, fields, env)
    dumpmode = args.get("-dumpmode")
    if dumpmode not in (None, "json"):
        raise ListError(f"-dumpmode {dumpmode} is not supported with -list-runs (json is)")
    if not (area.home / area.dbdir / "main.db").exists():
        return  # no run yet: nothing to list
    try:
        query = query_of(area)
    except CliError as exc:
        raise ListError(str(exc)) from None
    try:
        with query:
            runs = _runs(query, args.get("-list-runs") or "%", target)
            if args.has("-list-db-targets"):
                targets = list(dict.fromkeys(run.target for run in runs))
                # Megatest conses each onto its list (megatest.scm:1322): reversed in json
                lines = [json.dumps({"targets": targets[::-1]})] if dumpmode else targets
                print("".join(f"{line}\n" for line in lines), file=out, end="")
                return
            tree: dict[str, dict[str, object]] = {}
            for run in runs:
                tests = _tests(query, run, args)
                detailed = not dumpmode and any(map(_detailed, tests))
                steps = step_rows(query.steps(run.id)) if detailed else {}
                if dumpmode:
                    tree.setdefault(run.target, {})[run.runname] = _tree(run, fields, tests)
                    continue
                print(run_line(run, fields), file=out)
                for test in tests:
                    print("\n".join(test_lines(test, steps.get(test.id, ()))), file=out)
    except (AreaError, StoreError) as exc:
        raise ListError(str(exc)) from None
    if dumpmode:
        print(json.dumps(tree, indent=1), file=out)


def _tree(run: "RunRow", fields: Sequence[str], tests: Sequence["TestRow"]) -> dict[str, object]:
    """A run as Megatest's ``-dumpmode json`` holds it: ``meta`` (its fields as text) and
    ``data`` (each test record by id)."""
    meta = dict(run_fields(run, fields))
    data = {
        str(test.id): {
            "id": test.id, "run_id": test.run_id, "testname": test.testname,
            "state": test.state, "status": test.status, "event_time": _seconds(test.event_time),
            "host": test.host or "n/a", "rundir": test.rundir, "item_path": test.item_path,
            "run_duration": int(test.run_duration), "final_logf": test.final_logf,
            "comment": test.comment, "attemptnum": test.attemptnum, "archived": test.archived,
        }
        for test in tests
    }  # fmt: skip
    return {"meta": meta, "data": data}
