"""The signed msgpack codec: round trips, and one clear PacketError for every fault."""

import hashlib
import hmac
import os

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtpkt import pkts
from mtpkt.pkts.codec import BATCH, BODY_OFFSET, HEADER_SIZE, MAGIC, PACKED, SINGLE
from mtpkt.pkts.control import Archive, Run
from mtpkt.pkts.status import Ack, Step
from tests.support.strategies import KIND_CLASSES, any_packet, packets_of, sign_raw, wire_map

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def sign(body_object: object, *, frame_type: int = SINGLE) -> bytes:
    """A correctly signed frame around any msgpack value."""
    return sign_raw(msgpack.packb(body_object, use_bin_type=True), KEY, frame_type=frame_type)


def run_packet() -> Run:
    return Run(target="ubuntu/x86_64", runname="nightly")


def step_packet() -> Step:
    return Step(
        seq=7,
        target="ubuntu/x86_64",
        runname="nightly",
        test="runfirst",
        item="a/1",
        step="compile",
        state=pkts.StepState.END,
        status=pkts.Status.FAIL,
        exit_code=2,
        logfile="compile.log",
        duration=1.25,
    )


@pytest.mark.parametrize("cls", KIND_CLASSES, ids=lambda cls: cls.kind)
@settings(max_examples=150)
@given(data=st.data())
def test_every_kind_round_trips(cls: type[pkts.Envelope], data: st.DataObject) -> None:
    packet = data.draw(packets_of(cls))
    assert pkts.decode(pkts.encode(packet, KEY), KEY) == packet
    assert pkts.decode_batch(pkts.encode(packet, KEY), KEY) == [packet]


@settings(max_examples=200)
@given(st.lists(any_packet, max_size=20))
def test_batches_round_trip_in_order(batch: list[pkts.Packet]) -> None:
    assert pkts.decode_batch(pkts.encode_batch(batch, KEY), KEY) == batch


def test_the_design_kinds_megatests_run_kinds_and_the_link_kinds() -> None:
    assert set(pkts.KINDS) == {
        "run", "kill", "rerunclean", "clean", "archive", "setstate", "setrun",
        "ack", "step", "status_change",
        "test_data", "heartbeat", "receipt", "query", "published", "pull", "task",
    }  # fmt: skip


def test_pack_seal_unpack_build_the_same_frames_as_encode_batch() -> None:
    packets: list[pkts.Packet] = [run_packet(), step_packet()]
    maps = [pkts.pack(packet) for packet in packets]
    assert [pkts.unpack(m) for m in maps] == packets
    assert pkts.seal(maps, KEY) == pkts.encode_batch(packets, KEY)
    with pytest.raises(pkts.PacketError, match="stored packet is not valid msgpack"):
        pkts.unpack(b"\xc1")


def test_envelope_defaults_are_fresh_and_filled() -> None:
    first, second = run_packet(), run_packet()
    assert first.id != second.id
    assert len(first.id) == pkts.ID_SIZE
    assert first.v == 1
    assert "@" in first.origin
    assert first.ts > 1.7e9


def test_wire_map_names_every_field_and_the_kind() -> None:
    packet = step_packet()
    fields = wire_map(packet)
    assert list(fields) == ["kind", *pkts.KINDS["step"].names]
    assert fields["kind"] == "step"
    assert fields["id"] == packet.id
    assert fields["status"] == "FAIL"
    assert fields["state"] == "end"


def test_enum_fields_travel_as_megatest_words() -> None:
    packet = Run(target="t/x", runname="r", rerun=(pkts.Status.FAIL, pkts.Status.NA))
    assert wire_map(packet)["rerun"] == ["FAIL", "n/a"]


def test_a_frame_signed_with_another_key_is_rejected() -> None:
    frame = pkts.encode(step_packet(), OTHER_KEY)
    with pytest.raises(pkts.PacketError, match="bad MAC"):
        pkts.decode(frame, KEY)
    with pytest.raises(pkts.PacketError, match="bad MAC"):
        pkts.decode_batch(pkts.encode_batch([step_packet()], OTHER_KEY), KEY)


def test_the_error_keeps_the_offending_bytes() -> None:
    frame = pkts.encode(step_packet(), OTHER_KEY)
    with pytest.raises(pkts.PacketError) as caught:
        pkts.decode(frame, KEY)
    assert caught.value.data == frame
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: {k: v for k, v in f.items() if k != "runname"}, "missing field 'runname'"),
        (lambda f: {**f, "colour": "red"}, "unknown field 'colour'"),
        (lambda f: {**f, "kind": "explode"}, "unknown kind 'explode'"),
        (lambda f: {k: v for k, v in f.items() if k != "kind"}, "missing or non-string 'kind'"),
        (lambda f: {**f, "kind": 3}, "missing or non-string 'kind'"),
        (lambda f: {**f, "seq": "7"}, "field 'seq': expected int, got str"),
        (lambda f: {**f, "seq": True}, "field 'seq': expected int, got bool"),
        (lambda f: {**f, "status": "GREAT"}, "field 'status': 'GREAT' is not one of"),
        (lambda f: {**f, "state": 1}, "field 'state': int is not one of"),
        (lambda f: {**f, "id": b"short"}, "field 'id': expected 16 bytes, got 5"),
        (lambda f: {**f, "id": "x" * 16}, "field 'id': expected bin, got str"),
        (lambda f: {**f, "ts": float("nan")}, "field 'ts': expected a finite float"),
        (lambda f: {**f, "duration": "long"}, "field 'duration': expected float, got str"),
        (lambda f: {**f, "exit_code": 2**64 - 1}, "outside the signed 64-bit range"),
        (lambda f: {**f, "v": 3}, "unsupported version v=3"),
        (lambda f: {**f, "v": 0}, "unsupported version v=0"),
        (lambda f: {**f, "v": "1"}, "field 'v': expected int"),
        (lambda f: {**f, "logfile": msgpack.ExtType(5, b"x")}, "expected str, got ExtType"),
    ],
)
def test_bad_fields_give_one_line_reasons(mutate: object, reason: str) -> None:
    frame = sign(mutate(wire_map(step_packet())))  # type: ignore[operator]
    with pytest.raises(pkts.PacketError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        pkts.decode(frame, KEY)


def test_archive_cannot_both_remove_and_restore() -> None:
    with pytest.raises(ValueError, match="cannot both"):
        Archive(target="t", runname="r", remove=True, restore=True)
    fields = wire_map(Archive(target="t", runname="r", remove=True))
    with pytest.raises(pkts.PacketError, match="cannot both"):
        pkts.decode(sign({**fields, "restore": True}), KEY)


def test_ints_are_accepted_for_float_fields() -> None:
    frame = sign({**wire_map(step_packet()), "duration": 3})
    packet = pkts.decode(frame, KEY)
    assert isinstance(packet, Step)
    assert packet.duration == 3.0
    assert isinstance(packet.duration, float)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "truncated frame: 0 bytes"),
        (MAGIC, "truncated frame"),
        (b"XXXX" + bytes(40), "bad magic"),
        (MAGIC + bytes((9, SINGLE)) + bytes(40), "unsupported frame version 9"),
        (MAGIC + bytes((1, 7)) + bytes(40), "unknown frame type 0x07"),
        (b"M" * (pkts.MAX_FRAME_SIZE + 1), "oversized frame"),
    ],
)
def test_broken_frames_are_named(frame: bytes, reason: str) -> None:
    with pytest.raises(pkts.PacketError, match=reason):
        pkts.decode(frame, KEY)


def test_bodies_that_are_not_packets() -> None:
    cases = {
        sign_raw(b"\xc1", KEY): "body is not valid msgpack",
        sign_raw(b"\xa1\xff", KEY): "body is not valid msgpack",  # a str of invalid UTF-8
        sign_raw(msgpack.packb({"kind": "run"}) + b"\x00", KEY): "body is not valid msgpack",
        sign([1, 2]): "packet: missing or non-string 'kind'",
        sign(5): "packet: expected a map or an array, got int",
        sign({"kind": "run"}, frame_type=BATCH): "batch body must be an array",
        sign(
            [wire_map(step_packet()), 5], frame_type=BATCH
        ): "packet 1: expected a map or an array",
        sign({"kind": "run"}, frame_type=PACKED): "batch body must be an array",
        sign([pkts.pack(step_packet()), 5], frame_type=PACKED): "array of bin",
        sign([pkts.pack(step_packet()), b"\xc1"], frame_type=PACKED): "packet 1 is not valid",
        sign([b"\x95"], frame_type=PACKED): "packet 0 is not valid msgpack",
    }
    for frame, reason in cases.items():
        with pytest.raises(pkts.PacketError, match=reason):
            pkts.decode_batch(frame, KEY)


def test_deeply_nested_msgpack_is_rejected() -> None:
    frame = sign_raw(b"\x91" * 100_000 + b"\xc0", KEY)
    with pytest.raises(pkts.PacketError, match="body is not valid msgpack"):
        pkts.decode(frame, KEY)


def test_decode_wants_a_single_frame() -> None:
    with pytest.raises(pkts.PacketError, match="got a batch"):
        pkts.decode(pkts.encode_batch([run_packet()], KEY), KEY)


def test_encode_refuses_what_decode_would_refuse() -> None:
    bad = Step(
        seq="7",  # type: ignore[arg-type]
        target="t",
        runname="r",
        test="x",
        step="s",
        state=pkts.StepState.START,
    )
    with pytest.raises(pkts.PacketError, match="field 'seq': expected int"):
        pkts.encode(bad, KEY)
    with pytest.raises(pkts.PacketError, match="cannot encode packet"):
        pkts.encode(Run(target="\ud800", runname="r"), KEY)
    with pytest.raises(pkts.PacketError, match="not a packet kind: Envelope"):
        pkts.encode(pkts.Envelope(), KEY)  # type: ignore[arg-type]


def test_size_limit_applies_to_encoding_too() -> None:
    big = Run(target="t", runname="r", testpatt="x" * 5000)
    with pytest.raises(pkts.PacketError, match="exceeds the limit of 1000 bytes"):
        pkts.encode(big, KEY, max_size=1000)
    frame = pkts.encode(big, KEY)
    with pytest.raises(pkts.PacketError, match="oversized frame"):
        pkts.decode(frame, KEY, max_size=1000)


def test_short_keys_are_refused() -> None:
    with pytest.raises(pkts.PacketError, match="at least 16 bytes"):
        pkts.encode(run_packet(), b"short")
    with pytest.raises(pkts.PacketError, match="at least 16 bytes"):
        pkts.decode(pkts.encode(run_packet(), KEY), b"short")


def test_frame_layout_is_as_documented() -> None:
    frame = pkts.encode(Ack(seq=1, ref=os.urandom(16), outcome=pkts.AckOutcome.ACCEPTED), KEY)
    assert frame[:4] == b"MTPK"
    assert frame[4] == 1
    assert frame[5] == SINGLE
    mac = hmac.new(KEY, frame[:HEADER_SIZE] + frame[BODY_OFFSET:], hashlib.sha256).digest()
    assert frame[HEADER_SIZE:BODY_OFFSET] == mac


@settings(max_examples=200)
@given(st.lists(any_packet, max_size=10))
def test_decode_packed_gives_the_packets_and_their_own_maps(batch: list[pkts.Packet]) -> None:
    for frame in (pkts.encode_batch(batch, KEY), *(pkts.encode(p, KEY) for p in batch[:1])):
        result = pkts.decode_packed(frame, KEY)
        assert [packet for packet, _ in result] == pkts.decode_batch(frame, KEY)
        assert [raw for _, raw in result] == [pkts.pack(packet) for packet, _ in result]


def test_decoded_packets_are_as_frozen_as_constructed_ones() -> None:
    decoded = pkts.decode(pkts.encode(step_packet(), KEY), KEY)
    assert isinstance(decoded, Step)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        decoded.seq = 8  # type: ignore[misc]
    assert hash(decoded) == hash(attrs.evolve(decoded))
