"""Hostile request frames for a home, by family, from a seeded random source.

Every family is something a stranger, a broken sender or an insider with the
key could put on the home's request endpoint. The frames are made once per
seed, so a failure names a frame that can be made again.
"""

import hashlib
import hmac
import random
import struct
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from mtpkt import pkts
from mtpkt.pkts.codec import BODY_OFFSET, MAGIC
from mtpkt.pkts.control import Archive, Clean, Kill, RerunClean, Run
from mtpkt.pkts.link import Heartbeat, Pull, Query, Task
from mtpkt.pkts.status import StatusChange, Step
from tests.support.strategies import sign_raw

__all__ = ["CONTROL_FIELDS", "FAMILIES", "SUMMARY", "hostile_frames", "nested"]

SUMMARY: list[str] = []
"""One line per hostile test: how many inputs it tried (shown at the end of the session)."""

OTHER_KEY = b"another area's key, 32 bytes ..."
TARGET = "linux/x86"
CONTROL = (Run, Kill, RerunClean, Clean, Archive)

CONTROL_FIELDS: dict[str, object] = {
    "target": TARGET,
    "runname": "fuzzed",
    "testpatt": "build",
    "host": None,
}
"""A control packet's own fields (beyond the envelope), with values the home would take."""

ODD_VALUES: list[object] = [
    None, True, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, float("nan"), float("inf"), "",
    "x" * 70_000, "\udcff".encode("utf-8", "surrogatepass"), b"\x00" * 16, [], {}, [1, [2, [3]]],
    {"kind": "run"}, "../../../../etc", "/etc/passwd", "%/..", "a\x00b",
]  # fmt: skip
"""Values of every msgpack type, and strings that mean trouble as paths."""


def nested(depth: int, *, maps: bool = False) -> bytes:
    """``depth`` arrays (or maps) inside each other, as msgpack bytes, built without recursion."""
    opener = b"\x81\xa1k" if maps else b"\x91"
    return opener * depth + b"\xc0"


def _envelope(kind: str) -> dict[str, object]:
    return {"kind": kind, "v": 1, "id": random.randbytes(16), "ts": 1.0, "origin": "fuzz"}


def _control_map(rng: random.Random) -> dict[str, object]:
    cls = rng.choice(CONTROL)
    return {**_envelope(cls.kind), **CONTROL_FIELDS}


def _packed(value: object) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def _random_bytes(rng: random.Random, key: bytes) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 5, 37, 38, 39, 100, 1000, 65_536)))


def _behind_our_header(rng: random.Random, key: bytes) -> bytes:
    return MAGIC + bytes((1, rng.choice((1, 2, 3)))) + rng.randbytes(rng.randrange(0, 300))


def _wrong_mac(rng: random.Random, key: bytes) -> bytes:
    packet = rng.choice(_valid_packets())
    frame = bytearray(pkts.encode(packet, OTHER_KEY if rng.random() < 0.5 else key))
    if frame[6:BODY_OFFSET] == pkts.encode(packet, key)[6:BODY_OFFSET]:
        frame[6 + rng.randrange(32)] ^= 1 << rng.randrange(8)  # signed right: flip a MAC bit
    return bytes(frame)


def _signed_garbage(rng: random.Random, key: bytes) -> bytes:
    body = rng.choice(
        (rng.randbytes(rng.randrange(1, 200)), _packed(rng.choice(ODD_VALUES)), b"\xc1", b"")
    )
    return sign_raw(body, key, frame_type=rng.choice((1, 2, 3)))


def _deep(rng: random.Random, key: bytes) -> bytes:
    depth = rng.choice((1000, 1023, 1024, 1025, 10_000, 100_000))
    body = nested(depth, maps=rng.random() < 0.5)
    if rng.random() < 0.5:  # the nesting as one field's value of an otherwise good packet
        fields = _control_map(rng)
        name = rng.choice(list(fields))
        del fields[name]
        body = _packed({**fields, name: None})[:-1] + body  # the field last, nil cut off
    return sign_raw(body, key, frame_type=rng.choice((1, 2, 3)))


def _huge_lengths(rng: random.Random, key: bytes) -> bytes:
    """msgpack headers that declare far more than the frame holds."""
    header = rng.choice(
        (
            b"\xdd" + struct.pack(">I", 2**32 - 1),  # array 32
            b"\xdf" + struct.pack(">I", 2**32 - 1),  # map 32
            b"\xdb" + struct.pack(">I", 2**32 - 1),  # str 32
            b"\xc6" + struct.pack(">I", 2**32 - 1),  # bin 32
            b"\xc9" + struct.pack(">I", 2**32 - 1) + b"\x01",  # ext 32
            b"\x92\xc6" + struct.pack(">I", 2**31),  # a batch of one huge bin
        )
    )
    return sign_raw(
        header + rng.randbytes(rng.randrange(0, 64)), key, frame_type=rng.choice((1, 2, 3))
    )


def _wrong_version(rng: random.Random, key: bytes) -> bytes:
    if rng.random() < 0.5:  # the frame's version byte, correctly signed
        body = pkts.encode(rng.choice(_valid_packets()), key)[BODY_OFFSET:]
        header = MAGIC + bytes((rng.choice((0, 2, 255)), 1))
        return header + hmac.new(key, header + body, hashlib.sha256).digest() + body
    fields = _control_map(rng)
    fields["v"] = rng.choice((0, 2, 99, -1, 2**63 - 1))
    return sign_raw(_packed(fields), key)


def _unknown_kind(rng: random.Random, key: bytes) -> bytes:
    fields = _control_map(rng)
    fields["kind"] = rng.choice(("runn", "RUN", "", "shell", "k" * 5000, 7, None, b"run"))
    return sign_raw(_packed(fields), key)


def _wrong_field_types(rng: random.Random, key: bytes) -> bytes:
    fields = _control_map(rng)
    name = rng.choice([*fields, "rerun", "rerun_all", "preclean", "grace", "keep_records"])
    fields[name] = rng.choice(ODD_VALUES)
    if rng.random() < 0.2:
        del fields[rng.choice(list(fields))]
    if rng.random() < 0.1:
        fields["unexpected"] = 1
    return sign_raw(_packed(fields), key)


def _hostile_values(rng: random.Random, key: bytes) -> bytes:
    """Control packets of the right types whose values try to leave the area or the run tree."""
    cls = rng.choice(CONTROL)
    where: dict[str, Any] = {"target": TARGET, "runname": "fuzzed", "testpatt": "build"}
    name = rng.choice(list(where))
    where[name] = rng.choice(
        (
            "..", "../..", "/", "/etc", "linux/../..", "linux/x86/..", "%", "%/%", "../%",
            "build/../../x", "build/%2e%2e", "~build", ",", "", " ", "\x00", "a" * 10_000,
            "linux\x00/x86", "build,../../etc", "/tmp/%", "линукс/x86", "build/\n",
        )
    )  # fmt: skip
    return pkts.encode(cls(**where, host=rng.choice((None, "", "../x", "h" * 300))), key)


def _other_kinds(rng: random.Random, key: bytes) -> bytes:
    """Well-formed packets of kinds a sender should not send, or with values out of range."""
    packet = rng.choice(
        (
            Task(action=pkts.Action.RUN, target=TARGET, runname="x", test="build",
                 control=bytes(16)),
            Query(after=-(2**63), limit=-5, target="../..", runname="%"),
            Query(after=2**63 - 1, limit=2**63 - 1),
            Pull(origin="", slots=-1, free=2**63 - 1, acks=(bytes(16),) * 200),
            Pull(origin="../../etc", slots=0, free=0, running=(bytes(16),)),
            Heartbeat(origin="x" * 10_000, phase=pkts.Phase.ONLINE, interval=-1.0),
            StatusChange(origin="fuzz", seq=1, target="/etc", runname="..", test="..", item="/",
                         state=pkts.State.RUNNING, status=pkts.Status.NA),
            Step(origin="fuzz", seq=1, target="a/b/c/d", runname="r", test="t", item="",
                 step="s", state=pkts.StepState.START, status=pkts.Status.NA),
        )
    )  # fmt: skip
    if rng.random() < 0.5:
        return pkts.encode_batch([packet, rng.choice(_valid_packets())], key)
    return pkts.encode(packet, key)


def _valid_packets() -> list[pkts.Packet]:
    return [
        Heartbeat(origin="fuzz", phase=pkts.Phase.ONLINE, interval=5.0),
        Run(target=TARGET, runname="fuzzed", testpatt="build"),
        Kill(target=TARGET, runname="fuzzed"),
        Query(after=0, limit=10),
    ]


Family = Callable[[random.Random, bytes], bytes]
FAMILIES: dict[str, Family] = {
    "random bytes": _random_bytes,
    "random bytes behind our header": _behind_our_header,
    "wrong MAC": _wrong_mac,
    "valid MAC over garbage": _signed_garbage,
    "deep nesting": _deep,
    "huge declared lengths": _huge_lengths,
    "wrong version": _wrong_version,
    "unknown kind": _unknown_kind,
    "control with wrong field types": _wrong_field_types,
    "control with hostile values": _hostile_values,
    "other kinds": _other_kinds,
}


def hostile_frames(seed: int, per_family: int, key: bytes) -> Iterator[tuple[str, bytes]]:
    """``per_family`` frames of every family, interleaved, as ``(family, frame)``."""
    rng = random.Random(seed)
    random.seed(seed)  # packet ids and the like
    for _ in range(per_family):
        for family, make in FAMILIES.items():
            yield family, make(rng, key)
