"""Every listening endpoint of a real ``mtpkt home`` under hostile input.

Thousands of frames of every family in :mod:`frames` go to the request
endpoint; raw bytes that are not even NNG go to both tcp ports. The home must
answer each frame it can read with a receipt, refuse all of them but the
well-formed control packets it may take, log each refusal with its reason,
never log a traceback, and serve as before afterwards.
"""

import collections
import random
import re
import socket
import struct

import pytest

from mtpkt import pkts
from mtpkt.agents.area.paths import run_root
from mtpkt.agents.homedir import HomeDir
from mtpkt.bus import BusTimeout, Requester
from mtpkt.pkts.link import Heartbeat, Published, Receipt
from tests.support.farm import TARGET, Farm
from tests.support.frames import FAMILIES, SUMMARY, hostile_frames

SEED = 20_261_124
PER_FAMILY = 150
REFUSAL = re.compile(r" WARNING (rejected|refused) .*: \S")


def _raw_tcp(address: str, data: bytes) -> None:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as raw:
        try:
            raw.sendall(data)
            raw.settimeout(0.5)
            raw.recv(64)  # whatever NNG says before it hangs up
        except OSError:
            pass  # reset by the peer: what should happen


def _kinds(frame: bytes, key: bytes) -> str:
    try:
        return ",".join(packet.kind for packet in pkts.decode_batch(frame, key))
    except pkts.PacketError as exc:
        return str(exc)


def _journal(farm: Farm) -> list[tuple[str, str, str, str]]:
    rows = farm.main_query("SELECT kind, target, runname, testpatt FROM journal")
    return [
        (str(kind), str(target), str(runname), str(patt)) for kind, target, runname, patt in rows
    ]


@pytest.mark.timeout(180)
def test_hostile_frames_are_refused_logged_and_the_home_keeps_serving(farm: Farm) -> None:
    farm.start_home()
    home = HomeDir(farm.area)
    key = home.key()
    listen, publish = home.addresses()
    tried: collections.Counter[str] = collections.Counter()
    refused = 0
    taken = []
    with Requester(listen, timeout=10) as requester:
        for family, frame in hostile_frames(SEED, PER_FAMILY, key):
            tried[family] += 1
            reply = pkts.decode_batch(requester.request(frame), key)[0]
            assert isinstance(reply, Receipt | Published), (family, frame[:80])
            if isinstance(reply, Receipt) and reply.error:
                refused += 1
            else:
                taken.append((family, _kinds(frame, key)))
    # Frames NNG itself must drop or the codec refuses unread: over the size limit.
    with Requester(listen, timeout=10) as requester:
        reply = pkts.decode(requester.request(b"\0" * (pkts.MAX_FRAME_SIZE + 1)), key)
        assert isinstance(reply, Receipt)
        assert reply.error.startswith("rejected: oversized frame"), reply
        refused += 1
    with Requester(listen, timeout=2) as requester, pytest.raises(BusTimeout):
        requester.request(b"\0" * (pkts.MAX_FRAME_SIZE + 4096))
    tried["oversized"] += 2
    # Bytes that are not NNG at all, or NNG's handshake with a huge message length after it.
    handshake = b"\x00SP\x00\x00\x30\x00\x00" + struct.pack(">Q", 2**62)
    for address in (listen, publish):
        for data in (random.Random(SEED).randbytes(65_536), handshake, handshake + b"x" * 1000):
            _raw_tcp(address, data)
            tried["raw tcp"] += 1

    total = sum(tried.values())
    families = ", ".join(f"{count} {family}" for family, count in tried.items())
    SUMMARY.append(
        f"home endpoints: {total} hostile inputs ({families});"
        f" {refused} refused, {len(taken)} well-formed packets (signed with the key) taken"
    )
    assert set(FAMILIES) <= set(tried)
    # Taken: well-formed packets (signed with the key) and empty batches, nothing else.
    assert {family for family, kinds in taken if kinds} <= {
        "control with hostile values",
        "other kinds",
    }, taken
    # The control packets journaled name runs whose directories stay in the run tree.
    for kind, target, runname, testpatt in _journal(farm):
        assert run_root(farm.area / "links", target, runname), (kind, target, runname, testpatt)

    # The home still serves: a heartbeat gets its receipt, a run is taken.
    beat = Heartbeat(origin="after-fuzz", phase=pkts.Phase.ONLINE, interval=5.0)
    with Requester(listen, timeout=10) as requester:
        reply = pkts.decode(requester.request(pkts.encode(beat, key)), key)
    assert isinstance(reply, Receipt)
    assert reply.error == ""
    sent = farm.send("run", "-t", TARGET, "-r", "after", "--testpatt", "build")
    assert sent.returncode == 0, sent
    assert farm.processes["home"].poll() is None
    farm.stop("home")
    log = farm.log("home")
    assert "Traceback" not in log
    assert len(REFUSAL.findall(log)) == refused, log[-3000:]
