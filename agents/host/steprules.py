"""Megatest's rules for a test's state and status as its steps end (launch.scm), pure.

Megatest keeps one number per running test, the *rollup status*
(``launch:einf-rollup-status``, launch.scm:57), and after each ezstep:

* the step's own status (``this-step-status``, launch.scm:197-205) comes from
  the code of logpro when logpro judged the step's log (0 PASS, 1 FAIL, 2 WARN,
  3 CHECK, 4 WAIVED, 5 ABORT, 6 SKIP), else from the step's exit code (0 PASS,
  anything else FAIL);
* the test's next status (``overall-status`` and ``next-status``,
  launch.scm:206-215) is the step's while every step so far passed; WARN once a
  step warned, unless this one failed; FAIL once a step ended otherwise;
* the test is set to that status with the state ``RUNNING``, or ``COMPLETED``
  after the last step; a failed step sets ``COMPLETED``/``FAIL`` with the comment
  "Failed at step NAME" (launch.scm:222-265);
* the next step runs only when this one exited 0, or logpro gave WARN
  (``steprun-good?``, launch.scm:45-47).

A ``[setup] runscript`` is one process whose exit code becomes the rollup
status (launch.scm:279-289). When everything ran, a test still ``RUNNING``
(or ``REMOTEHOSTSTART``) ends ``COMPLETED`` with the status of the rollup
(launch.scm:778-797): 0 PASS, 1 FAIL, 2 WARN, 3 CHECK, 4 WAIVED, 5 ABORT,
6 SKIP, anything else FAIL (a runscript killed by a signal: FAIL); a test that
set its state itself keeps it.
"""

from typing import Final

import attrs

from mtpkt.pkts.enums import State, Status

__all__ = ["CODES", "Rollup", "Verdict", "code_status", "keeps_going", "step_status"]

CODES: Final[dict[int, Status]] = {
    0: Status.PASS,
    1: Status.FAIL,
    2: Status.WARN,
    3: Status.CHECK,
    4: Status.WAIVED,
    5: Status.ABORT,
    6: Status.SKIP,
}
"""logpro's exit codes, and a rollup status's meaning (launch.scm:198-204, 785-797)."""

_FOUND: Final[dict[Status, str]] = {
    Status.WARN: "Logpro warning found",
    Status.CHECK: "Logpro check found",
    Status.ABORT: "Logpro abort found",
    Status.SKIP: "Logpro skip found",
}
"""The comment set with a status the step itself gave (launch.scm:224-252). WAIVED has
none: Megatest's test for it asks whether the step gave CHECK (launch.scm:237), which a
waived step never did."""


def code_status(code: int | None) -> Status:
    """The status a rollup status (or logpro's code) stands for; FAIL for any other number."""
    return CODES.get(code, Status.FAIL) if code is not None else Status.FAIL


def step_status(code: int | None, logpro_used: bool) -> Status:
    """An ezstep's own status: from logpro's code when logpro judged it, else PASS for exit
    code 0 and FAIL for anything else (launch.scm:197-205)."""
    if code == 0:
        return Status.PASS
    if logpro_used:
        return code_status(code)
    return Status.FAIL


def keeps_going(code: int | None, logpro_used: bool) -> bool:
    """Whether the next ezstep runs: this one exited 0, or logpro gave WARN
    (``steprun-good?``, launch.scm:45-47)."""
    return code == 0 or (logpro_used and code == 2)


@attrs.frozen
class Verdict:
    """What a step's end sets the test to; ``comment`` None keeps the test's comment."""

    state: State
    status: Status
    comment: str | None = None


@attrs.define
class Rollup:
    """A running test's rollup status (``launch:einf-rollup-status``), and its rules."""

    status: int = 0
    """0 while everything passed; then the number of the worst news (see :data:`CODES`)."""

    def after_step(self, step: str, this: Status, last: bool) -> Verdict:
        """The test's state and status after ezstep ``step`` ended ``this`` (launch.scm:206-265).

        Args:
            step: the step's name, for "Failed at step NAME".
            this: the step's own status (:func:`step_status`).
            last: whether no step follows it.
        """
        if self.status == 0:
            following = this
        elif self.status == 2:
            following = Status.FAIL if this is Status.FAIL else Status.WARN
        else:
            following = Status.FAIL
        state = State.COMPLETED if last else State.RUNNING
        if following is Status.FAIL:
            self.status = 1  # "force fail": COMPLETED whether steps follow or not
            return Verdict(State.COMPLETED, Status.FAIL, f"Failed at step {step}")
        if following is not Status.PASS:
            self.status = _NUMBER[following]
        comment = _FOUND.get(following) if following is this else None
        return Verdict(state, following, comment)

    def after_runscript(self, code: int | None) -> None:
        """A runscript's exit code is the rollup status (launch.scm:289); None (killed by a
        signal, or it could not start) counts as FAIL."""
        self.status = 1 if code is None else code

    def final(self) -> Status:
        """The status a test still running ends with (launch.scm:780-797)."""
        return code_status(self.status)


_NUMBER: Final = {status: code for code, status in CODES.items()}
