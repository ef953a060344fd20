"""What one test instance is, and what running it takes: made by planning, run by a host.

Plain data: nothing here starts a process (:mod:`agents.host.runner` does).
"""

from collections.abc import Mapping
from pathlib import Path

import attrs

from mtpkt.agents.area.disks import Disks
from mtpkt.agents.area.environment import BLACKLISTVARS
from mtpkt.pkts.text import display_name

__all__ = ["InlineLogpro", "StepSpec", "TestJob", "TestRef", "Waiver"]


@attrs.frozen
class TestRef:
    """One test instance of a run: the identity every status packet about it carries."""

    __test__ = False  # not a pytest test class, despite the name

    target: str
    runname: str
    test: str
    item: str = ""
    """Item path; empty for a test without items, or for an itemized test's toplevel record."""

    @property
    def toplevel(self) -> "TestRef":
        """The record an itemized test's items roll up into."""
        return attrs.evolve(self, item="")

    def __str__(self) -> str:
        return display_name(self.test, self.item)


@attrs.frozen
class InlineLogpro:
    """A step's rules in the testconfig's ``[logpro]`` section (launch.scm:100-114)."""

    text: str
    """The rules, as the entry's value gives them."""
    path: str
    """The testconfig the entry is in, and the line where it starts: errors name them."""
    line: int


@attrs.frozen
class Waiver:
    """One ``[waivers]`` entry of a testconfig: ``NAME RULE GLOB`` (tests.scm:343-369)."""

    name: str
    value: str
    """``RULE GLOB``, as written."""


@attrs.frozen
class StepSpec:
    """One step of a test, as its ``[ezsteps]`` section gives it."""

    name: str
    """Step name; also the stem of its log file, ``<name>.log`` in the run directory."""
    command: str
    """Shell command, run as ``bash -c <command>``."""
    ezstep: bool = False
    """An ``[ezsteps]`` step: it runs with ``.`` at the end of ``PATH`` (``launch.scm:134-135``),
    so ``hello hello.sh`` finds the script in the run directory; a runscript does not."""
    logpro: InlineLogpro | None = None
    """Its ``[logpro]`` rules in the testconfig, written to ``<name>.logpro`` when the run
    directory has no such file (:mod:`~mtpkt.agents.host.steplogpro`); None: none."""


@attrs.frozen(kw_only=True)
class TestJob:
    """Everything needed to run one test instance here."""

    __test__ = False  # not a pytest test class, despite the name

    ref: TestRef
    """Which test instance this is; every status packet carries it."""
    rundir: Path
    """Absolute run directory, already validated by the caller; created if missing."""
    source_dir: Path | None
    """The test's ``tests/<name>`` directory, copied into :attr:`rundir` first; None: nothing."""
    steps: tuple[StepSpec, ...]
    """Steps in the order they run."""
    env: Mapping[str, str]
    """The complete environment of every step (this process's own is not added)."""
    runtimelim: float | None = None
    """Seconds all steps together may take; None for no limit."""
    disks: Disks | None = None
    """``[disks]``: the test's directory is made on the best of them and linked from the
    linktree when the test starts (:mod:`~mtpkt.agents.host.workarea`); None: in the
    linktree itself."""
    rollup: str = ""
    """``[testrollup]`` command of an itemized test, run in its toplevel directory after
    each item ends (:mod:`~mtpkt.agents.host.rollup`); "" for none."""

    @property
    def test_dir(self) -> Path:
        """The test's own directory: :attr:`rundir` without the item path's parts."""
        depth = len(self.ref.item.split("/")) if self.ref.item else 0
        return self.rundir.parents[depth - 1] if depth else self.rundir

    waivers: tuple[Waiver, ...] = ()
    """``[waivers]``: how a FAIL may become WAIVED (:mod:`~mtpkt.agents.host.waivers`)."""
    waiver_rules: Mapping[str, str] = attrs.field(factory=dict)
    """``[waiver_rules]``: the commands a waiver's rule names."""

    blacklistvars: tuple[str, ...] = BLACKLISTVARS
    """Variables written commented out in ``megatest.sh``/``megatest.csh`` (``[setup]
    blacklistvars``), which record :attr:`env` in the run directory before the steps run."""
