"""The previous run's record of a test instance, for its waivers.

Megatest's ``tests:test-set-status!`` looks it up when a test is to be set
FAIL (``db:get-previous-test-run-record``, tests.scm:412): the runs of the
same target other than this one, newest first, and the first that has a
record of the same test and item. The test's process cannot read the
home's databases, so the home looks it up when it hands the test out and
sends it with the task (:attr:`~mtpkt.pkts.link.Task.previous`), only for a
test whose testconfig has ``[waivers]``: other tests cost nothing.

Locks as :mod:`~mtpkt.agents.home.books` says: called with the books lock held.
"""

from mtpkt.agents.area import Instance
from mtpkt.store import Store, StoreError

__all__ = ["previous_record"]


def previous_record(store: Store, instance: Instance) -> tuple[str, ...]:
    """State, status, comment and run directory of the instance's record in the newest other
    run of its target that has one; () when there is none, or the test has no waivers."""
    if not instance.job.waivers:
        return ()
    ref = instance.ref
    runs = [run for run in store.runs() if run.target == ref.target and run.runname != ref.runname]
    for run in sorted(runs, key=lambda run: run.id, reverse=True):
        try:
            rows = store.tests(run.id)
        except StoreError:  # a run whose database was never made
            continue
        for row in rows:
            if (row.testname, row.item_path) == (ref.test, ref.item):
                return (row.state, row.status, row.comment, row.rundir)
    return ()
