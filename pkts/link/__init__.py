"""Link packets: how mtpkt processes keep in touch, apart from what they report.

Heartbeats from agents, the home's receipts for committed status packets,
the queries and headers of the live stream, and the control path between
the home and its agents: an agent's ``pull`` for work, answered with
``task`` packets. They are signed and checked
like every packet, but never stored as a test's history.
"""

from typing import ClassVar, Final, TypeAlias

import attrs

from mtpkt.pkts.enums import Action, Phase
from mtpkt.pkts.envelope import ID_SIZE, Envelope

__all__ = ["NOT_JOURNALED", "Heartbeat", "Link", "Published", "Pull", "Query", "Receipt", "Task"]

NOT_JOURNALED: Final = "not journaled: "
"""How a Receipt's ``error`` starts when the home could not write a control packet to its
journal (its disk failed): nothing was done, and the same packet may be sent again."""


@attrs.frozen(kw_only=True)
class Heartbeat(Envelope):
    """An agent is alive: ``online`` when it starts, ``beat`` on time, ``offline`` at its end."""

    kind: ClassVar[str] = "heartbeat"

    phase: Phase
    """``online``, ``beat`` or ``offline``."""
    interval: float
    """Seconds until the next beat; the home marks the agent lost after twice this."""
    slots: int = 0
    """Tests the agent can run at once."""
    busy: int = 0
    """Tests it is running now."""
    pid: int = 0
    """The agent's process id."""


@attrs.frozen(kw_only=True)
class Receipt(Envelope):
    """The home's answer to a frame: which packets are now committed, or why none is."""

    kind: ClassVar[str] = "receipt"

    ids: tuple[bytes, ...] = attrs.field(default=(), metadata={"size": ID_SIZE})
    """Ids of the frame's packets that are committed (also those it already had)."""
    error: str = ""
    """Empty on success; otherwise why nothing in the frame was committed (see
    :data:`NOT_JOURNALED`)."""


@attrs.frozen(kw_only=True)
class Query(Envelope):
    """A tail asks for committed status packets after a point of the live stream."""

    kind: ClassVar[str] = "query"

    after: int = 0
    """Return packets with a stream sequence number above this (0: from the start)."""
    limit: int = 1000
    """At most this many packets in the answer."""
    target: str = ""
    """Only packets of this target (empty: every target)."""
    runname: str = ""
    """Only packets of this run name (empty: every run)."""
    acks: bool = False
    """With a ``target`` or ``runname``, the ``ack`` packets (which belong to no run) too:
    ``send --wait`` waits for the one that says its run or rerunclean settled."""


@attrs.frozen(kw_only=True)
class Published(Envelope):
    """Heads a frame of committed status packets: the live stream, or a query's answer.

    The frame's other packets follow it, one per entry of :attr:`seqs`, in order.
    """

    kind: ClassVar[str] = "published"

    seqs: tuple[int, ...]
    """Stream sequence number of each packet that follows."""
    head: int
    """The newest sequence number committed when the frame was made."""


@attrs.frozen(kw_only=True)
class Pull(Envelope):
    """An agent asks the home for work, and acknowledges the tasks it has recorded.

    The home answers with a batch frame: a :class:`Receipt` (its ``error`` set
    if the pull was refused), then the agent's :class:`Task` packets not yet
    acknowledged, old and new. The ``origin`` is the agent's name.
    """

    kind: ClassVar[str] = "pull"

    slots: int
    """Tests the agent runs at once."""
    free: int
    """Of those, slots free now; 0 asks for no new tests (kills still come)."""
    acks: tuple[bytes, ...] = attrs.field(default=(), metadata={"size": ID_SIZE})
    """Ids of tasks the agent has durably recorded; the home stops sending them."""
    running: tuple[bytes, ...] = attrs.field(default=(), metadata={"size": ID_SIZE})
    """Ids of the run tasks whose tests the agent is running now."""
    draining: bool = False
    """The agent is shutting down: it finishes what it runs and takes nothing new."""


@attrs.frozen(kw_only=True)
class Task(Envelope):
    """The home asks one agent to act on one test instance (sent until acknowledged).

    An agent executes each task id at most once, across restarts. The
    ``origin`` is ``home``.
    """

    kind: ClassVar[str] = "task"
    VERSION: ClassVar[int] = 2
    """v2 added :attr:`previous`."""

    action: Action
    """``run`` the test instance, or ``kill`` it."""
    target: str
    runname: str
    test: str
    item: str = ""
    """Item path; empty for a test without items."""
    control: bytes = attrs.field(metadata={"size": ID_SIZE})
    """Id of the control packet (``run``, ``kill`` …) this task carries out."""
    grace: float = 10.0
    """For ``kill``: seconds between SIGTERM and SIGKILL."""
    testpatt: str = "%"
    """The run's testpatt (Megatest's ``-testpatt``): the agent reads the test's configs
    with it, as the home did when it planned the run."""
    previous: tuple[str, ...] = ()
    """For ``run`` of a test with ``[waivers]``: the previous run's record of the instance
    (the newest other run of the target that has it, ``db:get-previous-test-run-record``),
    as state, status, comment and run directory; empty: none, or no waivers to check."""


Link: TypeAlias = Heartbeat | Receipt | Query | Published | Pull | Task
"""Every link packet kind."""
