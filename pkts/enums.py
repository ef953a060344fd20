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


class Status(enum.StrEnum):
    """How a test or step came out (Megatest's ``status`` column).

    Members are declared best to worst; :attr:`rank` gives that order and
    :func:`worst` picks the one a roll-up reports.
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

    @property
    def rank(self) -> int:
        """Position from best (0, ``n/a``) to worst (``ABORT``)."""
        return _RANK[self]


_RANK: dict[Status, int] = {status: index for index, status in enumerate(Status)}


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
