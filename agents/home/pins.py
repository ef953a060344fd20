"""Runs pinned to an agent the home does not know: their waiting tests say why.

A run sent with ``--host NAME`` is handed only to agent ``NAME``. When no agent
of that name has ever reported to this area's home, its tests would sit
``NOT_STARTED`` with nothing to say why. :class:`Pins` records, once per
instance ready to run, the comment "waiting for agent NAME, which the home
does not know"; ``mtpkt tests`` shows it, and ``send --wait`` prints it. Once
the agent comes, the test is handed out and its LAUNCHED record replaces it.

Locks as :mod:`~mtpkt.agents.home.books` says: the caller holds the commit lock;
the books lock is taken inside it, never while committing.
"""

import time
from typing import Final

from mtpkt.agents.area import TestRef
from mtpkt.agents.home.books import Books
from mtpkt.agents.home.own import OwnPackets
from mtpkt.pkts import State, Status
from mtpkt.pkts.status import StatusPacket
from mtpkt.pkts.text import unknown_agent
from mtpkt.store import Store, StoreError

__all__ = ["Pins"]

CHECK_EVERY: Final = 2.0
"""Seconds between looks at the registry for the agents runs are pinned to."""


class Pins:
    """Notes why the tests of runs pinned to unknown agents wait.

    Args:
        store: the home's store (its agent registry).
        books: the dispatcher's books.
        own: makes the home's status packets.
    """

    def __init__(self, store: Store, books: Books, own: OwnPackets) -> None:
        self._store = store
        self._books = books
        self._own = own
        self._next = 0.0
        self._noted: set[tuple[bytes, TestRef]] = set()

    def waiting(self) -> list[StatusPacket]:
        """``NOT_STARTED`` with the reason, for ready instances of runs pinned to an agent the
        home does not know, each once, at most every :data:`CHECK_EVERY` seconds (commit
        lock held). A registry that cannot be read is read again at the next look.
        """
        now = time.monotonic()
        if now < self._next:
            return []
        self._next = now + CHECK_EVERY
        with self._books.lock:
            pins = {launch.control.host for launch in self._books.launches} - {None}
            pins -= set(self._books.agents)  # agents that pulled from this home
        if not pins:
            return []
        try:
            known = {row.name for row in self._store.agents()}
        except StoreError:
            return []  # the next look tries again
        unknown = pins - known
        packets: list[StatusPacket] = []
        with self._books.lock:
            for launch in self._books.launches:
                name = launch.control.host
                if name not in unknown:
                    continue
                for instance in launch.progress.ready():
                    key = (launch.control.id, instance.ref)
                    if key in self._noted or instance.ref in launch.skipped:
                        continue
                    self._noted.add(key)
                    comment = unknown_agent(str(name))
                    packets.append(
                        self._own.change(instance.ref, State.NOT_STARTED, Status.NA, comment)
                    )
        return packets
