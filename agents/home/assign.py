"""Handing work to agents that pull: ready instances become ``run`` tasks.

Each :class:`~mtpkt.pkts.link.Pull` with free slots gets the ready instances
(prerequisites satisfied, highest priority first, within the area's
``max_concurrent_jobs``, the ``[jobgroups]`` limits (:mod:`~mtpkt.agents.home.jobgroups`),
the run's ``launch-delay`` and the launch's ``--host`` pin) as ``run`` tasks,
recorded ``LAUNCHED`` first; an instance its ``[skip]`` rule skips is recorded
``COMPLETED/SKIP`` instead (:mod:`~mtpkt.agents.home.skips`), in Megatest's order
(runs.scm:1465-1532, 1777-1807, launch.scm:1338-1345). A task is sent with every
reply until the agent acknowledges it.

Locks as :mod:`~mtpkt.agents.home.books` says: the commit lock first, the
books lock inside it and never while committing.
"""

import time
from collections.abc import Sequence

import attrs

from mtpkt.agents.area import Instance, TestRef
from mtpkt.agents.home.batchchoice import BatchChoice, BatchLaunch, agent_name, is_batch_agent
from mtpkt.agents.home.books import AgentBook, Books, Launch, make_task
from mtpkt.agents.home.jobgroups import JobGroups
from mtpkt.agents.home.liveness import kill_given_up
from mtpkt.agents.home.own import OwnPackets
from mtpkt.agents.home.previous import previous_record
from mtpkt.agents.home.reruns import last_launch
from mtpkt.agents.home.skips import Skips
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.link import Pull, Task
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import Store, StoreError

__all__ = ["Assigner", "BatchTask"]


@attrs.frozen
class BatchTask:
    """An instance booked to the agent of a batch job, to be submitted."""

    launch: Launch
    task: Task
    batch: BatchLaunch
    agent: str
    """The name of the agent in its job (its books, its state directory)."""

    @property
    def ref(self) -> TestRef:
        task = self.task
        return TestRef(task.target, task.runname, task.test, task.item)


class Assigner:
    """Answers agents' pulls with their tasks.

    Args:
        books: the dispatcher's books.
        own: makes and commits the home's status packets.
        store: the home's store (every run's records, for ``[skip]``).
        batch: which instances go to a batch system.
    """

    def __init__(self, books: Books, own: OwnPackets, store: Store, batch: BatchChoice) -> None:
        self._books = books
        self._batch = batch
        self._own = own
        self._store = store
        self._skips = Skips(store, books)
        self._unlaunched: list[StatusPacket] = []  # LAUNCHED packets whose commit failed

    def pull(self, pull: Pull) -> list[Task]:
        """An agent's pull: note its acknowledgements, hand it ready work, return its tasks.

        The agent in a batch job gets only the task the home put in its book; no other
        agent gets an instance its launcher sends to a batch system.

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
                if is_batch_agent(agent.name):
                    free = 0
                for _, _, task in self._hand_out(self._ready(agent.name, free), packets, agent):
                    agent.outbox[task.id] = task
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

    def launch_batch(self, limit: int) -> tuple[list[BatchTask], bool]:
        """Up to ``limit`` ready instances that go to a batch system, each booked to the
        agent of its own job (the task not yet in its outbox: it goes there once the job
        is submitted), recorded ``LAUNCHED``; and whether the records are committed
        (with those of earlier calls and pulls that were not: submit only then).
        """
        books = self._books
        packets: list[StatusPacket] = []
        with self._own.lock:
            with books.lock:
                packets, self._unlaunched = self._unlaunched, []
                chosen = []
                for launch, instance, task in self._hand_out(
                    self._ready("", limit, batch=True), packets, None
                ):
                    batch = self._batch.of(launch, instance.ref)
                    assert batch is not None
                    chosen.append(BatchTask(launch, task, batch, agent_name(batch.system, task)))
            try:
                self._own.submit(packets)()
            except (StoreError, TimeoutError):
                self._launch_later(packets)
                return chosen, False
        return chosen, True

    def _hand_out(
        self,
        ready: list[tuple[Launch, Instance, str]],
        packets: list[StatusPacket],
        agent: AgentBook | None,
    ) -> list[tuple[Launch, Instance, Task]]:
        """Book ready instances to ``agent`` (to the agent of its batch job when None),
        recording each LAUNCHED, or as its ``[skip]`` rule says (books lock held)."""
        handed: list[tuple[Launch, Instance, Task]] = []
        launched: dict[bytes, Launch] = {}
        for launch, instance, skipped in ready:
            ref = instance.ref
            if skipped:  # recorded as Megatest records it (runs.scm:1804-1806)
                launch.progress.update(ref, State.COMPLETED, Status.SKIP)
                packets.append(self._own.change(ref, State.COMPLETED, Status.SKIP, skipped))
                continue
            task = make_task(
                Action.RUN,
                ref,
                launch.task_key,
                control=launch.control.id,
                testpatt=launch.control.testpatt,
                previous=previous_record(self._store, instance),
            )
            comment = job = ""
            if agent is None:
                batch = self._batch.of(launch, ref)
                assert batch is not None
                book = self._books.agent(agent_name(batch.system, task))
                comment = f"submitting to {batch.system.name}: {batch}"
                job = f"{batch.system.name}:"  # no id yet: an earlier job's is not this one's
            else:
                book = agent
            book.running[ref] = task
            launched[launch.control.id] = launch
            launch.progress.update(ref, State.LAUNCHED, Status.NA)
            packets.append(
                self._own.change(ref, State.LAUNCHED, Status.NA, comment, book.name, job)
            )
            handed.append((launch, instance, task))
        for launch in launched.values():
            last_launch(launch)
        return handed

    def _launch_later(self, packets: Sequence[StatusPacket]) -> None:
        """Keep LAUNCHED packets that were not committed for the next pull, in seq order."""
        with self._books.lock:
            kept = {packet.id: packet for packet in [*packets, *self._unlaunched]}
            self._unlaunched = sorted(kept.values(), key=lambda packet: packet.seq)

    def _ready(
        self, agent: str, free: int, *, batch: bool = False
    ) -> list[tuple[Launch, Instance, str]]:
        """Up to ``free`` ready instances this agent may take (with ``batch``: that go to a
        batch system), best first, each with "" or the comment of its skip (books lock
        held).

        As Megatest's runner: the limits first (``max_concurrent_jobs``, then the
        jobgroup's, which passes over to the next test), then the skip rule, then the
        ``launch-delay`` (a skipped test is no launch: runs.scm:1804-1810).
        """
        if free <= 0:
            return []
        chosen: list[tuple[Launch, Instance, str]] = []
        launching: list[TestRef] = []
        busy = sum(len(a.running) for a in self._books.agents.values())
        groups = JobGroups(self._books)
        now = time.monotonic()
        for launch in self._books.launches:
            if not self._offers(launch, agent, batch):
                continue
            limit = launch.plan.max_jobs
            delay = launch.plan.schedule.launch_delay
            for instance in launch.progress.take_ready():
                if not self._takes(launch, instance, groups, batch):
                    continue
                if len(launching) >= free or (limit is not None and busy >= limit):
                    return chosen
                if delay and now - launch.last_launch < delay:
                    break  # this run launches again once its delay has passed
                skipped = self._skips.why(launch, instance, launching)
                chosen.append((launch, instance, skipped))
                if skipped:
                    continue
                launching.append(instance.ref)
                groups.add(launch, instance)
                busy += 1
                if delay:
                    launch.last_launch = now
                    break
        return chosen

    def _offers(self, launch: Launch, agent: str, batch: bool) -> bool:
        """Whether ``launch`` may hand out instances to ``agent`` (with ``batch``: to a batch
        system) now: its pre-hook is not running, it is not pinned to another agent, and
        (``batch``) some of its instances go to a batch system."""
        pin = launch.control.host
        if launch.held or (pin is not None and (batch or pin != agent)):
            return False
        return not batch or self._batch.any(launch)

    def _takes(self, launch: Launch, instance: Instance, groups: JobGroups, batch: bool) -> bool:
        """Whether an instance ready in ``launch`` may be handed out now: not left to
        another launch, within its jobgroup, and the agents' (a batch system's with
        ``batch``)."""
        if instance.ref in launch.skipped or not groups.allows(launch, instance):
            return False
        if not self._batch.any(launch):
            return not batch
        return (self._batch.of(launch, instance.ref) is not None) is batch


def _unstarted(agent: AgentBook, pull: Pull) -> int:
    """Run tasks sent to the agent that it does not report running yet (in flight)."""
    running = set(pull.running)
    return sum(
        1 for task in agent.outbox.values() if task.action is Action.RUN and task.id not in running
    )
