"""agents.home.peers: heartbeats and pulls with values no agent sends are refused with a reason."""

import math

import pytest

from mtpkt.agents.home.peers import problem
from mtpkt.pkts import Phase
from mtpkt.pkts.link import Heartbeat, Pull


def beat(**fields: object) -> Heartbeat:
    values: dict[str, object] = {"origin": "alpha", "phase": Phase.BEAT, "interval": 2.0}
    return Heartbeat(**{**values, **fields})  # type: ignore[arg-type]


def pull(**fields: object) -> Pull:
    values: dict[str, object] = {"origin": "alpha", "slots": 2, "free": 1}
    return Pull(**{**values, **fields})  # type: ignore[arg-type]


def test_what_agents_send_is_taken() -> None:
    assert problem(beat()) == ""
    assert problem(beat(origin="build7.example.com", slots=64, busy=3)) == ""
    assert problem(pull()) == ""
    assert problem(pull(free=0)) == ""


@pytest.mark.parametrize(
    ("packet", "words"),
    [
        (beat(origin=""), "agent name ''"),
        (beat(origin="../../etc"), "cannot be used as a directory name"),
        (pull(origin=".."), "cannot be used as a directory name"),
        (beat(origin="a\nb"), "is not a host name"),
        (beat(origin="x" * 300), "is not a host name"),
        (beat(interval=0.0), "heartbeat interval 0.0"),
        (beat(interval=-5.0), "heartbeat interval -5.0"),
        (beat(interval=math.inf), "heartbeat interval inf"),
        (beat(interval=1e9), "heartbeat interval"),
        (beat(slots=-1), "must not be negative"),
        (pull(slots=-1, free=-1), "free slots -1"),
        (pull(slots=2, free=3), "free slots 3"),
    ],
)
def test_what_no_agent_sends_is_refused(packet: Heartbeat | Pull, words: str) -> None:
    assert words in problem(packet)
