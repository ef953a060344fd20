"""Control packets: what a user asks the home, and the home asks the agents, to do.

Each one addresses a set of tests of one run: a ``target`` (the run's key
values joined by ``/``, e.g. ``ubuntu/x86_64``), a ``runname`` and a
``testpatt`` in Megatest's syntax. A control packet never carries a command
line: agents only run steps read from the area's own config files.
"""

from typing import ClassVar, TypeAlias

import attrs

from mtpkt.pkts.enums import State, Status
from mtpkt.pkts.envelope import Envelope

__all__ = [
    "Archive",
    "Clean",
    "Control",
    "Kill",
    "RerunClean",
    "Run",
    "Selection",
    "SetRun",
    "SetState",
]


@attrs.frozen(kw_only=True)
class Selection(Envelope):
    """The tests a control packet applies to. Not a packet kind itself."""

    target: str
    """The run's key values joined by ``/`` in ``[fields]`` order, e.g. ``ubuntu/x86_64``."""
    runname: str
    """Name of the run, e.g. ``nightly-2026-11-24``."""
    testpatt: str = "%"
    """Comma-separated ``test/itempath`` patterns, ``%`` matching any text."""
    host: str | None = None
    """Pin the work to the agent of this name; ``None`` lets any agent take it."""


@attrs.frozen(kw_only=True)
class Run(Selection):
    """Run the selected tests, creating the run if it is new."""

    kind: ClassVar[str] = "run"

    rerun: tuple[Status, ...] = ()
    """Also rerun tests that completed with one of these statuses (Megatest ``-rerun``)."""
    rerun_all: bool = False
    """Rerun every selected test whatever its state (Megatest ``-rerun-all``)."""
    preclean: bool = False
    """Remove a test's run directory before running it (Megatest ``-preclean``)."""


@attrs.frozen(kw_only=True)
class Kill(Selection):
    """Stop the selected tests: running ones are killed, waiting ones withdrawn."""

    kind: ClassVar[str] = "kill"

    grace: float = 10.0
    """Seconds between SIGTERM and SIGKILL to a test's process group."""


@attrs.frozen(kw_only=True)
class RerunClean(Selection):
    """Clean and rerun the selected tests that ended badly; good ones stay."""

    kind: ClassVar[str] = "rerunclean"


@attrs.frozen(kw_only=True)
class Clean(Selection):
    """Kill, then remove the run directories (and records) of the selected tests."""

    kind: ClassVar[str] = "clean"
    VERSION: ClassVar[int] = 2
    """v2 added ``archives``."""

    keep_records: bool = False
    """Keep the tests' database records; only their directories go."""
    archives: bool = attrs.field(default=False, metadata={"since": 2})
    """Also delete the tests' archive files (only inside the area's archive root) and their
    archive records; without it the archives stay. Since v2."""


@attrs.frozen(kw_only=True)
class Archive(Selection):
    """Pack the selected tests' run directories into the area's archive (or restore them)."""

    kind: ClassVar[str] = "archive"

    remove: bool = False
    """Delete each run directory once its archive is verified (state ``ARCHIVED``)."""
    restore: bool = False
    """Unpack the archives back into the run directories instead."""

    def __attrs_post_init__(self) -> None:
        if self.remove and self.restore:
            raise ValueError("archive: 'remove' and 'restore' cannot both be set")


@attrs.frozen(kw_only=True)
class SetState(Selection):
    """Set the state and status of the selected tests (Megatest ``-set-state-status``).

    Only records that are not running or waiting are changed; an itemized test's
    toplevel record is rolled up again from its items when an item changes, as
    Megatest's ``db:set-state-status-and-roll-up-items`` does (db.scm:3576-3604)."""

    kind: ClassVar[str] = "setstate"

    state: State
    """The new state, e.g. ``COMPLETED``."""
    status: Status
    """The new status, e.g. ``FAIL``."""
    only_states: tuple[str, ...] = ()
    """Change only records whose state is one of these (``%`` patterns); empty: any."""
    only_statuses: tuple[str, ...] = ()
    """Change only records whose status is one of these (``%`` patterns); empty: any."""
    comment: str = ""
    """The records' new comment; empty: unchanged."""


@attrs.frozen(kw_only=True)
class SetRun(Selection):
    """Lock or unlock a run, or set its status (Megatest ``-lock``, ``-unlock``,
    ``-set-run-status``). A locked run's tests are not cleaned, archived or set by
    ``setstate`` (runs.scm:2002: Megatest's actions on runs pass it by); it still runs.
    ``testpatt`` and ``host`` are not used."""

    kind: ClassVar[str] = "setrun"

    lock: bool | None = None
    """Lock (True) or unlock (False) the run; None: leave it as it is."""
    status: str = ""
    """The run's status as Megatest's ``-set-run-status`` sets it; empty: unchanged."""
    comment: str = ""
    """The run's comment (``-m``), set with the status; empty: unchanged."""


Control: TypeAlias = Run | Kill | RerunClean | Clean | Archive | SetState | SetRun
"""Every control packet kind (a closed union: handle it with ``match``)."""
