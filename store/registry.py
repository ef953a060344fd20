"""The agent registry in ``main.db``: who is online, lost or offline, their clocks, and the
dispatcher's books of each (``agent_work``), so that ``mtpkt agents`` can show them."""

import logging
from collections.abc import Mapping, Sequence
from typing import Final

from mtpkt.pkts.enums import Phase
from mtpkt.pkts.link import Heartbeat
from mtpkt.pkts.liveness import LOST_AFTER
from mtpkt.store.connection import Database
from mtpkt.store.rows import AgentRow

__all__ = ["DRIFT_WARNING", "GRACE_VAR", "AgentRegistry"]

log = logging.getLogger(__name__)

DRIFT_WARNING: Final = 16.0
"""Seconds of clock skew (plus transit time) above which a heartbeat logs a warning (as Celery)."""

_UPSERT: Final = (
    "INSERT INTO agents(name, pid, slots, busy, interval, state, first_seen, last_beat, last_ts,"
    " skew) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
    " pid = excluded.pid, slots = excluded.slots, busy = excluded.busy,"
    " interval = excluded.interval, state = excluded.state, last_beat = excluded.last_beat,"
    " last_ts = excluded.last_ts, skew = excluded.skew"
)

_WORK: Final = (
    "INSERT INTO agent_work(name, running, pending, updated) VALUES (?, ?, ?, ?)"
    " ON CONFLICT(name) DO UPDATE SET running = excluded.running, pending = excluded.pending,"
    " updated = excluded.updated"
)
GRACE_VAR: Final = "agent_grace"
"""``metadat`` variable: the running home's seconds of grace for a lost agent."""


class AgentRegistry:
    """Heartbeats in, agent rows and lost agents out; each call is its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._drifting: set[str] = set()
        self._lost: set[str] = set()  # marked lost by this process, not heard from since

    def heartbeats(self, beats: Sequence[Heartbeat], *, received: float) -> None:
        """Record agents' heartbeats in the registry, in one transaction.

        The home gets a beat from every agent every few seconds: one commit (and
        disk sync) for all the beats that arrived together, not one each.

        ``online`` and ``beat`` make the agent ``online``, ``offline`` makes it
        ``offline``. ``last_beat`` is ``received`` (home's clock), ``last_ts``
        the beat's ``ts`` (agent's clock), ``skew`` their difference; a skew
        over :data:`DRIFT_WARNING` seconds logs a warning.

        Raises:
            StoreError: SQLite failed (none of them is recorded).
        """
        rows = [
            (
                beat.origin,
                beat.pid,
                beat.slots,
                beat.busy,
                beat.interval,
                "offline" if beat.phase is Phase.OFFLINE else "online",
                received,
                received,
                beat.ts,
                received - beat.ts,
            )
            for beat in beats
        ]
        with self._db.transaction() as conn:
            conn.executemany(_UPSERT, rows)
        for beat in beats:
            if beat.origin in self._lost:
                self._lost.discard(beat.origin)
                log.warning("agent %s is back: heartbeats again", beat.origin)
            self._warn_drift(beat.origin, received - beat.ts)

    def _warn_drift(self, name: str, skew: float) -> None:
        """Warn once when an agent's clock drifts too far, and once when it is back."""
        if abs(skew) > DRIFT_WARNING and name not in self._drifting:
            self._drifting.add(name)
            log.warning("agent %s: clock differs from the home's by %.1f s", name, skew)
        elif abs(skew) <= DRIFT_WARNING and name in self._drifting:
            self._drifting.discard(name)
            log.info("agent %s: clock back within %.0f s of the home's", name, DRIFT_WARNING)

    def agents(self) -> list[AgentRow]:
        """Every agent ever seen, by name."""
        with self._db.guard("read"):
            rows = self._db.conn.execute(f"SELECT {AgentRow.COLUMNS} FROM agents ORDER BY name")
            return [AgentRow.from_sql(row) for row in rows]

    def mark_lost(self, now: float, *, up_since: float = 0.0) -> list[str]:
        """Mark ``online`` agents silent for longer than
        :data:`~mtpkt.pkts.liveness.LOST_AFTER` intervals ``lost``; committed.

        Args:
            now: the home's clock.
            up_since: when the home started: a beat older than that counts as
                made then, so that agents are not lost merely because the home
                was away (they get two intervals to reach a home just started).

        Returns:
            The names of the agents just marked, sorted.

        Raises:
            StoreError: SQLite failed.
        """
        with self._db.transaction() as conn:
            rows = conn.execute(
                "UPDATE agents SET state = 'lost' WHERE state = 'online'"
                " AND max(last_beat, ?) + ? * interval < ? RETURNING name",
                (up_since, LOST_AFTER, now),
            ).fetchall()
            self._lost.update(str(row[0]) for row in rows)
        return sorted(str(row[0]) for row in rows)

    def record_work(self, figures: Mapping[str, tuple[int, int]], *, now: float) -> None:
        """Record the dispatcher's books of agents (``agent_work``), in one transaction.

        Args:
            figures: ``name → (running, pending)``: run tasks handed out whose
                test is not final yet, and tasks not acknowledged yet.
            now: the home's clock.

        Raises:
            StoreError: SQLite failed.
        """
        with self._db.transaction() as conn:
            conn.executemany(
                _WORK,
                [(name, running, pending, now) for name, (running, pending) in figures.items()],
            )

    def set_grace(self, grace: float) -> None:
        """Record the home's grace for lost agents (``metadat``): the seconds an agent may
        stay lost before its tests become DEAD.

        Raises:
            StoreError: SQLite failed.
        """
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO metadat(var, val) VALUES (?, ?)"
                " ON CONFLICT(var) DO UPDATE SET val = excluded.val",
                (GRACE_VAR, repr(float(grace))),
            )
