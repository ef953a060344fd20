"""Turns what happens to tests into ``pkts.status`` packets, numbered per origin."""

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from mtpkt import pkts
from mtpkt.agents.area.job import TestRef
from mtpkt.pkts.status import StatusChange, StatusPacket, Step, TestData
from mtpkt.pkts.testdata import DataRow

__all__ = ["Reporter"]


class Reporter:
    """Makes status packets with the next ``seq`` of one origin and hands them to a sink.

    Thread-safe: packets reach the sink one at a time, in ``seq`` order.

    Args:
        origin: who the packets come from (an agent's name).
        sink: receives each packet, e.g. the agent's durable spool.
        next_seq: sequence number of the first packet (continue after a restart).
    """

    def __init__(
        self, origin: str, sink: Callable[[StatusPacket], None], *, next_seq: int = 1
    ) -> None:
        self.origin = origin
        self._sink = sink
        self._next_seq = next_seq
        self._lock = threading.RLock()  # re-entered by a together() block's emits
        self._local = threading.local()  # .batch: the packets of this thread's together()
        self.muted = False
        """Set by :meth:`mute`: nothing more is reported."""

    def mute(self) -> None:
        """Report nothing from now on (the agent in a batch job the system is ending: the
        home records how the test ended, from the job's state)."""
        with self._lock:
            self.muted = True

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next packet will carry."""
        return self._next_seq

    def change(
        self,
        test: TestRef,
        state: pkts.State,
        status: pkts.Status,
        *,
        comment: str = "",
        host: str = "",
        pid: int | None = None,
        logfile: str = "",
    ) -> None:
        """Report a test's new state and status (and its main log, when ``logfile`` is given)."""
        self._emit(
            StatusChange,
            test,
            state=state,
            status=status,
            comment=comment,
            host=host,
            pid=pid,
            logfile=logfile,
        )

    def step(
        self,
        test: TestRef,
        step: str,
        state: pkts.StepState,
        *,
        status: pkts.Status = pkts.Status.NA,
        exit_code: int | None = None,
        logfile: str = "",
        duration: float | None = None,
        comment: str = "",
    ) -> None:
        """Report that a step started or ended."""
        self._emit(
            Step,
            test,
            step=step,
            state=state,
            status=status,
            exit_code=exit_code,
            logfile=logfile,
            duration=duration,
            comment=comment,
        )

    def test_data(self, test: TestRef, rows: Iterable[DataRow]) -> None:
        """Report rows of a test's data, one :class:`TestData` packet each, in order."""
        for row in rows:
            self._emit(TestData, test, **attrs.asdict(row))

    @contextlib.contextmanager
    def together(self, seal: Callable[[list[StatusPacket]], None]) -> Iterator[None]:
        """Hand the packets this thread reports in the block to ``seal``, all at once, at its end.

        ``seal`` gets them numbered and in order (e.g. the spool's ``put_many`` with a call
        id: one transaction). Should the block or ``seal`` raise, none of them is reported.
        From the block's first packet to its end, other threads wait to report: so, after
        its first packet, the block must not wait for a lock a reporting thread may hold
        (report a test's state change, which takes the test's lock, first).
        """
        batch: list[StatusPacket] = []
        self._local.batch, self._local.locked = batch, False
        try:
            try:
                yield
            finally:
                self._local.batch = None
            seal(batch)
            self._next_seq += len(batch)
        finally:
            if self._local.locked:
                self._local.locked = False
                self._lock.release()

    def _emit(
        self, kind: type[StatusChange] | type[Step] | type[TestData], test: TestRef, **fields: Any
    ) -> None:
        """Number the packet, hand it to the sink, one at a time in seq order."""
        batch: list[StatusPacket] | None = getattr(self._local, "batch", None)
        if batch is not None and not self._local.locked:
            self._lock.acquire()  # held until the together() block ends
            self._local.locked = True
        with self._lock:
            if self.muted:
                return
            packet = kind(
                seq=self._next_seq + (0 if batch is None else len(batch)),
                origin=self.origin,
                target=test.target,
                runname=test.runname,
                test=test.test,
                item=test.item,
                **fields,
            )
            if batch is not None:
                batch.append(packet)
                return
            self._sink(packet)
            self._next_seq += 1
