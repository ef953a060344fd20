"""Status packets: what agents report back, to be committed by the collector.

Every status packet carries ``seq``, a sequence number that grows by one for
each status packet its ``origin`` sends, so receivers can see gaps.
"""

from typing import ClassVar, TypeAlias

import attrs

from mtpkt.pkts.enums import AckOutcome, State, Status, StepState
from mtpkt.pkts.envelope import ID_SIZE, Envelope

__all__ = [
    "Ack",
    "Sequenced",
    "StatusChange",
    "StatusPacket",
    "Step",
    "TestData",
    "TestIdentity",
]


@attrs.frozen(kw_only=True)
class Sequenced(Envelope):
    """Fields common to every status packet. Not a packet kind itself."""

    seq: int
    """Per-origin sequence number: 1 for the first status packet an origin sends, then +1."""


@attrs.frozen(kw_only=True)
class Ack(Sequenced):
    """The fate of one control packet."""

    kind: ClassVar[str] = "ack"

    ref: bytes = attrs.field(metadata={"size": ID_SIZE})
    """The ``id`` of the control packet this answers."""
    outcome: AckOutcome
    """``accepted``, ``rejected`` or ``done``."""
    reason: str = ""
    """Why it was rejected, or a note on what was done."""


@attrs.frozen(kw_only=True)
class TestIdentity(Sequenced):
    """Which test instance a packet is about. Not a packet kind itself."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    target: str
    """The run's key values joined by ``/``, e.g. ``ubuntu/x86_64``."""
    runname: str
    """Name of the run."""
    test: str
    """Test name (the directory under ``tests/``)."""
    item: str = ""
    """Item path, e.g. ``a/1``; empty for a test without items or its toplevel record."""


@attrs.frozen(kw_only=True)
class Step(TestIdentity):
    """One step of a test started or ended."""

    kind: ClassVar[str] = "step"
    VERSION: ClassVar[int] = 2
    """v2 added ``comment``."""

    step: str
    """Step name, as in the test's ``[ezsteps]``."""
    state: StepState
    """``start`` or ``end``."""
    status: Status = Status.NA
    """Outcome of the step: ``n/a`` at start, then ``PASS`` or ``FAIL`` …"""
    exit_code: int | None = None
    """Exit code of the step's command; ``None`` at start or when killed by a signal."""
    logfile: str = ""
    """Path of the step's log, relative to the test's run directory."""
    duration: float | None = None
    """Seconds the step ran; ``None`` at start."""
    comment: str = attrs.field(default="", metadata={"since": 2})
    """The step's comment (``megatest -step … -m``, logpro's final message). Since v2."""


@attrs.frozen(kw_only=True)
class StatusChange(TestIdentity):
    """A test's state or status changed."""

    kind: ClassVar[str] = "status_change"
    VERSION: ClassVar[int] = 3
    """v2 added ``logfile``, v3 ``job``."""

    state: State
    """The new state, e.g. ``RUNNING``."""
    status: Status
    """The new status, e.g. ``PASS``."""
    comment: str = ""
    """Free text shown beside the test (Megatest's ``comment``)."""
    host: str = ""
    """Agent the test runs on; empty when not on a host (e.g. ``NOT_STARTED``)."""
    pid: int | None = None
    """Process id of the test's process group leader, when one runs."""
    logfile: str = attrs.field(default="", metadata={"since": 2})
    """The test's main log, relative to its run directory (Megatest's ``final_logf``, set by
    ``megatest -setlog`` or a step's logpro report); empty leaves it as it was. Since v2."""
    job: str = attrs.field(default="", metadata={"since": 3})
    """The batch job the test runs in, ``system:id`` (``slurm:4711``); empty leaves it as it
    was. Since v3."""


@attrs.frozen(kw_only=True)
class TestData(TestIdentity):
    """One row of a test's data (Megatest's ``test_data`` table): a measurement and its verdict.

    Made by ``megatest -load-test-data`` (one packet per CSV row), ``megatest -test-status
    :value …`` and a logpro step's ``.dat`` file. Values are the text given, as Megatest keeps
    them; the store writes numbers as numbers. ``status`` is already decided by the sender,
    from the row's own status or its value, expected value and tolerance
    (:func:`mtpkt.pkts.testdata.row_status`, as ``db.scm`` ``db:csv->test-data``).
    A second row with the test's ``category`` and ``variable`` replaces the first.
    """

    kind: ClassVar[str] = "test_data"
    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    category: str
    variable: str
    value: str = ""
    expected: str = ""
    tol: str = ""
    """A number (``|value - expected| <= tol`` passes) or a comparison ``>``, ``<``, ``>=``,
    ``<=`` (``value OP expected`` passes)."""
    units: str = ""
    comment: str = ""
    status: str = ""
    """``pass``, ``fail``, the status the row gave, ``ERROR: bad tol comparator …``, or empty
    when nothing decides it (Megatest's words, lower case as it writes them)."""
    type: str = ""
    """Free text; ``logpro`` for rows from a logpro ``.dat`` file."""


StatusPacket: TypeAlias = Ack | Step | StatusChange | TestData
"""Every status packet kind (a closed union: handle it with ``match``).

Named ``StatusPacket`` because :class:`pkts.Status` is Megatest's status enum.
"""
