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
     ``KILLED`` if a kill was asked for; a job over before its agent took the
     task (it never reached the home) is submitted again, up to
     :data:`SUBMITS` times;
   * a job still there :data:`LINGER` seconds after its test ended is cancelled.

A restarted home (:mod:`~mtpkt.agents.home.batchrecover`) finds the jobs of
the tests an earlier home left running in the records (``tests.job``), or
asks the batch system by the job's name, and submits again only those with
no job: the agent's ``seen.db`` runs a task once whatever happens.

A record the home could not commit (a full disk) is kept and committed again
at the next look, in ``seq`` order; the books already hold it.
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
from mtpkt.agents.batch.systems import BatchError, BatchSystem, BatchTimeout, JobState
from mtpkt.agents.home.assign import Assigner, BatchTask
from mtpkt.agents.home.batchchoice import BatchChoice
from mtpkt.agents.home.books import Books
from mtpkt.agents.home.own import OwnPackets
from mtpkt.agents.homedir import HomeDir, HomeError
from mtpkt.pkts import State, Status
from mtpkt.pkts.link import Task
from mtpkt.pkts.status import StatusPacket
from mtpkt.pkts.trouble import Trouble
from mtpkt.store import Store, StoreError

__all__ = ["LINGER", "POLL", "SUBMITS", "BatchJobs", "Job"]

_log = logging.getLogger(__name__)

POLL: Final = 0.5
"""Seconds between looks at the batch systems (and submissions of ready instances)."""
SUBMITTERS: Final = 4
"""Submissions run at once (each a ``sbatch`` …, some tens of milliseconds)."""
AT_ONCE: Final = 64
"""Most instances submitted per look."""
SUBMITS: Final = 3
"""Jobs submitted for one task at most, when each ends before its agent takes the task."""
LINGER: Final = 60.0
"""Seconds a job may stay after its test ended (its agent sends the last status) before it
is cancelled."""
LEFTOVERS_WAIT: Final = 30.0
"""Seconds after a job ended that the home waits for its agent to let go of its spool."""
_LOOPBACK: Final = ("://127.", "://localhost:", "://[::1]:", "ipc://", "inproc://")

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
    kill_sent: bool = False
    """The kill went to the agent (the system would not cancel)."""
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
        self.books = books
        self.own = own
        self.choice = choice
        self.homedir = homedir
        self._assigner = assigner
        self._jobs: dict[str, Job] = {}  # by agent name
        self._jobs_lock = threading.Lock()  # a leaf: nothing is taken while it is held
        self.held: list[BatchTask] = []
        """Booked and not submitted yet (their LAUNCHED not committed, or to submit again)."""
        self._kills: dict[str, Task] = {}  # kills of instances not submitted yet, by agent
        self._submits: dict[str, int] = {}  # jobs submitted, by agent
        self._unended: list[StatusPacket] = []  # the home's records whose commit failed
        self._drain: Drain = lambda state_dir: True
        self._address = ""  # where the agents in the jobs dial the home
        self._warned_loopback = False
        self.recovery: Callable[[], bool] = lambda: True
        """Picks up an earlier home's jobs; False while some are still to pick up."""
        self._recovered = False
        self._wake = threading.Event()  # a kill: look now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch jobs", daemon=True)
        self._pool = ThreadPoolExecutor(SUBMITTERS, thread_name_prefix="batch submit")
        self._trouble = Trouble("batch jobs", _log)
        self._asking = Trouble("batch jobs: asking", _log)
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

    def job_of(self, agent: str) -> Job | None:
        with self._jobs_lock:
            return self._jobs.get(agent)

    def start(self, drain: Drain, address: str) -> None:
        """Pick up the jobs an earlier home left, then submit and follow in a thread.

        Args:
            drain: sends what a dead agent left in its spool (:mod:`leftovers`).
            address: the home's request address as the nodes of the batch system reach it.
        """
        self._drain = drain
        self._address = address
        self._recovered = self.recovery()
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
            except Exception:  # a bug must not stop every batch job being followed
                _log.exception("batch jobs: the look failed; trying again")
            else:
                self._trouble.clear()

    def tick(self) -> None:
        """Commit what failed to commit, pick up what a restart left, submit what is ready,
        then follow every job once.

        Raises:
            StoreError, TimeoutError: a record could not be committed (tried again next time).
        """
        self._commit_unended()
        if not self._recovered:
            self._recovered = self.recovery()
        self._launch()
        self._watch()
        with self.books.lock:
            self.choice.keep_only(self.books.launches)

    # -- submitting ---------------------------------------------------------------------

    def _launch(self) -> None:
        if self._too_loaded():
            return
        chosen, committed = self._assigner.launch_batch(AT_ONCE)
        self.held += chosen
        if not committed or not self.held:
            return
        held, self.held = self.held, []
        if any(part in self._address for part in _LOOPBACK):
            self._warn_loopback()
        list(self._pool.map(self._submit, held))

    def _warn_loopback(self) -> None:
        if not self._warned_loopback:
            self._warned_loopback = True
            _log.warning(
                "the home listens on %s: batch jobs on other hosts cannot reach it"
                " (start it with --listen tcp://0.0.0.0:PORT)",
                self._address,
            )

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

    def _submit(self, handed: BatchTask) -> None:
        """Submit one instance's job and record it (a pool thread)."""
        ref, system, name = handed.ref, handed.batch.system, handed.agent
        self._submits[name] = self._submits.get(name, 0) + 1
        try:
            state_dir = self.homedir.agent_dir(name)
            try:
                job_id = system.submit(
                    handed.batch.words, name, state_dir / "job.log", self._command(handed)
                )
            except BatchTimeout:  # it may have queued the job all the same
                job_id = system.find(name) or ""
                if not job_id:
                    raise
        except (BatchError, HomeError) as exc:
            self._launch_failed(handed, str(exc))
            return
        except Exception as exc:  # a bug: the test ends saying so, the others go on
            _log.exception("%s: submission failed", ref)
            self._launch_failed(handed, f"{type(exc).__name__}: {exc}")
            return
        job = Job(ref, name, system, handed.task, job_id)
        self.follow(job)
        _log.info("%s: queued in %s", ref, job)
        self.record_job(job)

    def _launch_failed(self, handed: BatchTask, why: str) -> None:
        _log.warning("%s: submission failed: %s", handed.ref, why)
        self.end(handed.agent, handed.ref, State.COMPLETED, Status.DEAD, f"launch failed: {why}")

    def _command(self, handed: BatchTask) -> list[str]:
        """What the job runs: this mtpkt's agent for the one task, in the area."""
        return [
            sys.executable, "-m", "mtpkt.tools", "agent", "--batch",
            "--area", str(self.area.home), "--name", handed.agent, "--home", self._address,
        ]  # fmt: skip

    def record_job(self, job: Job) -> None:
        """Record the job with its test, then put the task where its agent pulls it."""
        with self.own.lock:
            with self.books.lock:
                state = self.books.state_of(job.ref)
                packets: list[StatusPacket] = []
                if state is not None and state in (State.LAUNCHED, State.KILLREQ):
                    comment = f"queued in {job}"
                    packets.append(
                        self.own.change(
                            job.ref, state, Status.NA, comment, job.agent,
                            job=f"{job.system.name}:{job.job_id}",
                        )
                    )  # fmt: skip
            self._commit(packets)
            with self.books.lock:
                book = self.books.agent(job.agent)
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
                self._asking.report(f"cannot ask {system.name} how its jobs stand: {exc}")
                continue
            self._asking.clear()
            for job in jobs:
                self._follow(job, states[job.job_id], time.monotonic())

    def _follow(self, job: Job, state: JobState, now: float) -> None:
        with self.books.lock:
            running = job.ref in self.books.agent(job.agent).running
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
        as its job did (or submit it again, if its agent never took the task)."""
        job.ended_at = job.ended_at or now
        if not self._drain(self.homedir.agents_dir / job.agent) and (
            now - job.ended_at < LEFTOVERS_WAIT
        ):
            return  # its agent still holds its spool: next time
        with self.books.lock:
            book = self.books.agent(job.agent)
            if job.ref not in book.running:
                return  # what it left ended the test: forgotten next time
            # Taken: acknowledged, or reported on (an agent reports RUNNING before its next
            # pull acknowledges the task, and may die in between).
            booked = self.books.state_of(job.ref)
            taken = job.task.id not in book.outbox or booked not in (State.LAUNCHED, None)
            launch = self.books.launch_of(job.ref)
            batch = None if launch is None else self.choice.of(launch, job.ref)
        self._forget(job)
        if job.kill is not None:
            self.end(job.agent, job.ref, State.KILLED, Status.KILLED, f"killed: {job} cancelled")
            return
        log = self.homedir.agents_dir / job.agent / "job.log"
        if taken or launch is None or batch is None or self._submits.get(job.agent, 0) >= SUBMITS:
            what = "before the test did" if taken else f"before its agent took the test (see {log})"
            comment = f"{job} ended {state.describe()} {what}"
            _log.warning("%s: %s", job.ref, comment)
            self.end(job.agent, job.ref, State.COMPLETED, Status.DEAD, comment)
            return
        _log.warning("%s: %s ended %s before its agent took the test: submitting it again",
                     job.ref, job, state.describe())  # fmt: skip
        self.held.append(BatchTask(launch, job.task, batch, job.agent))

    def _cancel(self, job: Job) -> None:
        """Cancel a job (tried again at the next look if the system refuses); a kill the
        system will not carry out goes to the job's agent."""
        if job.cancelled:
            return
        try:
            job.system.cancel([job.job_id])
        except BatchError as exc:
            self._asking.report(f"cannot cancel {job}: {exc}")
            if job.kill is not None and not job.kill_sent:
                job.kill_sent = True
                with self.books.lock:
                    self.books.agent(job.agent).outbox[job.kill.id] = job.kill
            return
        job.cancelled = True
        _log.info("%s: %s cancelled", job.ref, job)

    def follow(self, job: Job) -> None:
        """Follow a job (a kill asked for before it was submitted applies to it)."""
        with self._jobs_lock:
            job.kill = job.kill or self._kills.pop(job.agent, None)
            self._jobs[job.agent] = job

    def _forget(self, job: Job) -> None:
        with self._jobs_lock:
            self._jobs.pop(job.agent, None)

    # -- the home's records ---------------------------------------------------------------

    def end(self, agent: str, ref: TestRef, state: State, status: Status, comment: str) -> None:
        """End a test the agent of its job will not report on (books first; a record that
        cannot be committed now is committed at a later look)."""
        with self.own.lock:
            with self.books.lock:
                book = self.books.agent(agent)
                if book.running.pop(ref, None) is None:
                    return
                book.outbox.clear()
                self.books.update(ref, state, status)
                packet = self.own.change(ref, state, status, comment, agent)
            self._commit([packet])

    def _commit(self, packets: list[StatusPacket]) -> None:
        """Commit the home's records (commit lock held); keep those that fail for later."""
        if not packets:
            return
        try:
            self.own.commit(packets)
        except (StoreError, TimeoutError) as exc:
            _log.warning("batch jobs: %d record(s) to commit again: %s", len(packets), exc)
            self._unended += packets

    def _commit_unended(self) -> None:
        with self.own.lock:
            if self._unended:
                packets = sorted(self._unended, key=lambda packet: packet.seq)
                self.own.commit(packets)
                self._unended = []
