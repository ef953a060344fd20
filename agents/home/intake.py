"""Intake of control packets: checked, journaled, carried out, and picked up after a restart.

A control packet from ``mtpkt send`` is refused with one line for its sender
when it cannot be carried out (unknown test, target that does not fit the
area, a run that does not exist …); otherwise it is journaled in ``main.db``
before anything is done, so a home that restarts carries on with it
(:meth:`Intake.recover`). A repeat of a journaled packet (``mtpkt send``
retried) changes nothing.

* ``run`` and ``rerunclean`` become launches (:mod:`~mtpkt.agents.home.launches`);
  what the home decided of one (:mod:`~mtpkt.agents.home.plannote`) is committed as
  an ``accepted`` ack, which the sender gets with its receipt;
* ``kill`` withdraws and kills the selected tests of the run;
* ``clean`` kills them too, then goes to the chores with ``archive`` and
  ``setstate`` (:mod:`~mtpkt.agents.home.chores`); none of them touches a
  locked run (Megatest's actions on runs pass a locked one by, runs.scm:2002);
* ``setrun`` locks, unlocks or sets the status of a run, at once.
"""

import logging
import time
from collections.abc import Callable
from typing import Final

from mtpkt.agents.area import Area, AreaError, TestPatt, TestRef
from mtpkt.agents.home.books import Books, Launch
from mtpkt.agents.home.chores import Chores
from mtpkt.agents.home.launches import Launcher
from mtpkt.agents.home.own import OwnPackets
from mtpkt.agents.home.plannote import plan_note
from mtpkt.pkts import AckOutcome
from mtpkt.pkts.control import Archive, Clean, Control, Kill, RerunClean, Run, SetRun, SetState
from mtpkt.pkts.status import Ack
from mtpkt.store import Store, StoreError
from mtpkt.store.journal import ACCEPTED, DONE, FAILED, STARTED

__all__ = ["ControlError", "Intake"]

_log = logging.getLogger(__name__)

CLEAN_GRACE: Final = 10.0
"""Seconds between SIGTERM and SIGKILL for running tests a ``clean`` stops."""


class ControlError(Exception):
    """A control packet the home refuses; the message is one line for its sender."""


class Intake:
    """Checks, journals and carries out control packets.

    Args:
        area: the loaded area (test names are checked against it).
        store: the home's store (its journal).
        books: the dispatcher's books.
        own: makes and commits the home's status packets (its lock is the commit lock).
        launcher: plans, starts and kills in launches.
        chores: cleans and archives.
        follow_up: the dispatcher's follow-up (``tick``), called with the commit lock
            held once a launch is started or a kill asked for.
    """

    def __init__(
        self,
        area: Area,
        store: Store,
        books: Books,
        own: OwnPackets,
        launcher: Launcher,
        chores: Chores,
        *,
        follow_up: Callable[[], None],
    ) -> None:
        self.area = area
        self.store = store
        self._books = books
        self._own = own
        self._launcher = launcher
        self._chores = chores
        self._follow_up = follow_up

    def control(self, packet: Control) -> Ack | None:
        """Check, journal and carry out a control packet from ``mtpkt send``.

        Returns once the packet is journaled and its first effects (the
        ``NOT_STARTED`` records of a run, the ``KILLED`` records of withdrawn
        tests) are committed.

        Returns:
            For a ``run`` or ``rerunclean`` started, its ``accepted`` ack, whose reason
            says what the home will do (:func:`~mtpkt.agents.home.plannote.plan_note`);
            else None.

        Raises:
            ControlError: the packet cannot be carried out (unknown test,
                target that does not fit the area …); nothing was done.
            StoreError: it could not be journaled.
        """
        try:
            self.store.check_target(packet.target)
            TestPatt.parse(packet.testpatt).check_tests(self.area.test_names())
        except (StoreError, AreaError) as exc:
            raise ControlError(str(exc)) from None
        if not isinstance(packet, Run):
            self._check_run(packet)
        launch = self._plan(packet) if isinstance(packet, Run | RerunClean) else None
        if isinstance(packet, Kill) and not self._books.in_hand(packet.target, packet.runname):
            # Nothing of the run is running or waiting: done as soon as journaled.
            reason = "nothing of the run was running or waiting"
            self.store.journal_add(packet, received=time.time(), state=DONE, reason=reason)
            return None
        new = self.store.journal_add(packet, received=time.time(), state=ACCEPTED)
        if not new:
            return None  # a repeat of a packet already carried out (mtpkt send retried)
        return self._carry_out(packet, launch)

    def _check_run(self, packet: Kill | RerunClean | Clean | Archive | SetState | SetRun) -> None:
        """Refuse a packet about a run that does not exist, or that would find nothing to do.

        Raises:
            ControlError: naming the run, or the selection.
        """
        if self.store.run_id(packet.target, packet.runname, create=False) is None:
            raise ControlError(
                f"there is no run {packet.runname} of target {packet.target}:"
                f" nothing to {packet.kind}"
            )
        if isinstance(packet, Clean | Archive | SetState) and self.store.locked(
            packet.target, packet.runname
        ):
            raise ControlError(
                f"run {packet.target}/{packet.runname} is locked: nothing to {packet.kind}"
                " (megatest -unlock unlocks it)"
            )
        if not isinstance(packet, Clean | Archive):
            return
        rows = self._chores.selected(packet)
        if not rows:
            raise ControlError(
                f"no test of run {packet.target} {packet.runname} matches {packet.testpatt!r}"
            )
        if isinstance(packet, Archive) and packet.restore:
            if not any(self._chores.has_archive(packet, row) for row in rows):
                raise ControlError("none of the selected tests has an archive to restore")

    def _plan(self, packet: Run | RerunClean) -> Launch:
        try:
            return self._launcher.plan(packet)
        except AreaError as exc:
            raise ControlError(str(exc)) from None

    def _carry_out(self, packet: Control, launch: Launch | None) -> Ack | None:
        if launch is not None:
            with self._own.lock:
                kept = set(launch.skipped)  # what the plan leaves alone; start() adds the busy
                self._launcher.start(launch)
                self.store.journal_set_state(launch.control.id, STARTED)
                accepted = self._accepted(launch, kept)
                self._follow_up()  # after the ack: a launch with nothing to run settles here
            return accepted
        if isinstance(packet, Kill):
            self._kill(packet, packet.grace)
            self.store.journal_set_state(packet.id, DONE)
        elif isinstance(packet, Clean):
            self._kill(packet, CLEAN_GRACE)
            self._chores.submit(packet)
        elif isinstance(packet, Archive | SetState):
            self._chores.submit(packet)
        elif isinstance(packet, SetRun):
            try:
                self.store.set_run(
                    packet.target,
                    packet.runname,
                    locked=packet.lock,
                    status=packet.status,
                    comment=packet.comment,
                )
            except StoreError as exc:
                self.store.journal_set_state(packet.id, FAILED, str(exc))
                raise ControlError(str(exc)) from None
            self.store.journal_set_state(packet.id, DONE)
        return None

    def _accepted(self, launch: Launch, kept: set[TestRef]) -> Ack:
        """The launch's ``accepted`` ack, committed (commit lock held); a failure to commit it
        is logged only: the run is started, and its sender gets the ack all the same."""
        ack = self._own.ack(launch.control.id, plan_note(launch, kept), AckOutcome.ACCEPTED)
        try:
            self._own.commit([ack])
        except (StoreError, TimeoutError) as exc:
            _log.warning("%s: its plan is not on the stream: %s", launch.control.id.hex(), exc)
        _log.info("%s", ack.reason)
        return ack

    def _kill(self, packet: Kill | Clean, grace: float) -> None:
        with self._own.lock:
            self._launcher.kill(packet, grace)
            self._follow_up()

    def recover(self) -> None:
        """Carry on with the journaled control packets an earlier home left unfinished.

        A run whose records were committed (``started``) gets its books back
        from them (:meth:`~mtpkt.agents.home.launches.Launcher.resume`). A
        packet journaled but not yet carried out is carried out now. Called
        once, before agents are served.

        Raises:
            StoreError: the journal or the records cannot be read or written.
        """
        for row in self.store.journal():
            if row.state not in (ACCEPTED, STARTED):
                continue
            packet = row.packet
            try:
                if isinstance(packet, Run | RerunClean) and row.state == STARTED:
                    self._launcher.resume(packet)
                else:
                    launch = self._plan(packet) if isinstance(packet, Run | RerunClean) else None
                    self._carry_out(packet, launch)
            except (ControlError, AreaError) as exc:
                _log.error(
                    "%s %s/%s not picked up again: %s",
                    packet.kind,
                    packet.target,
                    packet.runname,
                    exc,
                )
                self.store.journal_set_state(packet.id, FAILED, str(exc))
                with self._own.lock:  # a send --wait following it ends, saying why
                    reason = f"not picked up again: {exc}"
                    self._own.commit([self._own.ack(packet.id, reason, AckOutcome.REJECTED)])
