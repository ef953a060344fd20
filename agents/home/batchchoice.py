"""Which test instances go to a batch system, and the job each becomes.

Megatest's launcher of an instance (:class:`~mtpkt.agents.area.launchers.Launchers`,
common.scm:2322-2353), computed in its run's environment, decides: one whose
first word is a batch system's submitter (:func:`~mtpkt.agents.batch.systems.system_of`)
is submitted to that system as a job of its own; any other stays with the
agents that pull. A run pinned to one agent (``send run --host``) stays
with that agent whatever its launchers say.

Each submitted instance gets an agent of its own, inside its job: its name
(:func:`agent_name`) is derived from the run task's id, so a restarted home,
or a job submitted again, finds the same state directory, ``seen.db`` and
spool, and the task is never run twice.
"""

import re
from typing import Final

import attrs

from mtpkt.agents.area import Area, TestRef
from mtpkt.agents.area.configdata import ConfigError
from mtpkt.agents.area.launchers import Launchers, launcher_words
from mtpkt.agents.batch.systems import SYSTEMS, BatchSystem, system_of
from mtpkt.agents.home.books import Launch
from mtpkt.pkts.link import Task

__all__ = ["BatchChoice", "BatchLaunch", "agent_name", "batch_system", "is_batch_agent"]

_AGENT: Final = re.compile(r"batch-([a-z]+)-[0-9a-f]{12}")


@attrs.frozen
class BatchLaunch:
    """How one instance is submitted: the system, and the launcher's words as written."""

    system: BatchSystem
    words: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.words)


def agent_name(system: BatchSystem, task: Task) -> str:
    """The name of the agent that runs ``task`` in a job of ``system``: ``batch-slurm-<12 hex>``."""
    return f"batch-{system.name}-{task.id.hex()[:12]}"


def is_batch_agent(name: str) -> bool:
    """Whether an agent's name is one the home gives to the agent in a batch job."""
    return _AGENT.fullmatch(name) is not None


def batch_system(name: str) -> BatchSystem | None:
    """The system of a batch agent's name; None for another agent."""
    found = _AGENT.fullmatch(name)
    if found is None:
        return None
    return next((system for system in SYSTEMS if system.name == found.group(1)), None)


class BatchChoice:
    """The batch launch of each instance, None for one the agents take (cached per launch).

    Args:
        area: the loaded area (its megatest.config).
    """

    def __init__(self, area: Area) -> None:
        self._area = area
        self._launchers: dict[bytes, Launchers | None] = {}
        self._of: dict[bytes, dict[TestRef, BatchLaunch | None]] = {}
        self._any: dict[bytes, bool] = {}

    def any(self, launch: Launch) -> bool:
        """Whether any instance of ``launch`` may go to a batch system (books lock held): when
        none may, the home does not look at its instances one by one."""
        key = launch.control.id
        if key not in self._any:
            launchers = self._launchers_of(launch)
            self._any[key] = (
                launch.control.host is None
                and launchers is not None
                and any(
                    not launcher.error and system_of(launcher_words(launcher.command)) is not None
                    for launcher in launchers.every()
                )
            )
        return self._any[key]

    def of(self, launch: Launch, ref: TestRef) -> BatchLaunch | None:
        """How ``ref`` of ``launch`` is submitted, or None when the agents take it (books
        lock held)."""
        if launch.control.host is not None:
            return None
        known = self._of.setdefault(launch.control.id, {})
        if ref in known:
            return known[ref]
        launchers = self._launchers_of(launch)
        found: BatchLaunch | None = None
        if launchers is not None:
            launcher = launchers.of(ref.test, ref.item)
            words = launcher_words(launcher.command)
            system = None if launcher.error else system_of(words)
            if system is not None:
                found = BatchLaunch(system, tuple(words))
        known[ref] = found
        return found

    def _launchers_of(self, launch: Launch) -> Launchers | None:
        key = launch.control.id
        if key not in self._launchers:
            try:
                made: Launchers | None = Launchers(
                    self._area.config, launch.plan.env, self._area.home
                )
            except ConfigError:  # named in the run's warning line; its tests go to agents
                made = None
            self._launchers[key] = made
        return self._launchers[key]

    def keep_only(self, launches: list[Launch]) -> None:
        """Forget the launches no longer in the books (books lock held)."""
        live = {launch.control.id for launch in launches}
        for cache in (self._launchers, self._of, self._any):
            for key in [key for key in cache if key not in live]:
                del cache[key]
