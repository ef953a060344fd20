"""STALE: a run's COMPLETED tests, once a later plan of the run resolves its configs differently.

When the home plans a ``run`` or ``rerunclean`` (:mod:`~mtpkt.agents.home.launches`),
:func:`check` resolves the configs the plan read and compares them with the
run's cache in ``$MT_RUNPATH`` (:mod:`mtpkt.agents.area.configcache`). When
something changed, every COMPLETED test of the run becomes STALE
(:func:`stale_records`), whichever config changed: its result was had with
configs that no longer hold. The comment says what changed
(``configs changed: runconfigs.config [linux/x86] GREETING``). Not marked:
an itemized test's toplevel record (it is the roll-up of its items), and a
test another launch is running.

So a plain ``run`` runs them again (it leaves only COMPLETED, KILLED, STUCK
and ARCHIVED tests alone: :func:`~mtpkt.pkts.outcome.left_alone_by_run`),
while a ``rerunclean`` runs again only those that ended badly and leaves the
others STALE (:func:`~mtpkt.pkts.outcome.rerun_by_rerunclean`).

The cache is written (:func:`save`) after the records are committed, so a
home that stops in between compares with the old cache again when it picks
the packet up, and marks what is still COMPLETED.
"""

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

import attrs

from mtpkt.agents.area import Plan, TestRef
from mtpkt.agents.area.configcache import (
    CACHE_NAME,
    Change,
    Resolved,
    changes,
    decode,
    describe,
    encode,
    resolve,
)
from mtpkt.agents.home.books import record
from mtpkt.agents.home.own import OwnPackets
from mtpkt.pkts import State
from mtpkt.pkts.status import StatusPacket
from mtpkt.store.files import atomic_write
from mtpkt.store.rows import TestRow

__all__ = ["ConfigCheck", "check", "load", "save", "stale_records"]

_log = logging.getLogger(__name__)


@attrs.frozen
class ConfigCheck:
    """A plan's configs, resolved, and what changed since the run's cache."""

    target: str
    runname: str
    runpath: Path
    resolved: Resolved
    cached: Resolved | None
    """The run's cache as it was (None: the run had none)."""
    changed: tuple[Change, ...]

    @property
    def comment(self) -> str:
        """Why the run's tests are STALE (:func:`~mtpkt.agents.area.configcache.describe`)."""
        return describe(self.changed)


def load(runpath: Path, target: str, runname: str) -> Resolved | None:
    """The run's cache; None when it has none, or one that cannot be used (a warning says
    why; the next :func:`save` replaces it)."""
    path = runpath / CACHE_NAME
    try:
        return decode(path.read_bytes(), target, runname)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        _log.warning("%s: the run's cached configs cannot be used (%s): none compared", path, exc)
        return None


def check(plan: Plan) -> ConfigCheck:
    """Resolve the plan's configs and compare them with the run's cache."""
    resolved = resolve(plan.configs)
    cached = load(plan.run_root, plan.target, plan.runname)
    changed = tuple(changes(cached, resolved)) if cached is not None else ()
    return ConfigCheck(plan.target, plan.runname, plan.run_root, resolved, cached, changed)


def stale_records(
    own: OwnPackets,
    done: ConfigCheck,
    rows: Mapping[TestRef, TestRow],
    running: Collection[TestRef],
) -> list[StatusPacket]:
    """The STALE records of the run's COMPLETED tests when its configs changed, their status
    and host kept (call with the commit lock held).

    Args:
        own: makes the records.
        done: the plan's :func:`check`.
        rows: the run's records.
        running: instances another launch has in hand (left to it).
    """
    if not done.changed:
        return []
    itemized = {ref.test for ref in rows if ref.item}
    stale: list[StatusPacket] = []
    for ref, row in rows.items():
        known = record(row)
        if known is None or known[0] is not State.COMPLETED or ref in running:
            continue
        if not ref.item and ref.test in itemized:
            continue  # a roll-up of its items, which go STALE themselves
        stale.append(own.change(ref, State.STALE, known[1], done.comment, row.host))
    if stale:
        _log.info(
            "run %s/%s: %d COMPLETED test instance(s) now STALE: %s",
            done.target,
            done.runname,
            len(stale),
            done.comment,
        )
    return stale


def save(done: ConfigCheck) -> None:
    """Write the plan's configs into the run's cache (the testconfigs of tests it did not plan
    are kept); a failure is a warning: the next plan then compares with the old cache."""
    configs = {**(done.cached or {}), **done.resolved}
    path = done.runpath / CACHE_NAME
    try:
        done.runpath.mkdir(parents=True, exist_ok=True)  # a rerunclean may have emptied it
        atomic_write(path, encode(done.target, done.runname, configs))
    except OSError as exc:
        _log.warning("%s: cannot keep the run's resolved configs: %s", path, exc)
