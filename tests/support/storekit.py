"""Packet builders for the store tests: one Sender per origin, numbering its packets 1, 2, 3 …"""

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw

from mtpkt import pkts
from mtpkt.pkts.link import Heartbeat
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step, TestData
from mtpkt.store import HistoryReader, Store, schema

FIELDS = ("os", "arch")
TARGET = "ubuntu/x86_64"
MakeStore = Callable[..., Store]
"""The ``make_store`` fixture: ``make_store(fields=FIELDS, *, durable=False, path=dbdir)``."""
MakeReader = Callable[..., HistoryReader]
"""The ``make_reader`` fixture: ``make_reader(path=dbdir)``."""

State = pkts.State
Status = pkts.Status
Phase = pkts.Phase
START = pkts.StepState.START
END = pkts.StepState.END


class Sender:
    """Makes status packets as one origin does (seq 1, 2, 3 …) about one run."""

    def __init__(self, origin: str = "node1", target: str = TARGET, runname: str = "nightly"):
        self.origin = origin
        self.target = target
        self.runname = runname
        self._seq = itertools.count(1)

    def _about(self, test: str, item: str) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "seq": next(self._seq),
            "target": self.target,
            "runname": self.runname,
            "test": test,
            "item": item,
        }

    def change(
        self,
        test: str,
        item: str = "",
        state: pkts.State = State.RUNNING,
        status: pkts.Status = Status.NA,
        **extra: Any,
    ) -> StatusChange:
        return StatusChange(**self._about(test, item), state=state, status=status, **extra)

    def step(
        self,
        test: str,
        item: str = "",
        step: str = "build",
        state: pkts.StepState = START,
        status: pkts.Status = Status.NA,
        **extra: Any,
    ) -> Step:
        return Step(**self._about(test, item), step=step, state=state, status=status, **extra)

    def data(
        self, test: str, variable: str, value: str = "", item: str = "", **extra: Any
    ) -> TestData:
        """A row of the test's data, in category ``perf`` unless ``extra`` says otherwise."""
        fields: dict[str, Any] = {"category": "perf", **extra}
        return TestData(**self._about(test, item), variable=variable, value=value, **fields)

    def ack(self, outcome: pkts.AckOutcome = pkts.AckOutcome.ACCEPTED) -> Ack:
        return Ack(origin=self.origin, seq=next(self._seq), ref=pkts.new_id(), outcome=outcome)


def old_run_db(make_store: MakeStore, dbdir: Path, version: int, *statements: str) -> None:
    """Make run 1 of a store (then closed), and replace its database by one as the first
    ``version`` migrations made it, holding the rows ``statements`` insert."""
    store = make_store(path=dbdir)
    store.apply([Sender().change("t", state=State.COMPLETED, status=Status.PASS)])
    store.close()
    path = dbdir / "1.db"
    old = dbdir.parent / f"v{version}.db"
    conn = apsw.Connection(str(old))
    with conn:
        for migration in schema.RUN.migrations[:version]:
            migration(conn, old.name, ())
        conn.execute("INSERT INTO metadat(var, val) VALUES ('schema_version', ?)", (str(version),))
        for statement in statements:
            conn.execute(statement)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    old.rename(path)


def beat(
    name: str, phase: pkts.Phase = Phase.BEAT, ts: float = 100.0, **extra: object
) -> Heartbeat:
    """A heartbeat of agent ``name``: every 10 s, 4 slots, 1 busy, pid 321 unless ``extra``
    says otherwise."""
    fields: dict[str, object] = {"interval": 10.0, "slots": 4, "busy": 1, "pid": 321, **extra}
    return Heartbeat(origin=name, phase=phase, ts=ts, **fields)  # type: ignore[arg-type]


def ids_of(committed: list[tuple[int, StatusPacket]]) -> list[bytes]:
    """The packet ids of ``apply()``'s or ``history()``'s answer, in order."""
    return [packet.id for _, packet in committed]


def seqs_of(committed: list[tuple[int, StatusPacket]]) -> list[int]:
    """The stream sequence numbers of such an answer, in order."""
    return [seq for seq, _ in committed]
