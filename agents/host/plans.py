"""The host agent's plan cache: a test is planned once per launch, not once per item.

A run task names one instance (a test and an item) of one launch, the control
packet whose id it carries. Planning reads the area's own files (DESIGN: a
task never carries a command line) and expands every item of the test, so the
agent keeps the instances of the latest :data:`PLANS_KEPT` tests it planned,
by launch, target, runname and test; the tasks for the test's other items take
theirs from there. A new launch of the same test is planned anew.

A plan reads the area's files anew with the run's command line (the task
carries the run's testpatt), as the home did when it planned the run, so
``#{scheme (args:get-arg "-testpatt")}`` means the same on both sides.

A test whose items are made late (``[system …]`` item values,
:mod:`~mtpkt.agents.area.deferred`) gets the items the home made for the
launch, read from its note (:mod:`~mtpkt.agents.itemnotes`): a task for it
comes only once the home made and noted them, so the agent runs those very
items, with their variables, whatever the commands would say now. Without a
note (one that could not be written or read) the agent makes them itself, as
the home did: in the run's environment and directory, after the same
prerequisites. Should those differ from the home's, a task for an item not
made here is answered with the items that were (the instance is not run).

A plan that fails is not kept: the next task of that test plans again (the
area may have been fixed in between).

A test is planned by one thread at a time: the tasks of its other items that
come meanwhile (an agent's slots start together) wait for that plan rather
than each planning every item again.
"""

import functools
import logging
import threading
from collections.abc import Mapping
from typing import Final, TypeAlias

import attrs

from mtpkt.agents.area import Area, AreaError, Instance, TestRef, plan_run
from mtpkt.agents.area.scheme import RunArgs
from mtpkt.agents.homedir import HomeDir
from mtpkt.agents.itemnotes import ItemNotes
from mtpkt.pkts.link import Task
from mtpkt.pkts.text import one_line

__all__ = ["PLANS_KEPT", "PlanCache"]

_log = logging.getLogger(__name__)

PLANS_KEPT: Final = 16
"""Tests whose plans (every item) an agent keeps, so their items are not planned again."""


def _testpatt(test: str) -> str:
    """The testpatt that selects ``test`` with all its items (and perhaps more; the caller
    picks it out).

    ``%`` in a name is a wildcard that also matches the name itself; a ``,`` or a
    leading ``~`` cannot be said in a testpatt, so the whole run is planned then.
    """
    if "," in test or test.startswith("~"):
        return "%"
    return test


def _instances(
    area: Area, launch: bytes, target: str, runname: str, test: str, testpatt: str
) -> Mapping[TestRef, Instance]:
    """Every instance of ``test`` in a plan of the run (none if the area has no such test),
    the configs read with the run's ``testpatt``.

    ``launch`` (the control packet's id) is the cache's key, and names the note of a
    deferred test's items.

    Raises:
        AreaError, OSError: the run cannot be planned; anything else planning raises.
    """
    args = RunArgs(target, runname, testpatt)
    plan = plan_run(area, target, runname, _testpatt(test), args=args)
    planned = plan.tests.get(test)
    if planned is not None and planned.deferred:
        note = ItemNotes(HomeDir(area.home).path / "items").read(launch, test)
        made = note.items if note is not None and not note.error else None
        planned = plan.expand(test, made)
    return {i.ref: i for i in planned.instances} if planned is not None else {}


_Key: TypeAlias = tuple[bytes, str, str, str, str]
"""A test's plan: its launch, target, run name, test and testpatt."""


@attrs.define(eq=False)
class _Planning:
    """A test being planned, and the tasks waiting for its plan."""

    lock: threading.Lock = attrs.Factory(threading.Lock)
    users: int = 0
    failed: Exception | None = None


class PlanCache:
    """The planned instances of the latest tests a host agent was given.

    Thread-safe: the tests' threads plan at once, each test once (a second task of a
    test being planned waits for that plan).

    Args:
        area: the test-suite area the tests are planned from.
        agent: the agent's name, for its log lines.
        kept: how many tests' plans are kept.
    """

    def __init__(self, area: Area, *, agent: str, kept: int = PLANS_KEPT) -> None:
        self.area = area
        self.agent = agent
        # lru_cache keeps what returns, never what raises: a failed plan is tried again.
        self._instances = functools.lru_cache(maxsize=kept)(functools.partial(_instances, area))
        self._lock = threading.Lock()
        self._planning: dict[_Key, _Planning] = {}

    def _planned(self, key: _Key) -> Mapping[TestRef, Instance]:
        """The instances of a test, planned by one thread at a time: the others wait for its
        plan, or its failure (which is not kept once none of them waits).

        Raises:
            whatever planning raises.
        """
        with self._lock:
            planning = self._planning.setdefault(key, _Planning())
            planning.users += 1
        try:
            with planning.lock:
                if planning.failed is not None:
                    raise planning.failed
                try:
                    return self._instances(*key)
                except Exception as exc:
                    planning.failed = exc
                    raise
        finally:
            with self._lock:
                planning.users -= 1
                if not planning.users:
                    del self._planning[key]

    def instance(self, task: Task, ref: TestRef) -> Instance | str:
        """The planned instance ``ref`` of a run task, or a one-line reason why there is none."""
        where = f"{ref.target}/{ref.runname}"
        try:
            instances = self._planned(
                (task.control, task.target, task.runname, task.test, task.testpatt)
            )
        except (AreaError, OSError) as exc:
            return f"cannot plan {ref} of {where}: {one_line(exc)}"
        except Exception as exc:
            _log.exception("agent %s: planning %s of %s failed", self.agent, ref, where)
            return f"cannot plan {ref} of {where}: internal error: {one_line(exc)}"
        found = instances.get(ref)
        if found is not None:
            return found
        made = sorted(other.item for other in instances if other.item)
        if made and ref.item:  # the test's items, made here, are others
            shown = ", ".join(made[:12]) + (" …" if len(made) > 12 else "")
            return f"the area has no test instance {ref} for {where} (its items here: {shown})"
        return f"the area has no test instance {ref} for {where}"
