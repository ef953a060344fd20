"""The home's dispatcher: turns control packets into work for the host agents.

A ``run`` is planned from the area (:func:`agents.area.plan_run`) into a
*launch*: its test instances, recorded ``NOT_STARTED`` before the sender is
answered. Agents pull: each :class:`pkts.link.Pull` with free slots gets the
ready instances (prerequisites satisfied, highest priority first, within the
area's ``max_concurrent_jobs`` and the launch's ``--host`` pin) as ``run``
:class:`pkts.link.Task` packets, recorded ``LAUNCHED`` first. A task is sent
with every reply until the agent acknowledges it.

What the agents report comes back through the collector (:meth:`observe`);
a prerequisite that ends badly makes its dependents ``COMPLETED/PREQ_FAIL``
without running, as Megatest does.

A ``kill`` marks running instances ``KILLREQ`` and sends their agents a
``kill`` task; instances not handed out yet are withdrawn as ``KILLED``.

The home's own status packets carry origin ``home`` and are committed
through the collector like an agent's (``submit``). Making and queueing
them happens under a commit lock, so they are committed in ``seq`` order;
the dispatcher's books are under another lock that is never held while
committing, because the collector calls :meth:`observe` from its writer
thread.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

from mtpkt.agents.area import (
    Area,
    AreaError,
    Instance,
    Plan,
    RunProgress,
    TestPatt,
    TestRef,
    plan_run,
)
from mtpkt.agents.home.awake import Awake
from mtpkt.agents.home.chores import Change, Chores
from mtpkt.agents.rundirs import remove_test_dir
from mtpkt.bus.sender import Trouble
from mtpkt.pkts import AckOutcome, Action, State, Status
from mtpkt.pkts.control import Archive, Clean, Control, Kill, RerunClean, Run
from mtpkt.pkts.envelope import ID_SIZE
from mtpkt.pkts.link import Pull, Task
from mtpkt.pkts.liveness import dead
from mtpkt.pkts.outcome import ACTIVE, FINAL, left_alone_by_run, rerun_by_rerunclean
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket
from mtpkt.store import Store, StoreError
from mtpkt.store.rows import TestRow

__all__ = ["ControlError", "Dispatcher", "ORIGIN"]

_log = logging.getLogger(__name__)

ORIGIN: Final = "home"
"""Origin of the status packets and tasks the home makes."""

Submit = Callable[[Sequence[StatusPacket]], Callable[[], None]]
"""Queues status packets for commit behind those queued before; the function it returns
waits until they are committed (:meth:`agents.home.collector.Collector.submit`)."""

CLEAN_GRACE: Final = 10.0
"""Seconds between SIGTERM and SIGKILL for running tests a ``clean`` stops."""
ACK_REASON: Final = 2000
"""Most characters of a chore's outcome in its ``ack`` packet (the journal keeps all)."""
AGENT_GRACE: Final = 60.0
"""Seconds an agent may stay lost before its unfinished tests become ``COMPLETED/DEAD``."""
LIVENESS_CHECK: Final = 1.0
"""Seconds between looks at the agent registry for lost agents."""
WORK_EVERY: Final = 1.0
"""Least seconds between two writes of the agents' books to ``main.db`` (``mtpkt agents``)."""

# Where a journaled control packet stands (the journal's ``state`` column).
ACCEPTED: Final = "accepted"
"""Journaled; its effects may not all be committed yet."""
STARTED: Final = "started"
"""A run whose records are committed: after a restart, its books are rebuilt from them."""
DONE: Final = "done"
"""Carried out (a run: every instance settled)."""
FAILED: Final = "failed"
"""Could not be carried out after a restart (the reason says why)."""


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


class ControlError(Exception):
    """A control packet the home refuses; the message is one line for its sender."""


@attrs.define
class _Launch:
    """The instances one ``run`` packet started, and where each stands."""

    control: Run | RerunClean
    plan: Plan
    progress: RunProgress
    skipped: set[TestRef]
    """Instances this launch does not run: complete and good already, or in the hands of
    another launch (whose progress this one follows)."""


@attrs.define
class _Agent:
    """What the dispatcher knows of one agent."""

    name: str
    outbox: dict[bytes, Task] = attrs.Factory(dict)
    """Tasks sent and not yet acknowledged, by id."""
    running: dict[TestRef, Task] = attrs.Factory(dict)
    """Run tasks handed out whose instance has not reached a final state."""
    given_up: dict[bytes, Task] = attrs.Factory(dict)
    """Run tasks whose tests were marked DEAD while the agent was lost, by id: killed if
    the agent comes back still running them."""


class Dispatcher:
    """Plans runs, hands work to agents that pull, and keeps the launches' books.

    Args:
        area: the loaded area (plans are made from its config files).
        store: the home's store (the dispatcher reads it and journals control packets).
        commit: commits and publishes the home's own status packets (the collector's).
        agent_grace: seconds an agent may be lost (no heartbeat for twice its
            interval) before its unfinished tests become ``COMPLETED/DEAD``.
    """

    def __init__(
        self, area: Area, store: Store, submit: Submit, *, agent_grace: float = AGENT_GRACE
    ) -> None:
        self.area = area
        self.store = store
        self.agent_grace = agent_grace
        self._submit = submit
        self._next_liveness = 0.0
        self._next_work = 0.0
        self._written: dict[str, tuple[int, int]] = {}  # agent → (running, pending) recorded
        self._awake = Awake(LIVENESS_CHECK, "the dispatcher's check for lost agents")
        self._lock = threading.RLock()
        self._commit_lock = threading.RLock()
        self._launches: list[_Launch] = []
        self._agents: dict[str, _Agent] = {}
        self._seq = store.origin_seq(ORIGIN)
        self._unlaunched: list[StatusPacket] = []  # LAUNCHED packets whose commit failed
        self._work_trouble = Trouble("dispatcher", _log)
        self.chores = Chores(area, store, report=self._report, finish=self._finish)

    def start(self) -> None:
        """Record the grace for lost agents (for ``mtpkt agents``), and start the thread that
        cleans and archives."""
        try:
            self.store.set_agent_grace(self.agent_grace)
        except StoreError as exc:  # only what `mtpkt agents` shows is affected
            _log.warning("cannot record the agent grace: %s", exc)
        self.chores.start()

    def close(self) -> None:
        """Stop the chores after the one in hand."""
        self.chores.close()

    # -- control packets (request workers) ----------------------------------------------

    def control(self, packet: Control) -> None:
        """Check, journal and carry out a control packet from ``mtpkt send``.

        Returns once the packet is journaled and its first effects (the
        ``NOT_STARTED`` records of a run, the ``KILLED`` records of withdrawn
        tests) are committed.

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
        if isinstance(packet, Kill) and not self._in_hand(packet.target, packet.runname):
            # Nothing of the run is running or waiting: done as soon as journaled.
            reason = "nothing of the run was running or waiting"
            self.store.journal_add(packet, received=time.time(), state=DONE, reason=reason)
            return
        new = self.store.journal_add(packet, received=time.time(), state=ACCEPTED)
        if not new:
            return  # a repeat of a packet already carried out (mtpkt send retried)
        self._carry_out(packet, launch)

    def _check_run(self, packet: Kill | RerunClean | Clean | Archive) -> None:
        """Refuse a packet about a run that does not exist, or that would find nothing to do.

        Raises:
            ControlError: naming the run, or the selection.
        """
        if self.store.run_id(packet.target, packet.runname, create=False) is None:
            raise ControlError(
                f"there is no run {packet.runname} of target {packet.target}:"
                f" nothing to {packet.kind}"
            )
        if not isinstance(packet, Clean | Archive):
            return
        rows = self.chores.selected(packet)
        if not rows:
            raise ControlError(
                f"no test of run {packet.target} {packet.runname} matches {packet.testpatt!r}"
            )
        if isinstance(packet, Archive) and packet.restore:
            if not any(self.chores.has_archive(packet, row) for row in rows):
                raise ControlError("none of the selected tests has an archive to restore")

    def _in_hand(self, target: str, runname: str) -> bool:
        """Whether a launch of the run is under way."""
        with self._lock:
            return any(
                (launch.control.target, launch.control.runname) == (target, runname)
                for launch in self._launches
            )

    def _carry_out(self, packet: Control, launch: _Launch | None) -> None:
        if launch is not None:
            self._start(launch)
        elif isinstance(packet, Kill):
            self._kill(packet, packet.grace)
            self.store.journal_set_state(packet.id, DONE)
        elif isinstance(packet, Clean):
            self._kill(packet, CLEAN_GRACE)
            self.chores.submit(packet)
        elif isinstance(packet, Archive):
            self.chores.submit(packet)

    def _remove_dirs(self, launch: _Launch) -> None:
        """Remove the run directories of the instances a ``rerunclean`` (or ``run --preclean``)
        is about to run."""
        linktree = self.area.linktree
        for ref in launch.progress.records:
            if ref in launch.skipped:
                continue
            try:
                remove_test_dir(linktree, ref.target, ref.runname, ref.test, ref.item)
            except AreaError as exc:
                _log.warning("rerunclean: %s", exc)

    def recover(self) -> None:
        """Carry on with the journaled control packets an earlier home left unfinished.

        A run whose records were committed (``started``) gets its books back
        from them: instances in an agent's hands are adopted (their tasks sent
        again under the same ids, which the agent acknowledges without running
        them twice), the others wait or are done. A packet journaled but not
        yet carried out is carried out now. Called once, before agents are served.

        Raises:
            StoreError: the journal or the records cannot be read or written.
        """
        for row in self.store.journal():
            if row.state not in (ACCEPTED, STARTED):
                continue
            packet = row.packet
            try:
                if isinstance(packet, Run | RerunClean) and row.state == STARTED:
                    self._resume(packet)
                else:
                    launch = self._plan(packet) if isinstance(packet, Run | RerunClean) else None
                    self._carry_out(packet, launch)
            except ControlError as exc:
                _log.error("%s %s/%s not picked up again: %s", *_what(packet), exc)
                self.store.journal_set_state(packet.id, FAILED, str(exc))

    def _plan(self, packet: Run | RerunClean, *, resume: bool = False) -> _Launch:
        """The launch of a ``run`` or ``rerunclean``: which instances it runs, which it skips.

        A ``run`` skips tests that completed with a good status (unless told
        to rerun them), a ``rerunclean`` every test that did not end badly.
        Resuming (:meth:`recover`), nothing is skipped here: the records say where each is.
        """
        try:
            plan = plan_run(self.area, packet.target, packet.runname, packet.testpatt)
        except AreaError as exc:
            raise ControlError(str(exc)) from None
        progress = RunProgress(plan)
        skipped: set[TestRef] = set()
        if resume or (isinstance(packet, Run) and packet.rerun_all):
            return _Launch(packet, plan, progress, skipped)
        rows = self._rows(packet.target, packet.runname)
        rerun = set(packet.rerun) if isinstance(packet, Run) else set()
        for ref in progress.records:
            state, status = _record(rows.get(ref)) or (State.NOT_STARTED, Status.NA)
            if isinstance(packet, RerunClean):
                skip = not rerun_by_rerunclean(state, status)
            else:
                skip = left_alone_by_run(state, status, rerun)
            if skip:
                progress.update(ref, state, status)
                skipped.add(ref)
        return _Launch(packet, plan, progress, skipped)

    def _rows(self, target: str, runname: str) -> dict[TestRef, TestRow]:
        """The run's records, by instance."""
        run_id = self.store.run_id(target, runname, create=False)
        if run_id is None:
            return {}
        return {
            TestRef(target, runname, row.testname, row.item_path): row
            for row in self.store.tests(run_id)
        }

    def _resume(self, packet: Run | RerunClean) -> None:
        """Rebuild the books of a started run from its records (see :meth:`recover`)."""
        launch = self._plan(packet, resume=True)
        with self._commit_lock:
            with self._lock:
                # Read under the lock: what the collector commits meanwhile is either in
                # these rows or reaches this launch through observe() once it is booked.
                rows = self._rows(packet.target, packet.runname)
                active = self._active_refs()
                missing = []
                for ref in launch.progress.records:
                    row = rows.get(ref)
                    record = _record(row)
                    if ref in active:
                        launch.skipped.add(ref)
                    elif row is None or record is None or (record[0] in ACTIVE and not row.host):
                        missing.append(ref)
                    else:
                        launch.progress.update(ref, *record)
                        if record[0] in ACTIVE:
                            self._adopt(launch, ref, record[0], row.host)
                self._launches.append(launch)
                packets = [self._change(ref, State.NOT_STARTED, Status.NA) for ref in missing]
            self._commit(packets)
        _log.info(
            "run %s/%s picked up again: %d of %d test instance(s) settled",
            packet.target,
            packet.runname,
            sum(state in FINAL for state, _ in launch.progress.records.values()),
            len(launch.progress.records),
        )

    def _adopt(self, launch: _Launch, ref: TestRef, state: State, host: str) -> None:
        """Book an instance an earlier home handed to agent ``host`` (lock held)."""
        agent = self._agents.setdefault(host, _Agent(host))
        task = self._task(Action.RUN, ref, launch.control.id)
        agent.running[ref] = task
        agent.outbox[task.id] = task
        if state is State.KILLREQ:
            kill = self._task(Action.KILL, ref, launch.control.id)
            agent.outbox[kill.id] = kill

    def _start(self, launch: _Launch) -> None:
        control = launch.control
        with self._commit_lock:  # no pull hands anything out until the launch is booked
            with self._lock:
                active = self._active_refs()
                for ref in list(launch.progress.records):
                    if ref in active:  # another launch has it in hand: leave it there
                        launch.skipped.add(ref)
                self._hand_over(launch)
            if isinstance(control, RerunClean) or control.preclean:
                self._remove_dirs(launch)  # only of what this launch runs, none in hand
            with self._lock:
                self._launches.append(launch)
                packets = [
                    self._change(ref, State.NOT_STARTED, Status.NA)
                    for ref in launch.progress.records
                    if ref not in launch.skipped
                ]
                for test in launch.plan.tests.values():
                    if not test.instances:
                        ref = launch.plan.toplevel(test.name)
                        packets.append(
                            self._change(ref, State.COMPLETED, Status.SKIP, test.comment)
                        )
            self._commit(packets)
            self._set_rundirs(launch)
            self.store.journal_set_state(launch.control.id, STARTED)
            _log.info(
                "run %s/%s: %d test instance(s) to run, %d already done",
                launch.control.target,
                launch.control.runname,
                len(launch.progress.records) - len(launch.skipped),
                len(launch.skipped),
            )
            self.tick()

    def _hand_over(self, launch: _Launch) -> None:
        """The older launches leave to ``launch`` what it runs (lock held).

        An older launch that still had such an instance (ended, say FAIL, and now
        run again) would otherwise see its NOT_STARTED and hand it out once more,
        under the task id its agent has already run: the agent would acknowledge
        the task without running it, and the test would stay LAUNCHED for ever.
        """
        taken = [ref for ref in launch.progress.records if ref not in launch.skipped]
        for older in self._launches:
            records = older.progress.records
            older.skipped.update(ref for ref in taken if ref in records)

    def _set_rundirs(self, launch: _Launch) -> None:
        """Record each planned test's run directory (``tests.rundir``, as in Megatest)."""
        plan = launch.plan
        rundirs = [
            (instance.ref.test, instance.ref.item, str(instance.job.rundir))
            for test in plan.tests.values()
            for instance in test.instances
        ]
        rundirs += [
            (name, "", str(plan.run_root / name))
            for name, test in plan.tests.items()
            if any(instance.ref.item for instance in test.instances)
        ]
        try:
            self.store.set_rundirs(plan.target, plan.runname, rundirs)
        except StoreError as exc:  # the run goes on; only the column stays empty
            _log.warning(
                "run %s/%s: cannot record run directories: %s", plan.target, plan.runname, exc
            )

    def _active_refs(self) -> set[TestRef]:
        return {
            ref
            for launch in self._launches
            for ref, (state, _) in launch.progress.records.items()
            if ref not in launch.skipped and state not in FINAL
        }

    def _kill(self, packet: Kill | Clean, grace: float) -> None:
        with self._commit_lock:
            patt = TestPatt.parse(packet.testpatt)
            packets: list[StatusPacket] = []
            with self._lock:
                for launch in self._launches:
                    if (launch.control.target, launch.control.runname) != (
                        packet.target,
                        packet.runname,
                    ):
                        continue
                    for ref, (state, _) in list(launch.progress.records.items()):
                        if ref in launch.skipped or not patt.matches(ref.test, ref.item):
                            continue
                        if state is State.NOT_STARTED:
                            launch.progress.update(ref, State.KILLED, Status.ABORT)
                            packets.append(
                                self._change(
                                    ref, State.KILLED, Status.ABORT, "killed before it ran"
                                )
                            )
                        elif state in ACTIVE and state is not State.KILLREQ:
                            packets += self._kill_running(launch, ref, packet.id, grace)
            self._commit(packets)
            self.tick()

    def _kill_running(
        self, launch: _Launch, ref: TestRef, control: bytes, grace: float
    ) -> list[StatusPacket]:
        for agent in self._agents.values():
            if ref in agent.running:
                task = self._task(Action.KILL, ref, launch.control.id, control=control, grace=grace)
                agent.outbox[task.id] = task
                launch.progress.update(ref, State.KILLREQ, Status.NA)
                return [self._change(ref, State.KILLREQ, Status.NA, "kill requested", agent.name)]
        return []

    # -- agents (request workers) -------------------------------------------------------

    def pull(self, pull: Pull) -> list[Task]:
        """An agent's pull: note its acknowledgements, hand it ready work, return its tasks.

        Raises:
            StoreError, TimeoutError: the LAUNCHED records of the tasks could not be
                committed; the agent hears of them only once they are (they are
                committed with the next pull).
        """
        with self._commit_lock:
            with self._lock:
                packets, self._unlaunched = self._unlaunched, []
                agent = self._agents.setdefault(pull.origin, _Agent(pull.origin))
                for acked in pull.acks:
                    agent.outbox.pop(acked, None)
                self._kill_given_up(agent, pull)
                free = 0 if pull.draining else pull.free - self._unstarted(agent, pull)
                for launch, instance in self._ready(agent.name, free):
                    ref = instance.ref
                    task = self._task(Action.RUN, ref, launch.control.id)
                    agent.outbox[task.id] = task
                    agent.running[ref] = task
                    launch.progress.update(ref, State.LAUNCHED, Status.NA)
                    packets.append(self._change(ref, State.LAUNCHED, Status.NA, host=agent.name))
                tasks = list(agent.outbox.values())
            try:
                committed = self._submit(packets)
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
        with self._lock:
            kept = {packet.id: packet for packet in [*packets, *self._unlaunched]}
            self._unlaunched = sorted(kept.values(), key=lambda packet: packet.seq)

    def _kill_given_up(self, agent: _Agent, pull: Pull) -> None:
        """Kill what a returning agent still runs of the tests marked DEAD in its absence."""
        if not agent.given_up:
            return
        running = set(pull.running)
        for task in agent.given_up.values():
            if task.id in running:
                ref = TestRef(task.target, task.runname, task.test, task.item)
                _log.warning("agent %s is back and still runs %s: killing it", agent.name, ref)
                kill = self._task(Action.KILL, ref, task.id, control=task.control)
                agent.outbox[kill.id] = kill
        agent.given_up.clear()

    @staticmethod
    def _unstarted(agent: _Agent, pull: Pull) -> int:
        """Run tasks sent to the agent that it does not report running yet (in flight)."""
        running = set(pull.running)
        return sum(
            1
            for task in agent.outbox.values()
            if task.action is Action.RUN and task.id not in running
        )

    def _ready(self, agent: str, free: int) -> Iterable[tuple[_Launch, Instance]]:
        """Up to ``free`` ready instances this agent may take, best first."""
        if free <= 0:
            return []
        chosen: list[tuple[_Launch, Instance]] = []
        busy = sum(len(a.running) for a in self._agents.values())
        for launch in self._launches:
            pin = launch.control.host
            if pin is not None and pin != agent:
                continue
            limit = launch.plan.max_jobs
            for instance in launch.progress.take_ready():
                if instance.ref in launch.skipped:
                    continue
                if len(chosen) >= free or (limit is not None and busy >= limit):
                    return chosen
                chosen.append((launch, instance))
                busy += 1
        return chosen

    # -- what agents report (collector's writer thread) ---------------------------------

    def observe(self, packets: Sequence[StatusPacket]) -> None:
        """Take note of committed status packets (called by the collector after each commit)."""
        with self._lock:
            for packet in packets:
                if not isinstance(packet, StatusChange):
                    continue
                # Every launch that has the instance learns of it, also one that left it to
                # another launch, so its dependents see how it ended. The home's own
                # packets were booked when made: seeing them again changes nothing.
                ref = TestRef(packet.target, packet.runname, packet.test, packet.item)
                for launch in self._launches:
                    if ref in launch.progress.records:
                        launch.progress.update(ref, packet.state, packet.status)
                if packet.state in FINAL:
                    for agent in self._agents.values():
                        agent.running.pop(ref, None)

    def tick(self) -> None:
        """Follow up on what changed: mark the tests of long-lost agents DEAD, block
        dependents of failed tests, retire settled launches."""
        with self._commit_lock:
            packets = self._check_agents()
            finished: list[_Launch] = []
            with self._lock:
                for launch in self._launches:
                    for blocked in launch.progress.blocked():
                        for instance in launch.plan.tests[blocked.test].instances:
                            if instance.ref in launch.skipped:
                                continue
                            packets.append(
                                self._change(
                                    instance.ref, State.COMPLETED, Status.PREQ_FAIL, blocked.reason
                                )
                            )
                    if launch.progress.settled():
                        finished.append(launch)
                for launch in finished:
                    self._launches.remove(launch)
            self._commit(packets)
            for launch in finished:
                self.store.journal_set_state(launch.control.id, DONE)
                _log.info("run %s/%s settled", launch.control.target, launch.control.runname)
            self._record_work()

    def _record_work(self) -> None:
        """Write each agent's running and unacknowledged tasks to ``main.db``, where they
        changed, at most every :data:`WORK_EVERY` seconds (for ``mtpkt agents``)."""
        now = time.time()
        if now < self._next_work:
            return
        self._next_work = now + WORK_EVERY
        with self._lock:
            figures = {name: (len(a.running), len(a.outbox)) for name, a in self._agents.items()}
        changed = {name: f for name, f in figures.items() if self._written.get(name) != f}
        if not changed:
            return
        try:
            self.store.record_work(changed, now=now)
        except StoreError as exc:  # only what `mtpkt agents` shows is late; try again next time
            self._work_trouble.report(f"cannot record the agents' work: {exc}")
            return
        self._work_trouble.clear()
        self._written.update(changed)

    def _check_agents(self) -> list[StatusPacket]:
        """``COMPLETED/DEAD`` for the unfinished tests of agents lost beyond the grace period."""
        now = time.time()
        if now < self._next_liveness:
            return []
        self._next_liveness = now + LIVENESS_CHECK
        counts_from = self._awake.since()
        packets: list[StatusPacket] = []
        rows = self.store.agents()
        with self._lock:
            for row in rows:
                agent = self._agents.get(row.name)
                if agent is None or not agent.running or row.state == "online":
                    continue
                # A beat from before this home started (or woke from a stall) counts as
                # made then.
                if not dead(now - max(row.last_beat, counts_from), row.interval, self.agent_grace):
                    continue
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.last_beat))
                comment = f"agent {row.name} lost: no heartbeat since {since}"
                _log.warning("%s: %d unfinished test(s) marked DEAD", comment, len(agent.running))
                for ref, task in agent.running.items():
                    for launch in self._launches:
                        if ref in launch.progress.records and ref not in launch.skipped:
                            launch.progress.update(ref, State.COMPLETED, Status.DEAD)
                    packets.append(
                        self._change(ref, State.COMPLETED, Status.DEAD, comment, row.name)
                    )
                    agent.given_up[task.id] = task
                agent.running.clear()
                agent.outbox = {
                    key: task for key, task in agent.outbox.items() if task.action is Action.KILL
                }
        return packets

    # -- packets the home makes ---------------------------------------------------------

    def _commit(self, packets: Sequence[StatusPacket]) -> None:
        """Commit packets; returns once they are committed."""
        self._submit(packets)()

    def _report(self, changes: Sequence[Change]) -> None:
        """Commit record changes the chores made (their books follow through :meth:`observe`)."""
        with self._commit_lock:
            with self._lock:
                packets = [
                    self._change(ref, state, status, comment)
                    for ref, state, status, comment in changes
                ]
            self._commit(packets)

    def _finish(self, control: bytes, reason: str) -> None:
        """A chore is done: journal its outcome, and commit its ``ack`` for the stream."""
        with self._commit_lock:
            with self._lock:
                self._seq += 1
                ack = Ack(
                    origin=ORIGIN,
                    seq=self._seq,
                    ref=control,
                    outcome=AckOutcome.DONE,
                    reason=reason[:ACK_REASON],
                )
            self._commit([ack])
        self.store.journal_set_state(control, DONE, reason)
        _log.info("%s: %s", control.hex(), reason[:ACK_REASON])

    def _change(
        self, ref: TestRef, state: State, status: Status, comment: str = "", host: str = ""
    ) -> StatusChange:
        self._seq += 1
        return StatusChange(
            origin=ORIGIN,
            seq=self._seq,
            target=ref.target,
            runname=ref.runname,
            test=ref.test,
            item=ref.item,
            state=state,
            status=status,
            comment=comment,
            host=host,
        )

    @staticmethod
    def _task(
        action: Action,
        ref: TestRef,
        launch: bytes,
        *,
        control: bytes | None = None,
        grace: float = 10.0,
    ) -> Task:
        """A task for the launch of control packet ``launch`` (``control`` if another asked)."""
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
        )


def _record(row: TestRow | None) -> tuple[State, Status] | None:
    """A record's state and status; None if missing or not readable."""
    if row is None:
        return None
    try:
        return State(row.state), Status(row.status)
    except ValueError:
        return None


def _what(packet: Control) -> tuple[str, str, str]:
    return packet.kind, packet.target, packet.runname
