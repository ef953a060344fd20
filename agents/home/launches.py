"""The launches: a ``run`` planned into test instances, booked, followed until it settles.

A ``run`` (or ``rerunclean``) is planned from the area
(:func:`~mtpkt.agents.area.plan_run`) into a launch whose instances are
recorded ``NOT_STARTED`` before the sender is answered; instances that are
good already, or in another launch's hands, are left alone. After a restart
a started run gets its books back from its records (:meth:`Launcher.resume`).
A ``kill`` withdraws what was not handed out yet (``KILLED``) and asks the
agents for the rest (``KILLREQ`` and a ``kill`` task). Tests that will never
run end as Megatest ends them (:mod:`~mtpkt.agents.area.waiton`: a prerequisite
that ended badly makes its dependents ``NOT_STARTED/PREQ_FAIL``); a launch whose
records have all settled is retired.

Locks as :mod:`~mtpkt.agents.home.books` says: the commit lock first, the
books lock inside it and never while committing.
"""

import logging
from collections.abc import Callable, Iterable

import attrs

from mtpkt.agents.area import Area, AreaError, RunProgress, TestPatt, TestRef, plan_run
from mtpkt.agents.area.disks import disk_roots
from mtpkt.agents.area.unapplied import run_warning
from mtpkt.agents.home.batchchoice import is_batch_agent
from mtpkt.agents.home.books import Books, Launch, leaves_alone, make_task, record, run_rows
from mtpkt.agents.home.expansions import Expansions
from mtpkt.agents.home.hooks import Hooks
from mtpkt.agents.home.own import OwnPackets
from mtpkt.agents.home.reruns import auto_reruns, second_pass
from mtpkt.agents.home.stale import ConfigCheck, check, save, stale_records
from mtpkt.agents.rundirs import remove_test_dir
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.control import Clean, Kill, RerunClean, Run
from mtpkt.pkts.link import Task
from mtpkt.pkts.outcome import ACTIVE, settled
from mtpkt.pkts.status import StatusPacket
from mtpkt.store import Store, StoreError
from mtpkt.store.rows import TestRow

__all__ = ["Launcher"]

_log = logging.getLogger(__name__)


class Launcher:
    """Plans, starts, resumes, kills in and settles launches.

    Args:
        area: the loaded area (each plan reads its config files anew).
        store: the home's store (records read, run directories recorded).
        books: the dispatcher's books.
        own: makes and commits the home's status packets.
    """

    def __init__(self, area: Area, store: Store, books: Books, own: OwnPackets) -> None:
        self.area = area
        self.store = store
        self._books = books
        self._own = own
        self.hooks = Hooks(area)
        """The runs' pre-hook and post-hook (started and closed by the dispatcher)."""
        self._expansions = Expansions(area.home, store, books, own)
        """Deferred tests' items, made when the tests are due."""
        self._warnings: dict[bytes, str] = {}  # by control id, from plan() to start()
        self._checks: dict[bytes, ConfigCheck] = {}  # the same, for the configs' STALE check
        self._post_hooked: set[bytes] = set()
        self.batch_kill: Callable[[str, Task], None] | None = None
        """Takes the kill of an instance in a batch job (agent name, kill task): the job is
        cancelled, and the task sent to its agent only if it cannot be
        (:meth:`~mtpkt.agents.home.batchjobs.BatchJobs.kill`; books lock held)."""

    def plan(self, packet: Run | RerunClean, *, resume: bool = False) -> Launch:
        """:meth:`_plan`; and the run's launcher warning (:mod:`~mtpkt.agents.area.launchers`)
        kept for :meth:`start`, and the launch held for the ``pre-hook`` of a run that has no
        tests yet (:mod:`~mtpkt.agents.home.hooks`).

        Raises:
            AreaError: the run cannot be planned from the area.
        """
        launch = self._plan(packet, resume=resume)
        self._warnings[packet.id] = run_warning(self.area.config, launch.plan, self.area.home)
        if not resume and self.hooks.configured("pre-hook"):
            launch.held = not self._rows(packet.target, packet.runname)
        return launch

    def _plan(self, packet: Run | RerunClean, *, resume: bool = False) -> Launch:
        """The launch of a ``run`` or ``rerunclean``: which instances it runs, which it skips.

        A ``run`` skips tests that completed (unless told to rerun them), a
        ``rerunclean`` every test that did not end badly; a COMPLETED test counts
        as STALE when the run's configs changed (:mod:`~mtpkt.agents.home.stale`).
        Resuming (:meth:`resume`), nothing is skipped here: the records say where each is.

        Raises:
            AreaError: the run cannot be planned from the area.
        """
        plan = plan_run(self.area, packet.target, packet.runname, packet.testpatt)
        progress = RunProgress(plan)
        skipped: set[TestRef] = set()
        launch = Launch(packet, plan, progress, skipped)
        if resume:
            return launch
        stale = bool((checked := check(plan)).changed)
        self._checks[packet.id] = checked
        if isinstance(packet, Run) and packet.rerun_all:
            return launch
        rows = self._rows(packet.target, packet.runname)
        for ref in progress.records:
            state, status = record(rows.get(ref)) or (State.NOT_STARTED, Status.NA)
            if stale and state is State.COMPLETED:
                state = State.STALE  # as start() records it
            if leaves_alone(packet, state, status) and not auto_reruns(launch, ref, state, status):
                progress.update(ref, state, status)
                skipped.add(ref)
        return launch

    def _rows(self, target: str, runname: str) -> dict[TestRef, TestRow]:
        """The run's records, by instance."""
        return run_rows(self.store, target, runname)

    # -- starting -----------------------------------------------------------------------

    def start(self, launch: Launch) -> None:
        """Book a new launch and commit its ``NOT_STARTED`` records (a test without instances
        has its toplevel's). The caller holds the commit lock until it has journaled the
        run ``started``."""
        control = launch.control
        books = self._books
        with self._own.lock:  # no pull hands anything out until the launch is booked
            with books.lock:
                active = books.active_refs()
                for ref in list(launch.progress.records):
                    if ref in active:  # another launch has it in hand: leave it there
                        launch.skipped.add(ref)
                books.hand_over(launch)
            if isinstance(control, RerunClean) or control.preclean:
                # Only of what this launch runs, none in hand; a deferred test's toplevel
                # stands for items not made yet: theirs go when they are.
                progress = launch.progress
                runs = [
                    ref
                    for ref in progress.records
                    if ref not in launch.skipped and not progress.unexpanded(ref.test)
                ]
                self._remove_dirs(launch, runs)
            checked = self._checks.pop(control.id, None)
            rows = self._rows(control.target, control.runname) if checked else {}
            stale = stale_records(self._own, checked, rows, active) if checked else []
            with books.lock:
                books.launches.append(launch)
                packets = [
                    self._own.change(ref, State.NOT_STARTED, Status.NA)
                    for ref in launch.progress.records
                    if ref not in launch.skipped
                ]
            warning = self._warnings.pop(control.id, "")
            if warning and packets:  # the first record of the run says it (tail, tests)
                packets[0] = attrs.evolve(packets[0], comment=warning)
            self._own.commit([*stale, *packets])
            if checked is not None:
                save(checked)  # once the STALE records are in
            self._set_rundirs(launch)
            if warning:
                _log.warning("run %s/%s: %s", control.target, control.runname, warning)
            if launch.held:
                plan = launch.plan
                release = self._release(launch)
                self.hooks.submit("pre-hook", plan.target, plan.runname, plan.env, then=release)
            _log.info(
                "run %s/%s: %d test instance(s) to run, %d already done",
                control.target,
                control.runname,
                len(launch.progress.records) - len(launch.skipped),
                len(launch.skipped),
            )

    def _release(self, launch: Launch) -> Callable[[], None]:
        def release() -> None:
            with self._books.lock:
                launch.held = False

        return release

    def _post_hook(self, launch: Launch) -> None:
        """Run the ``post-hook`` once the launch is as far as Megatest's ``-run`` at its end
        (books lock held)."""
        if launch.control.id in self._post_hooked or not self.hooks.configured("post-hook"):
            return
        progress = launch.progress
        if self.hooks.run_wait():
            due = progress.settled()
        else:
            due = all(
                state is not State.NOT_STARTED
                for ref, (state, _) in progress.records.items()
                if ref not in launch.skipped
            )
        if due:
            self._post_hooked.add(launch.control.id)
            plan = launch.plan
            self.hooks.submit("post-hook", plan.target, plan.runname, plan.env)

    def _remove_dirs(self, launch: Launch, refs: Iterable[TestRef]) -> None:
        """Remove the run directories of the instances a ``rerunclean`` (or ``run --preclean``,
        or Megatest's second pass) is about to run."""
        linktree = launch.plan.linktree or self.area.linktree
        disks = disk_roots(self.area.config, self.area.env, self.area.home)
        for ref in refs:
            try:
                remove_test_dir(linktree, ref.target, ref.runname, ref.test, ref.item, disks=disks)
            except AreaError as exc:
                _log.warning("rerunclean: %s", exc)

    def _set_rundirs(self, launch: Launch, names: Iterable[str] | None = None) -> None:
        """Record each planned test's run directory (``tests.rundir``, as in Megatest), or
        those of tests ``names``."""
        plan = launch.plan
        tests = launch.progress.tests
        chosen = [tests[name] for name in (tests if names is None else names)]
        rundirs = [
            (instance.ref.test, instance.ref.item, str(instance.job.rundir))
            for test in chosen
            for instance in test.instances
        ]
        rundirs += [
            (test.name, "", str(plan.run_root / test.name))
            for test in chosen
            if any(instance.ref.item for instance in test.instances)
        ]
        try:
            self.store.set_rundirs(plan.target, plan.runname, rundirs)
        except StoreError as exc:  # the run goes on; only the column stays empty
            _log.warning(
                "run %s/%s: cannot record run directories: %s", plan.target, plan.runname, exc
            )

    # -- resuming after a restart ---------------------------------------------------------

    def resume(self, packet: Run | RerunClean) -> None:
        """Rebuild the books of a started run from its records.

        Instances in an agent's hands are adopted (their tasks sent again under
        the same ids, which the agent acknowledges without running them twice);
        instances with no record, or being run with no host named, are recorded
        ``NOT_STARTED`` again (a record in a word mtpkt does not know is read as
        :func:`~agents.home.books.record` reads it).

        Raises:
            AreaError: the run cannot be planned from the area any more.
        """
        launch = self.plan(packet, resume=True)
        books = self._books
        with self._own.lock:
            with books.lock:
                # Read under the lock: what the collector commits meanwhile is either in
                # these rows or reaches this launch through observe() once it is booked.
                rows = self._rows(packet.target, packet.runname)
                active = books.active_refs()
                restored = self._expansions.restore(launch, rows)  # items made before
                missing = []
                for ref in launch.progress.records:
                    row = rows.get(ref)
                    known = record(row)
                    if ref in active:
                        launch.skipped.add(ref)
                    elif ref in restored.waiting:
                        continue  # for its items to be made: NOT_STARTED in the launch
                    elif (
                        ref in restored.again
                        or row is None
                        or known is None
                        or (known[0] in ACTIVE and not row.host)
                    ):
                        missing.append(ref)
                    else:
                        launch.progress.update(ref, *known)
                        if known[0] in ACTIVE:
                            self._adopt(launch, ref, known[0], row.host)
                books.launches.append(launch)
                packets = [self._own.change(ref, State.NOT_STARTED, Status.NA) for ref in missing]
            self._own.commit(packets)
        _log.info(
            "run %s/%s picked up again: %d of %d test instance(s) settled",
            packet.target,
            packet.runname,
            sum(settled(*record) for record in launch.progress.records.values()),
            len(launch.progress.records),
        )

    def _adopt(self, launch: Launch, ref: TestRef, state: State, host: str) -> None:
        """Book an instance an earlier home handed to agent ``host`` (books lock held)."""
        agent = self._books.agent(host)
        task = make_task(Action.RUN, ref, launch.control.id, testpatt=launch.control.testpatt)
        agent.running[ref] = task
        agent.outbox[task.id] = task
        if state is State.KILLREQ:
            kill = make_task(Action.KILL, ref, launch.control.id)
            agent.outbox[kill.id] = kill

    # -- killing --------------------------------------------------------------------------

    def kill(self, packet: Kill | Clean, grace: float) -> None:
        """Withdraw the selected instances not handed out yet (``KILLED``), and send the
        agents running the others a ``kill`` task (``KILLREQ``)."""
        books = self._books
        with self._own.lock:
            patt = TestPatt.parse(packet.testpatt)
            packets: list[StatusPacket] = []
            with books.lock:
                for launch in books.launches:
                    if not launch.of(packet.target, packet.runname):
                        continue
                    for ref, (state, _) in list(launch.progress.records.items()):
                        if ref in launch.skipped or not patt.matches(ref.test, ref.item):
                            continue
                        if state is State.NOT_STARTED:
                            launch.progress.update(ref, State.KILLED, Status.KILLED)
                            packets.append(
                                self._own.change(
                                    ref, State.KILLED, Status.KILLED, "killed before it ran"
                                )
                            )
                        elif state in ACTIVE and state is not State.KILLREQ:
                            packets += self._kill_running(launch, ref, packet.id, grace)
            self._own.commit(packets)

    def _kill_running(
        self, launch: Launch, ref: TestRef, control: bytes, grace: float
    ) -> list[StatusPacket]:
        for agent in self._books.agents.values():
            if ref in agent.running:
                task = make_task(Action.KILL, ref, launch.control.id, control=control, grace=grace)
                if self.batch_kill is not None and is_batch_agent(agent.name):
                    self.batch_kill(agent.name, task)
                else:
                    agent.outbox[task.id] = task
                launch.progress.update(ref, State.KILLREQ, Status.NA)
                return [
                    self._own.change(ref, State.KILLREQ, Status.NA, "kill requested", agent.name)
                ]
        return []

    # -- following up ---------------------------------------------------------------------

    def settle(self) -> tuple[list[StatusPacket], list[Launch]]:
        """The records of instances that will never run (a blocked test's
        ``NOT_STARTED/PREQ_FAIL`` or ``NOT_STARTED/PREQ_DISCARDED``, a test without items'
        ``NOT_STARTED/ZERO_ITEMS``: :meth:`~mtpkt.agents.area.RunProgress.resolve`), those
        Megatest's second pass runs again (``NOT_STARTED``, their directories removed:
        :mod:`~mtpkt.agents.home.reruns`), and the launches that settled, now out of the
        books (commit lock held)."""
        packets: list[StatusPacket] = []
        finished: list[Launch] = []
        again: list[tuple[Launch, list[TestRef]]] = []
        books = self._books
        for expanded in self._expansions.take():  # deferred items made since
            launch = expanded.launch
            if isinstance(launch.control, RerunClean) or launch.control.preclean:
                self._remove_dirs(launch, expanded.refs)
            self._set_rundirs(launch, [expanded.name])
            packets += expanded.packets
        with books.lock:
            for launch in books.launches:
                for resolved in launch.progress.resolve():
                    packets += [
                        self._own.change(ref, resolved.state, resolved.status, resolved.reason)
                        for ref in resolved.refs
                        if ref not in launch.skipped
                    ]
                self._post_hook(launch)
                self._expansions.start_due(launch)
                if refs := second_pass(launch, (o for o in books.launches if o is not launch)):
                    again.append((launch, refs))
                    packets += [self._own.change(ref, State.NOT_STARTED, Status.NA) for ref in refs]
                if launch.progress.settled():
                    finished.append(launch)
            for launch in finished:
                books.launches.remove(launch)
                self._post_hooked.discard(launch.control.id)
                self._expansions.forget(launch)
        for launch, refs in again:  # no pull hands them out before: the commit lock is held
            control = launch.control
            _log.info(
                "run %s/%s: second pass: %d test instance(s) run again",
                control.target,
                control.runname,
                len(refs),
            )
            self._remove_dirs(launch, refs)
        return packets, finished
