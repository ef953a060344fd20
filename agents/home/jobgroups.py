"""``[jobgroups]``: at most N tests of a group launched or running at once.

Megatest's runner launches a test of jobgroup G (``[test_meta] jobgroup``)
only while fewer than ``[jobgroups] G`` tests whose jobgroup is G are
LAUNCHED, REMOTEHOSTSTART or RUNNING, counted over every run, toplevel
records of itemized tests left out (runs.scm:203-231, db.scm:2905-2931). The
home counts the instances its agents have in hand the same way, for one
hand-out at a time (:mod:`~mtpkt.agents.home.assign`); a test's group is the
one the newest launch of it read, as Megatest's ``test_meta`` table keeps the
last one a run wrote (runs.scm:2395-2403).

Called with the books lock held.
"""

from collections import Counter

from mtpkt.agents.area import Instance
from mtpkt.agents.home.books import Books, Launch

__all__ = ["JobGroups"]


class JobGroups:
    """The tests in hand per jobgroup, and whether one more of a group may launch.

    Args:
        books: the dispatcher's books.
    """

    def __init__(self, books: Books) -> None:
        self._books = books
        self._running: Counter[str] | None = None  # counted when first needed

    def allows(self, launch: Launch, instance: Instance) -> bool:
        """Whether the instance may launch now as far as its jobgroup goes."""
        group = launch.plan.tests[instance.ref.test].jobgroup
        limit = launch.plan.schedule.jobgroups.get(group) if group else None
        return limit is None or self._counts()[group] < limit

    def add(self, launch: Launch, instance: Instance) -> None:
        """Count an instance this hand-out launches."""
        group = launch.plan.tests[instance.ref.test].jobgroup
        if group:
            self._counts()[group] += 1

    def _counts(self) -> Counter[str]:
        if self._running is None:
            self._running = Counter(
                group
                for agent in self._books.agents.values()
                for ref in agent.running
                if (group := self._group(ref.test))
            )
        return self._running

    def _group(self, test: str) -> str:
        """The jobgroup of a test as the newest launch that has it read it."""
        for launch in reversed(self._books.launches):
            planned = launch.plan.tests.get(test)
            if planned is not None:
                return planned.jobgroup
        return ""
