"""The books a fault test keeps: what each agent sent, what the home committed.

``sent`` is read from each agent's own spool (its next sequence number, less
one): every status packet an agent makes is numbered there before it is sent.
``committed`` is every history row of the area's databases (``main.db`` holds
the acks, each ``<run_id>.db`` a run's packets). A packet is *lost* when its
number never reached a history row, *doubled* when it reached two. Every test of
this directory records its counts with :func:`record`; the conftest prints them
all at the end of the session.
"""

from collections import Counter
from pathlib import Path

import attrs

from tests.support.dbs import rows

__all__ = ["Books", "books", "record", "recorded", "tracebacks"]

_RECORDED: list["Books"] = []


@attrs.frozen(kw_only=True)
class Books:
    """One fault's counts of status packets."""

    fault: str
    sent: int
    committed: int
    pending: int  # still in an agent's spool at the end: neither lost nor committed
    lost: int
    doubled: int
    detail: str = ""  # what else the test checked, one line

    def line(self) -> str:
        text = (
            f"{self.fault}: sent {self.sent}, committed {self.committed}, "
            f"lost {self.lost}, doubled {self.doubled}"
        )
        if self.pending:
            text += f", still spooled {self.pending}"
        return f"{text}; {self.detail}" if self.detail else text


def _spool(path: Path) -> tuple[int, int]:
    """(packets numbered, packets still waiting) of one agent's spool."""
    ((next_seq, waiting),) = rows(
        path,
        "SELECT (SELECT value FROM meta WHERE key = 'next_seq'), (SELECT count(*) FROM packets)",
    )
    assert isinstance(next_seq, int), next_seq
    assert isinstance(waiting, int), waiting
    return next_seq - 1, waiting


def _history(dbdir: Path) -> Counter[tuple[str, int]]:
    """How many history rows each (origin, origin seq) has, over every database."""
    counted: Counter[tuple[str, int]] = Counter()
    for path in sorted(dbdir.glob("*.db")):
        for origin, seq in rows(path, "SELECT origin, origin_seq FROM history"):
            assert isinstance(seq, int), seq
            counted[(str(origin), seq)] += 1
    return counted


def books(fault: str, area: Path, agents: list[str], detail: str = "") -> Books:
    """Count the status packets of ``agents`` (stopped: their spools are closed).

    Args:
        fault: the fault injected, as the summary names it.
        area: the area whose ``.mtpkt/`` holds the spools and databases.
        agents: the agents' names.
        detail: one line on what else the test checked.
    """
    rows = _history(area / ".mtpkt/db")
    sent = committed = pending = lost = doubled = 0
    for name in agents:
        numbered, waiting = _spool(area / ".mtpkt/agents" / name / "spool.db")
        sent += numbered
        pending += waiting
        mine = {seq: count for (origin, seq), count in rows.items() if origin == name}
        committed += sum(mine.values())
        doubled += sum(count - 1 for count in mine.values())
        lost += sum(1 for seq in range(1, numbered + 1) if seq not in mine)
        strays = [seq for seq in mine if not 1 <= seq <= numbered]
        assert not strays, f"{name}: committed seqs it never numbered: {strays[:10]}"
    lost -= pending  # a packet still spooled is late, not lost
    return Books(
        fault=fault,
        sent=sent,
        committed=committed,
        pending=pending,
        lost=lost,
        doubled=doubled,
        detail=detail,
    )


def record(result: Books) -> Books:
    """Keep ``result`` for the session's summary, and check that nothing was lost or doubled."""
    _RECORDED.append(result)
    print(result.line())
    assert result.sent > 0, result.line()
    assert result.lost == 0, result.line()
    assert result.doubled == 0, result.line()
    return result


def recorded() -> list[Books]:
    """Every fault's books so far, in the order the tests ran."""
    return list(_RECORDED)


def tracebacks(logs: Path) -> list[str]:
    """The logs in ``logs`` that hold a Python traceback (a fault must not make any)."""
    return sorted(log.name for log in logs.glob("*.log") if "Traceback" in log.read_text())
