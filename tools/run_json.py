"""A run's results as one JSON document (``mtpkt report --json``), from the same records as
the JUnit report (:class:`tools.junit.Suite`).

The document is an object: the run (``target``, ``runname``, ``run_id``,
``state``, ``status``) and ``tests``, one object per test instance as the
JUnit report has them: ``test``, ``item``, ``name`` (``test/item``),
``state``, ``status``, ``outcome`` and ``label`` (how JUnit shows it:
:func:`tools.junit.verdict`), ``host``, ``run_duration`` (seconds),
``comment``, ``rundir``, ``logfile`` (the test's main log, relative to its
run directory; empty when none was named), ``log_path`` (its absolute path
while on disk, else null), ``steps`` (the last attempt's,
:func:`tools.details.step_record`) and ``data`` (its test data,
:func:`tools.details.data_record`).
"""

import json

from mtpkt.tools.details import data_record, step_record
from mtpkt.tools.junit import Case, Suite, verdict

__all__ = ["case_json", "suite_json"]


def case_json(case: Case) -> dict[str, object]:
    """One test instance (see the module docstring)."""
    row = case.row
    outcome, label = verdict(row.state, row.status)
    return {
        "test": row.testname,
        "item": row.item_path,
        "name": case.name,
        "state": row.state,
        "status": row.status,
        "outcome": outcome,
        "label": label,
        "host": row.host,
        "run_duration": row.run_duration,
        "comment": row.comment,
        "rundir": str(case.rundir) if case.rundir is not None else "",
        "logfile": row.final_logf,
        "job": row.job,
        "log_path": str(case.log.absolute()) if case.log is not None else None,
        "steps": [step_record(step.packet) for step in case.steps],
        "data": [data_record(data) for data in case.data],
    }


def suite_json(suite: Suite) -> bytes:
    """The report as UTF-8 JSON, a line per test instance inside ``tests``."""
    run = suite.run
    head = {
        "target": run.target,
        "runname": run.runname,
        "run_id": run.id,
        "state": run.state,
        "status": run.status,
    }
    lines = ",\n".join("  " + json.dumps(case_json(case)) for case in suite.cases)
    text = json.dumps(head)[:-1] + ', "tests": [' + (f"\n{lines}\n" if lines else "") + "]}\n"
    return text.encode()
