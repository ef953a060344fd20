"""Fixtures for the bus tests: real NNG sockets, real SQLite files, real threads."""

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host.report import Reporter
from mtpkt.pkts.status import StatusPacket

KEY = b"bus-tests-secret-key-0123456789ab"
REF = TestRef("ubuntu/x86_64", "nightly", "smoke", "a/1")


@pytest.fixture
def key() -> bytes:
    """The area secret both ends sign with."""
    return KEY


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """Register what a test starts (``closing.callback(x.close)``); all of it ends at teardown."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def ipc_address(tmp_path: Path) -> Callable[[str], str]:
    """Factory: an ``ipc://`` address under the test's tmp_path."""

    def make(name: str = "bus") -> str:
        path = tmp_path / f"{name}.ipc"
        assert len(str(path)) < 100, "ipc paths must fit sun_path"
        return f"ipc://{path}"

    return make


@pytest.fixture
def make_packets() -> Callable[..., list[StatusPacket]]:
    """Factory: ``n`` status packets numbered from ``next_seq``, made by a real Reporter."""

    def make(n: int, *, next_seq: int = 1, origin: str = "node7") -> list[StatusPacket]:
        made: list[StatusPacket] = []
        reporter = Reporter(origin, made.append, next_seq=next_seq)
        for index in range(n):
            reporter.step(REF, f"step{index}", pkts.StepState.START)
        return made

    return make
