"""What the home decided of a ``run`` or ``rerunclean``, in one line for its sender.

Once a launch is started (:meth:`Launcher.start
<mtpkt.agents.home.launches.Launcher.start>`), the home knows how many tests
and instances it has, which it leaves alone and which it runs. The intake
commits that line as the reason of an ``accepted`` ack and sends the ack
with its receipt, so ``mtpkt send run`` prints what the home will do (and
``tail`` shows it later), e.g.::

    run ubuntu/x86_64/nightly: 12 tests, 40 instances; 8 already done (kept), 30 to run
"""

from collections.abc import Collection

from mtpkt.agents.area import TestPatt, TestRef
from mtpkt.agents.home.books import Launch
from mtpkt.pkts.control import RerunClean
from mtpkt.pkts.text import counted

__all__ = ["plan_note"]


def plan_note(launch: Launch, kept: Collection[TestRef]) -> str:
    """The launch's plan as started: its tests and instances, how many it leaves alone and
    how many it runs (books lock or commit lock held).

    Args:
        launch: a launch just started.
        kept: the instances its plan left alone for their records (done already, or for a
            ``rerunclean`` not ended badly); the others it skips are in another launch's
            hands.
    """
    control, progress = launch.control, launch.progress
    # A deferred test has only its toplevel until its items are made, when it is due.
    later = {launch.plan.toplevel(name) for name, test in progress.tests.items() if test.deferred}
    instances = [ref for ref in progress.records if ref not in later]
    skipped = launch.skipped
    kept_count = sum(ref in kept for ref in instances)
    others = sum(ref in skipped and ref not in kept for ref in instances)
    to_run = sum(ref not in skipped for ref in instances)
    why = "did not end badly" if isinstance(control, RerunClean) else "already done"
    parts = [f"{kept_count} {why} (kept)"]
    if others:
        parts.append(f"{others} in another launch's hands")
    parts.append(f"{to_run} to run")
    # Prerequisites the testpatt does not name run too (and settle before what waits on
    # them); `send --wait` counts only what the testpatt names, so the line says so.
    patt = TestPatt.parse(control.testpatt)
    brought = sum(not patt.matches(ref.test, ref.item) for ref in instances)
    what = "a prerequisite" if brought == 1 else "prerequisites"
    outside = f" ({brought} of them {what} outside the testpatt)" if brought else ""
    line = (
        f"{control.kind} {control.target}/{control.runname}:"
        f" {counted(len(progress.tests), 'test')}, {counted(len(instances), 'instance')}{outside};"
        f" {', '.join(parts)}"
    )
    waiting = sum(ref not in skipped for ref in later)
    if waiting:
        line += f"; the items of {counted(waiting, 'test')} are made when due"
    return line
