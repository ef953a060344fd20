"""Megatest's test states and statuses, and the small enums packets carry.

Values are Megatest's own words, so they go on the wire and into the
database unchanged and users' existing queries keep working.
"""

import enum
from collections.abc import Iterable

__all__ = ["AckOutcome", "Action", "Phase", "State", "Status", "StepState", "worst"]


class State(enum.StrEnum):
    """Where a test is in its life (Megatest's ``state`` column)."""

    NOT_STARTED = "NOT_STARTED"
    LAUNCHED = "LAUNCHED"
    REMOTEHOSTSTART = "REMOTEHOSTSTART"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    KILLREQ = "KILLREQ"
    KILLED = "KILLED"
    INCOMPLETE = "INCOMPLETE"
    STUCK = "STUCK"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"
    STALE = "STALE"
    """Completed, but a later run of the same run resolved its configs differently."""


class Status(enum.StrEnum):
    """How a test or step came out (Megatest's ``status`` column).

    :attr:`rank` orders them best to worst and :func:`worst` picks the one a
    roll-up reports. The order is Megatest's ``*common:std-statuses*``
    (common.scm:538-551), ``n/a`` to ``ABORT``. The statuses Megatest's
    scheduler gives a test that is not started (runs.scm: ZERO_ITEMS :773,
    TIMED_OUT :837, BLOCKED :1107, KEEP_TRYING :1137, TEN_STRIKES :1148) are not
    in that list, and Megatest's roll-up sorts a status it does not list below
    every one it does (``common:special-sort``, common.scm:578-585): they rank
    below ``n/a``. So does ``KILLED``, the status of a test killed while it ran
    (launch.scm:425-440), which that list does not have either.
    """

    NA = "n/a"
    PASS = "PASS"
    SKIP = "SKIP"
    WARN = "WARN"
    WAIVED = "WAIVED"
    CHECK = "CHECK"
    DEAD = "DEAD"
    FAIL = "FAIL"
    PREQ_FAIL = "PREQ_FAIL"
    PREQ_DISCARDED = "PREQ_DISCARDED"
    ABORT = "ABORT"
    ZERO_ITEMS = "ZERO_ITEMS"
    """Not started: an itemized test whose items are none, or none the testpatt selects."""
    BLOCKED = "BLOCKED"
    """Not started: a prerequisite cannot let it run."""
    TIMED_OUT = "TIMED_OUT"
    """Not started: nothing of it was seen running in a while."""
    KEEP_TRYING = "KEEP_TRYING"
    """Not started yet: its prerequisites are not done; the scheduler tries again."""
    TEN_STRIKES = "TEN_STRIKES"
    """Not started: the scheduler gave up trying after many rounds."""
    KILLED = "KILLED"
    """Stopped while it ran, by a kill or its ``runtimelim`` (launch.scm:425-440): the
    state is ``KILLED`` too."""

    @property
    def rank(self) -> int:
        """Position from best (the scheduling statuses and ``KILLED``, then ``n/a``) to worst
        (``ABORT``)."""
        return _RANK[self]


_ORDER: tuple[Status, ...] = (
    Status.ZERO_ITEMS,
    Status.BLOCKED,
    Status.TIMED_OUT,
    Status.KEEP_TRYING,
    Status.TEN_STRIKES,
    Status.KILLED,
    Status.NA,
    Status.PASS,
    Status.SKIP,
    Status.WARN,
    Status.WAIVED,
    Status.CHECK,
    Status.DEAD,
    Status.FAIL,
    Status.PREQ_FAIL,
    Status.PREQ_DISCARDED,
    Status.ABORT,
)
_RANK: dict[Status, int] = {status: index for index, status in enumerate(_ORDER)}


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses`` by Megatest's order; ``n/a`` for none."""
    return max(statuses, key=_RANK.__getitem__, default=Status.NA)


class StepState(enum.StrEnum):
    """Whether a :class:`pkts.status.Step` packet opens or closes a step."""

    START = "start"
    END = "end"


class AckOutcome(enum.StrEnum):
    """What became of a control packet, as an :class:`pkts.status.Ack` says."""

    ACCEPTED = "accepted"
    """Journaled by the home; it will be carried out."""
    REJECTED = "rejected"
    """Refused; ``reason`` says why. Nothing was executed."""
    DONE = "done"
    """Carried out completely."""


class Action(enum.StrEnum):
    """What a :class:`pkts.link.Task` asks an agent to do with one test instance."""

    RUN = "run"
    KILL = "kill"


class Phase(enum.StrEnum):
    """Where an agent's :class:`pkts.link.Heartbeat` stands in its life."""

    ONLINE = "online"
    BEAT = "beat"
    OFFLINE = "offline"
