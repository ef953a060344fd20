"""``mtpkt agent --batch``: the agent the home submits in a batch job, for one test.

The home names it (``batch-slurm-<12 hex>``, from the task) and puts its one
run task in its book; the agent pulls it, runs the test in one slot, sends
every status to the home through its spool, and ends once the test has
ended and the home has the last of it (docs/batch.md). Should no task come
within :data:`IDLE` seconds of the home's first answer (the home ended the
test meanwhile, or the task ran in an earlier job of the same name:
``seen.db`` says so), it ends too; so it does, saying why, when the home
has not answered at all within :data:`UNANSWERED` seconds (then the home
submits the test again: its task was never taken).

A signal means the batch system is ending the job (``scancel``, a time
limit, preemption): the agent reports nothing more, kills the test's
process groups at once and sends what it had spooled; the home records how
the test ended from the job's state, with the system's reason.
"""

import time
from typing import Final, Protocol, TextIO

from mtpkt.tools.agent_shutdown import Agent, Shutdown

__all__ = ["IDLE", "UNANSWERED", "BatchAgent", "BatchShutdown"]

IDLE: Final = 120.0
"""Seconds the agent in a batch job waits for its task, once the home answers, before it
ends."""
UNANSWERED: Final = 600.0
"""Seconds the agent in a batch job waits for the home to answer at all (a home that
restarts) before it ends."""


class BatchAgent(Agent, Protocol):
    """What :class:`BatchShutdown` needs of the agent besides :class:`Agent`."""

    @property
    def taken(self) -> int:
        """Run tasks taken."""

    @property
    def answered(self) -> int:
        """Pulls the home answered."""

    @property
    def holding(self) -> int:
        """Run tasks taken and not ended."""

    def mute(self) -> None:
        """Report nothing more."""


class BatchShutdown(Shutdown):
    """The end of the agent in a batch job: its test ended, no task came, or a signal.

    Args:
        agent: the started agent.
        out: where the one-line notices go.
        idle: seconds to wait for the task.
    """

    def __init__(self, agent: BatchAgent, out: TextIO, idle: float = IDLE) -> None:
        super().__init__(agent, out)
        self.batch_agent = agent
        self.idle = idle
        self._began = time.monotonic()
        self._answered_at: float | None = None  # the home's first answer
        self._ending = False

    def step(self) -> None:
        """Act on a signal, or end once the test has ended (or none came)."""
        if self._acted < self.signals:
            self._acted = self.signals
            if not self._ending:
                self._ending = True
                self.batch_agent.mute()
                self._say("the batch job is ending: stopping the test now")
                self._call("stop")
            return
        if self._ending:
            return
        agent, now = self.batch_agent, time.monotonic()
        if agent.answered and self._answered_at is None:
            self._answered_at = now
        if agent.taken and not agent.holding:
            self._end("")
        elif agent.taken:
            return
        elif self._answered_at is not None and now - self._answered_at > self.idle:
            self._end(f"no task came within {self.idle:g}s of the home's first answer: ending")
        elif self._answered_at is None and now - self._began > UNANSWERED:
            self._end(f"the home did not answer within {UNANSWERED:g}s: ending")

    def _end(self, why: str) -> None:
        self._ending = True
        if why:
            self._say(why)
        self._call("drain")
