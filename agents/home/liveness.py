"""The dispatcher's watch over its agents: lost ones, ones that come back, and their work.

An agent lost (no heartbeat for twice its interval, as the collector marks
it) beyond the grace period has its unfinished tests made
``COMPLETED/DEAD`` (:func:`mtpkt.pkts.liveness.dead` decides), and the tasks
of those tests given up. If the agent comes back still running one of them,
its next pull gets a ``kill`` task for it (:func:`kill_given_up`). Each
agent's running and unacknowledged tasks are written to ``main.db`` for
``mtpkt agents``.

Locks as :mod:`~mtpkt.agents.home.books` says: the commit lock first, the
books lock inside it and never while committing.
"""

import logging
import time
from typing import Final

from mtpkt.agents.area import TestRef
from mtpkt.agents.home.awake import Awake
from mtpkt.agents.home.books import AgentBook, Books, make_task
from mtpkt.agents.home.own import OwnPackets
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.link import Pull
from mtpkt.pkts.liveness import dead
from mtpkt.pkts.status import StatusPacket
from mtpkt.pkts.trouble import Trouble
from mtpkt.store import Store, StoreError

__all__ = ["AgentWatch", "kill_given_up"]

_log = logging.getLogger(__name__)

LIVENESS_CHECK: Final = 1.0
"""Seconds between looks at the agent registry for lost agents."""
WORK_EVERY: Final = 1.0
"""Least seconds between two writes of the agents' books to ``main.db`` (``mtpkt agents``)."""


class AgentWatch:
    """Gives up the tests of agents lost too long, and records what each agent has in hand.

    Args:
        store: the home's store (its agent registry).
        books: the dispatcher's books.
        own: makes the home's status packets.
        grace: seconds an agent may be lost before its unfinished tests become DEAD.
    """

    def __init__(self, store: Store, books: Books, own: OwnPackets, *, grace: float) -> None:
        self.store = store
        self.grace = grace
        self._books = books
        self._own = own
        self._awake = Awake(LIVENESS_CHECK, "the dispatcher's check for lost agents")
        self._next_check = 0.0
        self._next_work = 0.0
        self._written: dict[str, tuple[int, int]] = {}  # agent → (running, pending) recorded
        self._trouble = Trouble("dispatcher", _log)

    def lost(self) -> list[StatusPacket]:
        """``COMPLETED/DEAD`` for the unfinished tests of agents lost beyond the grace period,
        at most every :data:`LIVENESS_CHECK` seconds (commit lock held).

        Raises:
            StoreError: the agent registry cannot be read.
        """
        now = time.time()
        if now < self._next_check:
            return []
        self._next_check = now + LIVENESS_CHECK
        counts_from = self._awake.since()
        packets: list[StatusPacket] = []
        rows = self.store.agents()
        books = self._books
        with books.lock:
            for row in rows:
                agent = books.agents.get(row.name)
                if agent is None or not agent.running or row.state == "online":
                    continue
                # A beat from before this home started (or woke from a stall) counts as
                # made then.
                if not dead(now - max(row.last_beat, counts_from), row.interval, self.grace):
                    continue
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.last_beat))
                comment = f"agent {row.name} lost: no heartbeat since {since}"
                _log.warning("%s: %d unfinished test(s) marked DEAD", comment, len(agent.running))
                for ref, task in agent.running.items():
                    books.update(ref, State.COMPLETED, Status.DEAD)
                    packets.append(
                        self._own.change(ref, State.COMPLETED, Status.DEAD, comment, row.name)
                    )
                    agent.given_up[task.id] = task
                agent.running.clear()
                agent.outbox = {
                    key: task for key, task in agent.outbox.items() if task.action is Action.KILL
                }
        return packets

    def record_work(self) -> None:
        """Write each agent's running and unacknowledged tasks to ``main.db``, where they
        changed, at most every :data:`WORK_EVERY` seconds (for ``mtpkt agents``)."""
        now = time.time()
        if now < self._next_work:
            return
        self._next_work = now + WORK_EVERY
        changed = {
            name: figures
            for name, figures in self._books.work().items()
            if self._written.get(name) != figures
        }
        if not changed:
            return
        try:
            self.store.record_work(changed, now=now)
        except StoreError as exc:  # only what `mtpkt agents` shows is late; try again next time
            self._trouble.report(f"cannot record the agents' work: {exc}")
            return
        self._trouble.clear()
        self._written.update(changed)


def kill_given_up(agent: AgentBook, pull: Pull) -> None:
    """Kill what a returning agent still runs of the tests marked DEAD in its absence
    (books lock held)."""
    if not agent.given_up:
        return
    running = set(pull.running)
    for task in agent.given_up.values():
        if task.id in running:
            ref = TestRef(task.target, task.runname, task.test, task.item)
            _log.warning("agent %s is back and still runs %s: killing it", agent.name, ref)
            kill = make_task(Action.KILL, ref, task.id, control=task.control)
            agent.outbox[kill.id] = kill
    agent.given_up.clear()
