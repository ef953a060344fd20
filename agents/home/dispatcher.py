"""The home's dispatcher: turns control packets into work for the host agents.

The face the home uses; each job is a module of its own:

* :mod:`~mtpkt.agents.home.intake`: control packets checked, journaled,
  carried out, and picked up again after a restart;
* :mod:`~mtpkt.agents.home.launches`: a ``run`` planned into a launch whose
  instances are recorded ``NOT_STARTED`` before the sender is answered,
  ``kill`` inside it, dependents of failed prerequisites ``PREQ_FAIL``;
* :mod:`~mtpkt.agents.home.assign`: agents pull, and get the ready instances
  as ``run`` tasks, recorded ``LAUNCHED`` first;
* :mod:`~mtpkt.agents.home.batchjobs`: instances whose launcher is a batch
  system's, submitted as jobs and followed (:attr:`Dispatcher.batch`, started
  by the home once it serves);
* :mod:`~mtpkt.agents.home.liveness`: the tests of agents lost beyond the
  grace become ``COMPLETED/DEAD``;
* :mod:`~mtpkt.agents.home.books`: the launches and agents all of them keep;
* :mod:`~mtpkt.agents.home.own`: the home's own status packets (origin
  ``home``), numbered in one place and committed through the collector like
  an agent's.

What the agents report comes back through the collector (:meth:`observe`).
Two locks: the commit lock is held from making the home's packets until they
are queued, so they are committed in ``seq`` order; the books lock, inside
it, is never held while committing, because the collector calls
:meth:`observe` from its writer thread (:mod:`~mtpkt.agents.home.books`).
"""

import logging
from collections.abc import Sequence

from mtpkt.agents.area import Area
from mtpkt.agents.home.assign import Assigner
from mtpkt.agents.home.batchchoice import BatchChoice
from mtpkt.agents.home.batchjobs import BatchJobs
from mtpkt.agents.home.batchrecover import Recovery
from mtpkt.agents.home.books import Books, Launch
from mtpkt.agents.home.chores import Change, Chores
from mtpkt.agents.home.intake import Intake
from mtpkt.agents.home.launches import Launcher
from mtpkt.agents.home.liveness import AgentWatch
from mtpkt.agents.home.own import ACK_REASON, ORIGIN, OwnPackets, Submit
from mtpkt.agents.home.pins import Pins
from mtpkt.agents.home.triggers import Triggers
from mtpkt.agents.homedir import HomeDir
from mtpkt.pkts import AckOutcome
from mtpkt.pkts.control import Control
from mtpkt.pkts.link import Pull, Task
from mtpkt.pkts.liveness import GRACE
from mtpkt.pkts.status import Ack, StatusPacket
from mtpkt.store import Store, StoreError
from mtpkt.store.journal import DONE, FAILED

__all__ = ["Dispatcher"]

_log = logging.getLogger(__name__)


class Dispatcher:
    """Plans runs, hands work to agents that pull, and keeps the launches' books.

    Args:
        area: the loaded area (plans are made from its config files).
        store: the home's store (the dispatcher reads it and journals control packets).
        submit: queues the home's own status packets for commit (the collector's).
        agent_grace: seconds an agent may be lost (no heartbeat for twice its
            interval) before its unfinished tests become ``COMPLETED/DEAD``.
        homedir: the area's ``.mtpkt`` (batch agents' state directories).
    """

    def __init__(
        self,
        area: Area,
        store: Store,
        submit: Submit,
        *,
        agent_grace: float = GRACE,
        homedir: HomeDir | None = None,
    ) -> None:
        self.area = area
        self.store = store
        self._books = books = Books()
        self._own = own = OwnPackets(store.origin_seq(ORIGIN), submit)
        self._launcher = Launcher(area, store, books, own)
        choice = BatchChoice(area)
        self._assigner = Assigner(books, own, store, choice)
        self.batch = BatchJobs(
            area, store, books, own, self._assigner, choice, homedir or HomeDir(area.home)
        )
        self.batch.recovery = Recovery(self.batch)
        self._launcher.batch_kill = self.batch.kill
        self._watch = AgentWatch(store, books, own, grace=agent_grace)
        self._pins = Pins(store, books, own)
        self.chores = Chores(area, store, report=self._report, finish=self._finish)
        self._triggers = Triggers(area, store)
        self._intake = Intake(
            area, store, books, own, self._launcher, self.chores, follow_up=self.tick
        )

    @property
    def agent_grace(self) -> float:
        return self._watch.grace

    def start(self) -> None:
        """Record the grace for lost agents (for ``mtpkt agents``), and start the thread that
        cleans and archives."""
        try:
            self.store.set_agent_grace(self.agent_grace)
        except StoreError as exc:  # only what `mtpkt agents` shows is affected
            _log.warning("cannot record the agent grace: %s", exc)
        self.chores.start()
        self._launcher.hooks.start()
        self._triggers.start()

    def close(self) -> None:
        """Stop the batch jobs' thread, the chores after the one in hand, the hooks and the
        triggers."""
        self.batch.close()
        self.chores.close()
        self._launcher.hooks.close()
        self._triggers.close()

    def control(self, packet: Control) -> Ack | None:
        """Check, journal and carry out a control packet (:meth:`Intake.control
        <mtpkt.agents.home.intake.Intake.control>`); a run's ``accepted`` ack, which says
        what the home will do, or None.

        Raises:
            ControlError: the packet cannot be carried out; nothing was done.
            StoreError: it could not be journaled.
        """
        return self._intake.control(packet)

    def recover(self) -> None:
        """Carry on with what an earlier home left unfinished (before agents are served).

        Raises:
            StoreError: the journal or the records cannot be read or written.
        """
        self._intake.recover()

    def pull(self, pull: Pull) -> list[Task]:
        """An agent's pull: its tasks (:meth:`Assigner.pull
        <mtpkt.agents.home.assign.Assigner.pull>`).

        Raises:
            StoreError, TimeoutError: the LAUNCHED records of the tasks could not be
                committed (they are with the next pull).
        """
        return self._assigner.pull(pull)

    def observe(self, packets: Sequence[StatusPacket]) -> None:
        """Take note of committed status packets (called by the collector after each commit)."""
        self._books.observe(packets)
        self._triggers.observe(packets)  # queued for the triggers' thread: never waits

    def tick(self) -> None:
        """Follow up on what changed: mark the tests of long-lost agents DEAD, say why the
        tests of runs pinned to an unknown agent wait, block dependents of failed tests,
        retire settled launches."""
        with self._own.lock:
            packets = [*self._watch.lost(), *self._pins.waiting()]
            blocked, finished = self._launcher.settle()
            # Each settled launch's ack comes last: `send --wait` ends on it, never before
            # Megatest's second pass has recorded what it runs again.
            acks = [self._own.ack(launch.control.id, _settled_note(launch)) for launch in finished]
            self._own.commit([*packets, *blocked, *acks])
            for launch in finished:
                self.store.journal_set_state(launch.control.id, DONE)
                _log.info("run %s/%s settled", launch.control.target, launch.control.runname)
            self._watch.record_work()

    # -- what the chores report (their thread) -----------------------------------------

    def _report(self, changes: Sequence[Change]) -> None:
        """Commit record changes the chores made (their books follow through :meth:`observe`)."""
        with self._own.lock:
            packets = [
                self._own.change(ref, state, status, comment, host)
                for ref, state, status, comment, host in changes
            ]
            self._own.commit(packets)

    def _finish(self, control: bytes, reason: str, failed: bool) -> None:
        """A chore is done, or could not be done: journal its outcome, and commit its
        ``ack`` (``rejected`` when it failed) for the stream, where a sender may wait."""
        outcome = AckOutcome.REJECTED if failed else AckOutcome.DONE
        with self._own.lock:
            self._own.commit([self._own.ack(control, reason, outcome)])
        self.store.journal_set_state(control, FAILED if failed else DONE, reason)
        _log.info("%s: %s", control.hex(), reason[:ACK_REASON])


def _settled_note(launch: Launch) -> str:
    """The reason of a settled launch's ``ack``: ``run r1 of ubuntu/x86: 12 test instances
    settled``."""
    control = launch.control
    count = len(launch.progress.records)
    return f"{control.kind} {control.runname} of {control.target}: {count} test instances settled"
