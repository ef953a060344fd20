"""Handing work to agents that pull: ready instances become ``run`` tasks.

Each :class:`~mtpkt.pkts.link.Pull` with free slots gets the ready instances
(prerequisites satisfied, highest priority first, within the area's
``max_concurrent_jobs`` and the launch's ``--host`` pin) as ``run`` tasks,
recorded ``LAUNCHED`` first. A task is sent with every reply until the agent
acknowledges it.

Locks as :mod:`~mtpkt.agents.home.books` says: the commit lock first, the
books lock inside it and never while committing.
"""

from collections.abc import Iterable, Sequence

from mtpkt.agents.area import Instance
from mtpkt.agents.home.books import AgentBook, Books, Launch, make_task
from mtpkt.agents.home.liveness import kill_given_up
from mtpkt.agents.home.own import OwnPackets
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.link import Pull, Task
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import StoreError

__all__ = ["Assigner"]


class Assigner:
    """Answers agents' pulls with their tasks.

    Args:
        books: the dispatcher's books.
        own: makes and commits the home's status packets.
    """

    def __init__(self, books: Books, own: OwnPackets) -> None:
        self._books = books
        self._own = own
        self._unlaunched: list[StatusPacket] = []  # LAUNCHED packets whose commit failed

    def pull(self, pull: Pull) -> list[Task]:
        """An agent's pull: note its acknowledgements, hand it ready work, return its tasks.

        Raises:
            StoreError, TimeoutError: the LAUNCHED records of the tasks could not be
                committed; the agent hears of them only once they are (they are
                committed with the next pull).
        """
        books = self._books
        with self._own.lock:
            with books.lock:
                packets, self._unlaunched = self._unlaunched, []
                agent = books.agent(pull.origin)
                for acked in pull.acks:
                    agent.outbox.pop(acked, None)
                kill_given_up(agent, pull)
                free = 0 if pull.draining else pull.free - _unstarted(agent, pull)
                for launch, instance in self._ready(agent.name, free):
                    ref = instance.ref
                    task = make_task(
                        Action.RUN, ref, launch.control.id, testpatt=launch.control.testpatt
                    )
                    agent.outbox[task.id] = task
                    agent.running[ref] = task
                    launch.progress.update(ref, State.LAUNCHED, Status.NA)
                    packets.append(
                        self._own.change(ref, State.LAUNCHED, Status.NA, host=agent.name)
                    )
                tasks = list(agent.outbox.values())
            try:
                committed = self._own.submit(packets)
            except TimeoutError:
                self._launch_later(packets)
                raise
        # LAUNCHED is committed before the agent hears of the test. Waiting outside the lock
        # lets other pulls queue theirs meanwhile, to be committed in the same group.
        try:
            committed()
        except (StoreError, TimeoutError):
            self._launch_later(packets)
            raise
        return tasks

    def _launch_later(self, packets: Sequence[StatusPacket]) -> None:
        """Keep LAUNCHED packets that were not committed for the next pull, in seq order."""
        with self._books.lock:
            kept = {packet.id: packet for packet in [*packets, *self._unlaunched]}
            self._unlaunched = sorted(kept.values(), key=lambda packet: packet.seq)

    def _ready(self, agent: str, free: int) -> Iterable[tuple[Launch, Instance]]:
        """Up to ``free`` ready instances this agent may take, best first (books lock held)."""
        if free <= 0:
            return []
        chosen: list[tuple[Launch, Instance]] = []
        busy = sum(len(a.running) for a in self._books.agents.values())
        for launch in self._books.launches:
            pin = launch.control.host
            if launch.held or (pin is not None and pin != agent):
                continue  # its pre-hook runs, or it is pinned to another agent
            limit = launch.plan.max_jobs
            for instance in launch.progress.take_ready():
                if instance.ref in launch.skipped:
                    continue
                if len(chosen) >= free or (limit is not None and busy >= limit):
                    return chosen
                chosen.append((launch, instance))
                busy += 1
        return chosen


def _unstarted(agent: AgentBook, pull: Pull) -> int:
    """Run tasks sent to the agent that it does not report running yet (in flight)."""
    running = set(pull.running)
    return sum(
        1 for task in agent.outbox.values() if task.action is Action.RUN and task.id not in running
    )
