"""The home's batch jobs: instances whose launcher is a batch system's, submitted and watched.

One job per test instance, Megatest's model (docs/batch.md says why). In a
thread of its own, every :data:`POLL` seconds, the home

1. takes the ready instances that go to a batch system (the same limits,
   ``[jobgroups]``, ``[skip]`` and ``launch-delay`` as for agents:
   :meth:`~mtpkt.agents.home.assign.Assigner.launch_batch`), recorded
   ``LAUNCHED`` first, and submits each as a job running ``mtpkt agent
   --batch`` under the name its task gives (:mod:`~mtpkt.agents.home.batchchoice`);
   once submitted, the test records the job (``slurm:4711``, "queued in slurm
   job 4711") and the agent's book gets the task, which the agent in the job
   pulls. A submission that fails ends the test ``COMPLETED/DEAD`` with the
   system's own error line in its comment (Megatest leaves it LAUNCHED until it
   counts as dead: db.scm:1594-1661), and its dependents follow as for any DEAD;
2. asks each batch system how its jobs stand, and follows up:

   * a kill (``KILLREQ``, :meth:`BatchJobs.kill`) cancels the job at once,
     queued or running; the agent in a running one stops the test's process
     groups on the batch system's SIGTERM (``mtpkt agent --batch``), and the
     test ends ``KILLED`` once the job is over. Should the system refuse the
     cancel, the kill goes to the agent as to any other;
   * a job over while its test is not (cancelled from outside, time limit,
     node failure, preemption, forgotten): what its agent left in its spool is
     sent first (:mod:`~mtpkt.agents.home.leftovers`), then the test ends
     ``COMPLETED/DEAD`` as Megatest ends a test that stopped reporting
     (db.scm:1661), the system's state and reason in the comment; or
     ``KILLED`` if a kill was asked for;
   * a job still there :data:`LINGER` seconds after its test ended is cancelled.

A restarted home (:meth:`BatchJobs.recover`) finds the jobs of the tests an
earlier home left running in the records (``tests.job``), or asks the batch
system by the job's name, and submits again only those with no job: the
agent's ``seen.db`` runs a task once whatever happens.
"""

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area import Area, TestRef
from mtpkt.agents.area.configdata import ConfigError
from mtpkt.agents.area.launchers import maxload
from mtpkt.agents.batch.systems import BatchError, BatchSystem, JobState
from mtpkt.agents.home.assign import Assigner, BatchTask
from mtpkt.agents.home.batchchoice import BatchChoice, batch_system, is_batch_agent
from mtpkt.agents.home.books import Books, run_rows
from mtpkt.agents.home.own import OwnPackets
from mtpkt.agents.homedir import HomeDir, HomeError
from mtpkt.pkts import State, Status
from mtpkt.pkts.link import Task
from mtpkt.pkts.trouble import Trouble
from mtpkt.store import Store, StoreError

__all__ = ["LINGER", "POLL", "BatchJobs", "Job"]

_log = logging.getLogger(__name__)

POLL: Final = 0.5
"""Seconds between looks at the batch systems (and submissions of ready instances)."""
SUBMITTERS: Final = 4
"""Submissions run at once (each a ``sbatch`` …, some tens of milliseconds)."""
AT_ONCE: Final = 64
"""Most instances submitted per look."""
LINGER: Final = 60.0
"""Seconds a job may stay after its test ended (its agent sends the last status) before it
is cancelled."""
LEFTOVERS_WAIT: Final = 30.0
"""Seconds after a job ended that the home waits for its agent to let go of its spool."""

Drain = Callable[[Path], bool]
"""Sends what an agent's state directory's spool holds; whether it is done with."""


@attrs.define(eq=False)
class Job:
    """One submitted instance and what the home knows of its job."""

    ref: TestRef
    agent: str
    system: BatchSystem
    task: Task
    job_id: str
    kill: Task | None = None
    """The kill of the test, once asked for: its job is cancelled."""
    cancelled: bool = False
    ended_at: float | None = None
    """When the job was first seen over."""
    final_at: float | None = None
    """When its test was first seen ended."""

    def __str__(self) -> str:
        return f"{self.system.name} job {self.job_id}"


class BatchJobs:
    """Submits the instances that go to batch systems, and follows their jobs.

    Args:
        area: the loaded area.
        store: the home's store (the records of runs picked up again).
        books: the dispatcher's books.
        own: makes and commits the home's status packets.
        assigner: hands ready instances out.
        choice: which instances go to which batch system.
        homedir: the area's ``.mtpkt`` (the agents' state directories).
    """

    def __init__(
        self,
        area: Area,
        store: Store,
        books: Books,
        own: OwnPackets,
        assigner: Assigner,
        choice: BatchChoice,
        homedir: HomeDir,
    ) -> None:
        self.area = area
        self.store = store
        self._books = books
        self._own = own
        self._assigner = assigner
        self._choice = choice
        self._homedir = homedir
        self._jobs: dict[str, Job] = {}  # by agent name
        self._jobs_lock = threading.Lock()
        self._held: list[BatchTask] = []  # booked, their LAUNCHED not committed yet
        self._kills: dict[str, Task] = {}  # kills of instances not submitted yet, by agent
        self._wake = threading.Event()  # a kill: look now
        self._drain: Drain = lambda state_dir: True
        self._address = ""  # where the agents in the jobs dial the home
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch jobs", daemon=True)
        self._pool = ThreadPoolExecutor(SUBMITTERS, thread_name_prefix="batch submit")
        self._trouble = Trouble("batch jobs", _log)
        self._loaded = False  # the load is above maxload: said once
        try:
            self._maxload = maxload(area.config, area.env, area.home)
        except ConfigError as exc:
            _log.warning("[jobtools] maxload not used: %s", exc)
            self._maxload = None

    @property
    def jobs(self) -> list[Job]:
        """The jobs followed now."""
        with self._jobs_lock:
            return list(self._jobs.values())

    def start(self, drain: Drain, address: str) -> None:
        """Pick up the jobs an earlier home left, then submit and follow in a thread.

        Args:
            drain: sends what a dead agent left in its spool (:mod:`leftovers`).
            address: the home's request address as the nodes of the batch system reach it.
        """
        self._drain = drain
        self._address = address
        try:
            self.recover()
        except (StoreError, TimeoutError) as exc:
            _log.error("the batch jobs of an earlier home not picked up: %s", exc)
        self._thread.start()

    def close(self) -> None:
        """Stop after the look in hand; jobs go on (a next home picks them up)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def kill(self, agent: str, task: Task) -> None:
        """The kill of the instance in agent ``agent``'s job: the job is cancelled at the
        next look, at once (the task is sent to the agent only if it cannot be). Only
        takes this object's own lock: called with the books lock held."""
        with self._jobs_lock:
            job = self._jobs.get(agent)
            if job is None:
                self._kills[agent] = task  # for its job, once submitted
            elif job.kill is None:
                job.kill = task
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except (StoreError, TimeoutError) as exc:
                self._trouble.report(f"batch jobs: {exc}")
            else:
                self._trouble.clear()

    def tick(self) -> None:
        """Submit what is ready, then follow every job once.

        Raises:
            StoreError, TimeoutError: a record could not be committed (tried again next time).
        """
        self._launch()
        self._watch()
        with self._books.lock:
            self._choice.keep_only(self._books.launches)

    # -- submitting ---------------------------------------------------------------------

    def _launch(self) -> None:
        if self._too_loaded():
            return
        chosen, committed = self._assigner.launch_batch(AT_ONCE)
        self._held += chosen
        if not committed or not self._held:
            return
        held, self._held = self._held, []
        for failure in self._pool.map(self._submit, held):
            if failure is not None:
                raise failure

    def _too_loaded(self) -> bool:
        """Megatest's runner waits while the load of the host it launches from is above
        ``[jobtools] maxload`` times its CPUs (runs.scm:948, 1051-1052)."""
        if self._maxload is None:
            return False
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        loaded = load > self._maxload
        if loaded and not self._loaded:
            _log.warning("load %.1f per CPU is above [jobtools] maxload: submitting waits", load)
        self._loaded = loaded
        return loaded

    def _submit(self, handed: BatchTask) -> StoreError | TimeoutError | None:
        """Submit one instance's job and record it (a pool thread); a failed commit."""
        ref, system = handed.ref, handed.batch.system
        try:
            state_dir = self._homedir.agent_dir(handed.agent)
            job_id = system.submit(
                handed.batch.words, handed.agent, state_dir / "job.log", self._command(handed)
            )
        except (BatchError, HomeError) as exc:
            _log.warning("%s: submission failed: %s", ref, exc)
            comment = f"launch failed: {exc}"
            return self._end(handed.agent, ref, State.COMPLETED, Status.DEAD, comment)
        job = Job(ref, handed.agent, system, handed.task, job_id)
        self._follow_job(job)
        _log.info("%s: queued in %s", ref, job)
        try:
            self._record_job(job)
        except (StoreError, TimeoutError) as exc:
            return exc
        return None

    def _command(self, handed: BatchTask) -> list[str]:
        """What the job runs: this mtpkt's agent for the one task, in the area."""
        return [
            sys.executable, "-m", "mtpkt.tools", "agent", "--batch",
            "--area", str(self.area.home), "--name", handed.agent, "--home", self._address,
        ]  # fmt: skip

    def _record_job(self, job: Job) -> None:
        """Record the job with its test, then put the task where its agent pulls it."""
        with self._own.lock:
            with self._books.lock:
                state = self._books.state_of(job.ref)
                packets = []
                if state is not None and state in (State.LAUNCHED, State.KILLREQ):
                    comment = f"queued in {job}"
                    packets.append(
                        self._own.change(
                            job.ref, state, Status.NA, comment, job.agent,
                            job=f"{job.system.name}:{job.job_id}",
                        )
                    )  # fmt: skip
            try:
                self._own.commit(packets)
            finally:  # a record not made costs its job id only: the test runs on
                with self._books.lock:
                    book = self._books.agent(job.agent)
                    if job.ref in book.running:
                        book.outbox[job.task.id] = job.task

    # -- following ----------------------------------------------------------------------

    def _watch(self) -> None:
        by_system: dict[str, list[Job]] = {}
        for job in self.jobs:
            by_system.setdefault(job.system.name, []).append(job)
        for jobs in by_system.values():
            system = jobs[0].system
            try:
                states = system.states([job.job_id for job in jobs])
            except BatchError as exc:
                self._trouble.report(f"cannot ask {system.name} how its jobs stand: {exc}")
                continue
            for job in jobs:
                self._follow(job, states[job.job_id], time.monotonic())

    def _follow(self, job: Job, state: JobState, now: float) -> None:
        with self._books.lock:
            running = job.ref in self._books.agent(job.agent).running
        if not running:  # the test ended
            job.final_at = job.final_at or now
            if state.ended:
                self._forget(job)
            elif job.kill is not None or now - job.final_at > LINGER:
                self._cancel(job)
            return
        if job.kill is not None and not state.ended:
            self._cancel(job)
        elif state.ended:
            self._ended(job, state, now)

    def _ended(self, job: Job, state: JobState, now: float) -> None:
        """A job is over and its test is not: send what its agent left, then end the test
        as its job did."""
        job.ended_at = job.ended_at or now
        if not self._drain(self._homedir.agents_dir / job.agent) and (
            now - job.ended_at < LEFTOVERS_WAIT
        ):
            return  # its agent still holds its spool: next time
        with self._books.lock:
            if job.ref not in self._books.agent(job.agent).running:
                return  # what it left ended the test: forgotten next time
        if job.kill is not None:
            comment = f"killed: {job} cancelled"
            self._end(job.agent, job.ref, State.KILLED, Status.KILLED, comment)
        else:
            comment = f"{job} ended {state.describe()} before the test did"
            _log.warning("%s: %s", job.ref, comment)
            self._end(job.agent, job.ref, State.COMPLETED, Status.DEAD, comment)
        self._forget(job)

    def _follow_job(self, job: Job) -> None:
        with self._jobs_lock:
            job.kill = self._kills.pop(job.agent, None)
            self._jobs[job.agent] = job

    def _cancel(self, job: Job) -> None:
        """Cancel a job once; if the system will not, its agent gets the kill task (if
        there is one) and ends the test itself."""
        if job.cancelled:
            return
        job.cancelled = True
        try:
            job.system.cancel([job.job_id])
        except BatchError as exc:
            _log.warning("%s: cannot cancel %s: %s", job.ref, job, exc)
            if job.kill is not None:
                with self._books.lock:
                    self._books.agent(job.agent).outbox[job.kill.id] = job.kill
            return
        _log.info("%s: %s cancelled", job.ref, job)

    def _forget(self, job: Job) -> None:
        with self._jobs_lock:
            self._jobs.pop(job.agent, None)

    def _end(
        self, agent: str, ref: TestRef, state: State, status: Status, comment: str
    ) -> StoreError | TimeoutError | None:
        """End a test the agent of its job will not report on; a failed commit."""
        with self._own.lock:
            with self._books.lock:
                book = self._books.agent(agent)
                if book.running.pop(ref, None) is None:
                    return None
                book.outbox.clear()
                self._books.update(ref, state, status)
                packet = self._own.change(ref, state, status, comment, agent)
            try:
                self._own.commit([packet])
            except (StoreError, TimeoutError) as exc:
                return exc
        return None

    # -- an earlier home's jobs -----------------------------------------------------------

    def recover(self) -> None:
        """Follow the jobs of the tests an earlier home left in batch agents' hands (their
        books were adopted from the records); submit again those that have none.

        Raises:
            StoreError: the records cannot be read.
        """
        with self._books.lock:
            adopted = [
                (name, ref, task)
                for name, book in self._books.agents.items()
                if is_batch_agent(name)
                for ref, task in book.running.items()
            ]
        rows: dict[tuple[str, str], dict[TestRef, str]] = {}
        again: list[BatchTask] = []
        for name, ref, task in adopted:
            system = batch_system(name)
            if system is None:
                continue
            run = (ref.target, ref.runname)
            if run not in rows:
                found = run_rows(self.store, *run)
                rows[run] = {key: row.job for key, row in found.items()}
            recorded = rows[run].get(ref, "")
            job_id = recorded.partition(":")[2] if recorded.startswith(f"{system.name}:") else ""
            job_id = job_id or self._find(system, name)
            if job_id:
                job = Job(ref, name, system, task, job_id)
                self._follow_job(job)
                if not recorded:
                    self._record_job(job)
                continue
            handed = self._again(name, ref, task)
            if handed is not None:
                again.append(handed)
        _log.info(
            "batch jobs picked up: %d followed, %d to submit again", len(self.jobs), len(again)
        )
        self._held += again

    def _find(self, system: BatchSystem, name: str) -> str:
        try:
            return system.find(name) or ""
        except BatchError as exc:
            _log.warning("cannot look for job %s in %s: %s", name, system.name, exc)
            return ""

    def _again(self, name: str, ref: TestRef, task: Task) -> BatchTask | None:
        """The instance of an adopted batch agent with no job, to submit again."""
        with self._books.lock:
            launch = self._books.launch_of(ref)
            batch = None if launch is None else self._choice.of(launch, ref)
            if launch is None or batch is None:
                return None
            self._books.agent(name).outbox.pop(task.id, None)  # back once the job is
        return BatchTask(launch, task, batch, name)
