"""A restarted home picks up the batch jobs of the tests an earlier home left running.

The earlier home's books come back from the records
(:meth:`~mtpkt.agents.home.launches.Launcher.resume`): each test in a batch
agent's hands is booked to that agent again, its task in the agent's outbox.
For each, :class:`Recovery` finds its job:

* in the record (``tests.job``, ``slurm:4711``; ``slurm:`` while it was being
  submitted);
* else from the batch system, by the job's name (the home died between the
  submission and its record; Slurm only: :meth:`~mtpkt.agents.batch.systems.BatchSystem.find`);
* else it has none: it is submitted again, under the same agent name, so the
  agent's ``seen.db`` runs its task at most once whatever happened before.

A test whose kill was asked for (``KILLREQ``) has its job cancelled, or, with
no job, ends ``KILLED``. A test that cannot be picked up now (the records or
the batch system cannot be read) is tried again at the next look.
"""

import logging

from mtpkt.agents.area import TestRef
from mtpkt.agents.batch.systems import BatchError
from mtpkt.agents.home.assign import BatchTask
from mtpkt.agents.home.batchchoice import batch_system, is_batch_agent
from mtpkt.agents.home.batchjobs import BatchJobs, Job
from mtpkt.agents.home.books import make_task, run_rows
from mtpkt.pkts import Action, State, Status
from mtpkt.pkts.link import Task
from mtpkt.store import StoreError

__all__ = ["Recovery"]

_Records = dict[tuple[str, str], dict[TestRef, str]]
"""Each run's recorded job of each test, read once per pick-up."""

_log = logging.getLogger(__name__)


class Recovery:
    """Picks up an earlier home's batch jobs for :class:`BatchJobs` (``jobs.recovery``)."""

    def __init__(self, jobs: BatchJobs) -> None:
        self.jobs = jobs
        self._done: set[str] = set()  # agents picked up

    def __call__(self) -> bool:
        """Pick up what is left to pick up; whether everything is."""
        jobs, books = self.jobs, self.jobs.books
        held = {handed.agent for handed in jobs.held}
        with books.lock:
            adopted = [
                (name, ref, task)
                for name, book in books.agents.items()
                if is_batch_agent(name) and name not in self._done and name not in held
                for ref, task in book.running.items()
            ]
        records: _Records = {}
        left = 0
        for name, ref, task in adopted:
            try:
                self._pick_up(name, ref, task, records)
            except (StoreError, TimeoutError, BatchError) as exc:
                left += 1
                _log.warning("%s: its batch job not picked up yet: %s", ref, exc)
                continue
            self._done.add(name)
        if adopted:
            _log.info(
                "batch jobs of an earlier home: %d picked up, %d left for the next look",
                len(adopted) - left,
                left,
            )
        return not left

    def _pick_up(
        self,
        name: str,
        ref: TestRef,
        task: Task,
        records: dict[tuple[str, str], dict[TestRef, str]],
    ) -> None:
        """Follow, submit again or end one adopted test.

        Raises:
            StoreError: the records cannot be read.
            BatchError: the batch system cannot be asked.
        """
        jobs, books = self.jobs, self.jobs.books
        system = batch_system(name)
        if system is None or jobs.job_of(name) is not None:
            return
        run = (ref.target, ref.runname)
        if run not in records:
            records[run] = {key: row.job for key, row in run_rows(jobs.store, *run).items()}
        recorded = records[run].get(ref, "").partition(f"{system.name}:")[2]
        job_id = recorded or system.find(name) or ""
        with books.lock:
            launch = books.launch_of(ref)
            state = books.state_of(ref)
            batch = None if launch is None else jobs.choice.of(launch, ref)
        kill = None
        if state is State.KILLREQ and launch is not None:
            kill = make_task(Action.KILL, ref, launch.control.id)
        if job_id:
            job = Job(ref, name, system, task, job_id, kill=kill)
            jobs.follow(job)
            if not recorded:
                jobs.record_job(job)
        elif kill is not None:
            jobs.end(name, ref, State.KILLED, Status.KILLED, "killed before its job was submitted")
        elif launch is None or batch is None:
            why = "its launcher no longer submits to a batch system: not submitted again"
            jobs.end(name, ref, State.COMPLETED, Status.DEAD, why)
        else:
            with books.lock:
                books.agent(name).outbox.pop(task.id, None)  # back once the job is recorded
            jobs.held.append(BatchTask(launch, task, batch, name))
