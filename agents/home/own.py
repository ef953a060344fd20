"""The home's own status packets: numbered in one place, committed in that order.

The home reports under origin ``home`` like an agent under its name: the
``LAUNCHED``, ``KILLREQ``, ``PREQ_FAIL`` and ``DEAD`` records it decides,
the chores' record changes and their ``ack`` packets. Each takes the next
``seq`` of that origin, counted on from the store's last
(:meth:`~mtpkt.store.Store.origin_seq`), so a home that restarts goes on
where the one before it stopped.

:attr:`OwnPackets.lock` is the *commit lock*: whoever makes packets holds it
until they are queued (:meth:`OwnPackets.submit`), so they are committed in
``seq`` order. It is taken before the dispatcher's books lock, never after
(:mod:`~mtpkt.agents.home.books`).
"""

import threading
from collections.abc import Callable, Sequence
from typing import Final

from mtpkt.agents.area import TestRef
from mtpkt.pkts import AckOutcome, State, Status
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket

__all__ = ["ACK_REASON", "ORIGIN", "OwnPackets", "Submit"]

ORIGIN: Final = "home"
"""Origin of the status packets and tasks the home makes."""
ACK_REASON: Final = 2000
"""Most characters of a chore's outcome in its ``ack`` packet (the journal keeps all)."""

Submit = Callable[[Sequence[StatusPacket]], Callable[[], None]]
"""Queues status packets for commit behind those queued before; the function it returns
waits until they are committed (:meth:`mtpkt.agents.home.collector.Collector.submit`)."""


class OwnPackets:
    """Makes the home's status packets with the next ``seq``, and queues them for commit.

    Args:
        seq: the last ``seq`` of origin ``home`` committed (0 for a new store).
        submit: queues packets for commit (the collector's).
    """

    def __init__(self, seq: int, submit: Submit) -> None:
        self.lock = threading.RLock()
        """The commit lock: held from making packets until they are queued."""
        self._seq = seq
        # A leaf lock for the counter alone: taking the commit lock here could invert the
        # order of the two locks for a caller that holds the books lock.
        self._count = threading.Lock()
        self._submit = submit

    def change(
        self,
        ref: TestRef,
        state: State,
        status: Status,
        comment: str = "",
        host: str = "",
        job: str = "",
    ) -> StatusChange:
        """A record change of instance ``ref`` (call with :attr:`lock` held); ``job`` the batch
        job it runs in (``slurm:4711``), when the home submitted one."""
        return StatusChange(
            origin=ORIGIN,
            seq=self._next(),
            target=ref.target,
            runname=ref.runname,
            test=ref.test,
            item=ref.item,
            state=state,
            status=status,
            comment=comment,
            host=host,
            job=job,
        )

    def ack(self, control: bytes, reason: str, outcome: AckOutcome = AckOutcome.DONE) -> Ack:
        """The ``ack`` of a control packet carried out (or, ``rejected``, given up: call with
        :attr:`lock` held)."""
        return Ack(
            origin=ORIGIN,
            seq=self._next(),
            ref=control,
            outcome=outcome,
            reason=reason[:ACK_REASON],
        )

    def submit(self, packets: Sequence[StatusPacket]) -> Callable[[], None]:
        """Queue packets for commit; the function returned waits until they are committed.

        Raises:
            TimeoutError: the queue stayed full (from this call); the commit did not
                come in time (from the function returned).
            StoreError: they could not be committed (from the function returned).
        """
        return self._submit(packets)

    def commit(self, packets: Sequence[StatusPacket]) -> None:
        """Queue packets for commit and wait until they are committed (see :meth:`submit`)."""
        self._submit(packets)()

    def _next(self) -> int:
        with self._count:
            self._seq += 1
            return self._seq
