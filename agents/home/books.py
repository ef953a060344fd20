"""The dispatcher's books: the launches under way, and what each agent has in hand.

A *launch* is what one ``run`` (or ``rerunclean``) packet started: its plan,
where each instance stands, and which instances it leaves alone. An agent's
book holds the tasks sent to it and not yet acknowledged, the run tasks whose
instance has not ended, and the tasks given up while it was lost.

Two locks, always taken in this order:

* the *commit lock* (:attr:`mtpkt.agents.home.own.OwnPackets.lock`), held
  from making the home's status packets until they are queued, so that they
  are committed in ``seq`` order;
* the *books lock* (:attr:`Books.lock`), held while the books are read or
  changed. It is never held while waiting for a commit: the collector calls
  :meth:`Books.observe` from its writer thread after each commit, and a
  writer waiting for this lock could not finish the commit being waited for.
"""

import hashlib
import threading
import time
from collections.abc import Sequence

import attrs

from mtpkt.agents.area import Plan, RunProgress, TestRef
from mtpkt.agents.home.own import ORIGIN
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.control import RerunClean, Run
from mtpkt.pkts.envelope import ID_SIZE
from mtpkt.pkts.link import Task
from mtpkt.pkts.outcome import (
    left_alone_by_run,
    read_state,
    read_status,
    rerun_by_rerunclean,
    settled,
)
from mtpkt.pkts.status import StatusChange, StatusPacket
from mtpkt.store import Store
from mtpkt.store.rows import TestRow

__all__ = [
    "AgentBook",
    "Books",
    "Launch",
    "leaves_alone",
    "make_task",
    "record",
    "run_rows",
    "task_id",
]


@attrs.define
class Launch:
    """The instances one ``run`` packet started, and where each stands."""

    control: Run | RerunClean
    plan: Plan
    progress: RunProgress
    skipped: set[TestRef]
    """Instances this launch does not run: complete and good already, or in the hands of
    another launch (whose progress this one follows)."""
    held: bool = False
    """None of its instances is handed out yet: its ``pre-hook`` runs
    (:mod:`~mtpkt.agents.home.hooks`)."""
    last_launch: float = attrs.Factory(time.monotonic)
    """When it last handed an instance out (``time.monotonic``), for ``[setup]
    launch-delay``; at first when it was made, as Megatest counts from its start
    (common.scm:241, launch.scm:1338-1345)."""
    second_pass: bool = False
    """Megatest's second pass over the run has begun (:mod:`~mtpkt.agents.home.reruns`)."""
    ended_at_last_launch: frozenset[TestRef] | None = None
    """Without ``run-wait``: the records that had ended when its first pass handed out its
    last test, all the second pass may take (:func:`~mtpkt.agents.home.reruns.last_launch`)."""

    @property
    def task_key(self) -> bytes:
        """What its run tasks' ids are derived from (:func:`task_id`): the control packet's
        id, another one in the second pass, whose tasks an agent has not seen yet."""
        if not self.second_pass:
            return self.control.id
        return hashlib.blake2b(self.control.id + b"second pass", digest_size=ID_SIZE).digest()

    def of(self, target: str, runname: str) -> bool:
        """Whether this launch is of run ``runname`` of ``target``."""
        return (self.control.target, self.control.runname) == (target, runname)


@attrs.define
class AgentBook:
    """What the dispatcher knows of one agent."""

    name: str
    outbox: dict[bytes, Task] = attrs.Factory(dict)
    """Tasks sent and not yet acknowledged, by id."""
    running: dict[TestRef, Task] = attrs.Factory(dict)
    """Run tasks handed out whose instance has not reached a final state."""
    given_up: dict[bytes, Task] = attrs.Factory(dict)
    """Run tasks whose tests were marked DEAD while the agent was lost, by id: killed if
    the agent comes back still running them."""


class Books:
    """The launches and the agents' books, under the books lock (see the module's text)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        """The books lock."""
        self.launches: list[Launch] = []
        self.agents: dict[str, AgentBook] = {}

    def agent(self, name: str) -> AgentBook:
        """The book of agent ``name``, new if it had none (lock held)."""
        return self.agents.setdefault(name, AgentBook(name))

    def in_hand(self, target: str, runname: str) -> bool:
        """Whether a launch of the run is under way."""
        with self.lock:
            return any(launch.of(target, runname) for launch in self.launches)

    def active_refs(self, *, besides: Launch | None = None) -> set[TestRef]:
        """Instances a launch runs that have not ended, those of ``besides`` left out (lock
        held)."""
        return {
            ref
            for launch in self.launches
            if launch is not besides
            for ref, record in launch.progress.records.items()
            if ref not in launch.skipped and not settled(*record)
        }

    def hand_over(self, launch: Launch) -> None:
        """The older launches leave to ``launch`` what it runs (lock held).

        An older launch that still had such an instance (ended, say FAIL, and now
        run again) would otherwise see its NOT_STARTED and hand it out once more,
        under the task id its agent has already run: the agent would acknowledge
        the task without running it, and the test would stay LAUNCHED for ever.
        """
        taken = [ref for ref in launch.progress.records if ref not in launch.skipped]
        for older in self.launches:
            if older is launch:  # booked already: a deferred test's items, made late
                continue
            records = older.progress.records
            older.skipped.update(ref for ref in taken if ref in records)

    def update(self, ref: TestRef, state: State, status: Status) -> None:
        """Book a record the home makes of ``ref`` in the launch that runs it (lock held)."""
        launch = self.launch_of(ref)
        if launch is not None:
            launch.progress.update(ref, state, status)

    def state_of(self, ref: TestRef) -> State | None:
        """The state the launch running ``ref`` books for it; None when none runs it (lock
        held)."""
        launch = self.launch_of(ref)
        return None if launch is None else launch.progress.records[ref][0]

    def launch_of(self, ref: TestRef) -> Launch | None:
        """The launch that runs ``ref`` (lock held)."""
        for launch in self.launches:
            if ref in launch.progress.records and ref not in launch.skipped:
                return launch
        return None

    def observe(self, packets: Sequence[StatusPacket]) -> None:
        """Take note of committed status packets (from the collector's writer thread)."""
        with self.lock:
            for packet in packets:
                if not isinstance(packet, StatusChange):
                    continue
                # Every launch that has the instance learns of it, also one that left it to
                # another launch, so its dependents see how it ended. The home's own
                # packets were booked when made: seeing them again changes nothing.
                ref = TestRef(packet.target, packet.runname, packet.test, packet.item)
                for launch in self.launches:
                    if ref in launch.progress.records:
                        launch.progress.update(ref, packet.state, packet.status)
                if settled(packet.state, packet.status):
                    for agent in self.agents.values():
                        agent.running.pop(ref, None)

    def work(self) -> dict[str, tuple[int, int]]:
        """Each agent's running tasks and tasks not yet acknowledged, by name."""
        with self.lock:
            return {name: (len(a.running), len(a.outbox)) for name, a in self.agents.items()}


def task_id(action: Action, ref: TestRef, launch: bytes) -> bytes:
    """The id of the task doing ``action`` to ``ref`` for the launch of control packet ``launch``.

    Derived, not random: a home that restarts sends its predecessor's tasks
    again under the same ids, so an agent that had recorded them does not
    act twice.
    """
    digest = hashlib.blake2b(launch + action.value.encode(), digest_size=ID_SIZE)
    for part in (ref.target, ref.runname, ref.test, ref.item):
        digest.update(part.encode() + b"\0")
    return digest.digest()


def make_task(
    action: Action,
    ref: TestRef,
    launch: bytes,
    *,
    control: bytes | None = None,
    grace: float = 10.0,
    testpatt: str = "%",
    previous: tuple[str, ...] = (),
) -> Task:
    """A task for the launch of control packet ``launch`` (``control`` if another asked);
    ``testpatt`` is the run's, with which the agent reads the test's configs; ``previous``
    the previous run's record, for waivers."""
    return Task(
        id=task_id(action, ref, launch),
        origin=ORIGIN,
        action=action,
        target=ref.target,
        runname=ref.runname,
        test=ref.test,
        item=ref.item,
        control=control or launch,
        grace=grace,
        testpatt=testpatt,
        previous=previous,
    )


def leaves_alone(control: Run | RerunClean, state: State, status: Status) -> bool:
    """Whether a launch leaves an instance recorded so alone: a ``run`` one that completed
    (unless told to rerun it), a ``rerunclean`` one that did not end badly."""
    if isinstance(control, RerunClean):
        return not rerun_by_rerunclean(state, status)
    if control.rerun_all:
        return False
    return left_alone_by_run(state, status, set(control.rerun))


def record(row: TestRow | None) -> tuple[State, Status] | None:
    """A record's state and status, None if missing.

    A word mtpkt does not know (another tool wrote it) is read as every reader
    of records reads it (:func:`pkts.outcome.read_state`, :func:`~pkts.outcome.read_status`):
    an unknown state as INCOMPLETE, an unknown status as CHECK. So the dispatcher's books
    agree with the roll-ups and the live view: such a record ended badly, and is run
    again by a ``run`` or ``rerunclean``.
    """
    if row is None:
        return None
    return read_state(row.state), read_status(row.status)


def run_rows(store: Store, target: str, runname: str) -> dict[TestRef, TestRow]:
    """The records of a run, by instance (none for a run that does not exist).

    Raises:
        StoreError: SQLite failed.
    """
    run_id = store.run_id(target, runname, create=False)
    if run_id is None:
        return {}
    return {
        TestRef(target, runname, row.testname, row.item_path): row for row in store.tests(run_id)
    }
