"""A run's roll-up kept as running counts, so it costs the same for ten tests or ten thousand."""

from collections import Counter

import attrs

from mtpkt.pkts.enums import State, Status, worst
from mtpkt.pkts.outcome import ACTIVE, FINAL, effective_status, settled

__all__ = ["RunSummary", "Tally"]


@attrs.frozen
class RunSummary:
    """A run's roll-up over its toplevel-level records (tests with item path ``''``)."""

    state: State
    status: Status
    pass_count: int
    """Records with status ``PASS``."""
    fail_count: int
    """Records with status ``FAIL``."""


class Tally:
    """Counts over a set of records that give what :func:`pkts.outcome.rollup` would.

    Add a record when it appears, remove its old values and add the new when
    it changes; :meth:`summary` then costs O(number of statuses).
    """

    def __init__(self) -> None:
        self._total = 0
        self._final = 0
        self._settled = 0
        self._active = 0
        self._statuses: Counter[Status] = Counter()
        self._passed = 0
        self._failed = 0

    def add(self, state: State, status: Status, count: int = 1) -> None:
        """Count a record (``count=-1`` removes one)."""
        self._total += count
        if settled(state, status):
            self._settled += count
        if state in FINAL:
            self._final += count
        elif state in ACTIVE:
            self._active += count
        self._statuses[effective_status(state, status)] += count
        if status == Status.PASS:
            self._passed += count
        elif status == Status.FAIL:
            self._failed += count

    def remove(self, state: State, status: Status) -> None:
        """Forget a record counted before with these values."""
        self.add(state, status, -1)

    def summary(self) -> RunSummary:
        """The roll-up as :func:`pkts.outcome.rollup` gives it; ``NOT_STARTED``/``n/a`` for none."""
        if self._total <= 0:
            return RunSummary(State.NOT_STARTED, Status.NA, 0, 0)
        if self._settled == self._total:
            state = State.COMPLETED
        elif self._final or self._active:
            state = State.RUNNING
        else:
            state = State.NOT_STARTED
        status = worst(status for status, n in self._statuses.items() if n > 0)
        return RunSummary(state, status, self._passed, self._failed)
