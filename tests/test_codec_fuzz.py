"""Hostile bytes: whatever arrives, decoding raises only PacketError."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtpkt import pkts
from mtpkt.pkts.codec import MAGIC, SINGLE
from mtpkt.pkts.columns import read_status_frame
from mtpkt.pkts.control import Archive
from mtpkt.pkts.schema import FieldError
from tests.support.strategies import any_packet, msgpack_values, sign_raw, wire_map

KEY = b"k" * 32
DECODERS = (pkts.decode, pkts.decode_batch, pkts.decode_packed, read_status_frame)


def decode_fails_cleanly(frame: bytes) -> None:
    for decode in DECODERS:
        with pytest.raises(pkts.PacketError) as caught:
            decode(frame, KEY)
        assert str(caught.value)
        assert "\n" not in str(caught.value)


@settings(max_examples=2000)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    decode_fails_cleanly(data)


@settings(max_examples=2000)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_behind_a_valid_header(data: bytes) -> None:
    decode_fails_cleanly(MAGIC + bytes((1, SINGLE)) + data)


@settings(max_examples=1000)
@given(st.lists(any_packet, min_size=1, max_size=4), st.data())
def test_truncations(batch: list[pkts.Packet], data: st.DataObject) -> None:
    frame = pkts.encode_batch(batch, KEY)
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    decode_fails_cleanly(frame[:cut])


@settings(max_examples=3000)
@given(any_packet, st.data())
def test_single_bit_flips(packet: pkts.Packet, data: st.DataObject) -> None:
    frame = bytearray(pkts.encode(packet, KEY))
    bit = data.draw(st.integers(min_value=0, max_value=len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    decode_fails_cleanly(bytes(frame))


@settings(max_examples=2000)
@given(msgpack_values)
def test_signed_garbage_bodies(value: object) -> None:
    body = msgpack.packb(value, use_bin_type=True)
    for frame_type in (1, 2, 3):
        frame = sign_raw(body, KEY, frame_type=frame_type)
        for decode in DECODERS:
            try:
                decode(frame, KEY)
            except pkts.PacketError:
                pass  # an empty batch is the one valid body here


@settings(max_examples=3000)
@given(any_packet, st.data(), msgpack_values)
def test_any_field_replaced_by_any_value(
    packet: pkts.Packet, data: st.DataObject, value: object
) -> None:
    """The compiled reader agrees with the reference checker of each field."""
    schema = pkts.KINDS[packet.kind]
    index = data.draw(st.integers(min_value=0, max_value=len(schema.names) - 1))
    name = schema.names[index]
    fields = wire_map(packet)
    fields[name] = value
    frame = sign_raw(msgpack.packb(fields, use_bin_type=True), KEY)
    try:
        expected = schema.checks[index](value)
    except FieldError:
        with pytest.raises(pkts.PacketError, match=f"field '{name}'"):
            pkts.decode(frame, KEY)
        return
    # Beyond the field's own type, only the version range and archive's rule may refuse it.
    if name == "v" and expected != 1:
        refusal: str | None = "unsupported version"
    elif isinstance(packet, Archive) and name in ("remove", "restore") and expected is True:
        other = "restore" if name == "remove" else "remove"
        refusal = "cannot both" if getattr(packet, other) else None
    else:
        refusal = None
    if refusal is not None:
        with pytest.raises(pkts.PacketError, match=refusal):
            pkts.decode(frame, KEY)
        return
    assert getattr(pkts.decode(frame, KEY), name) == expected


@settings(max_examples=500)
@given(any_packet, msgpack_values)
def test_a_wrong_kind_tag_is_rejected(packet: pkts.Packet, value: object) -> None:
    fields = wire_map(packet)
    fields["kind"] = value
    frame = sign_raw(msgpack.packb(fields, use_bin_type=True), KEY)
    if value == packet.kind:
        assert pkts.decode(frame, KEY) == packet
    else:
        with pytest.raises(pkts.PacketError):
            pkts.decode(frame, KEY)


@pytest.mark.parametrize("kind", ["receipt", "step"])
def test_a_version_outside_64_bits_is_named_as_a_bad_field_not_a_version(kind: str) -> None:
    """Found by :func:`test_any_field_replaced_by_any_value`: ``v`` is checked first as a
    version only when it is a valid integer of the wire at all."""
    packet = (
        pkts.link.Receipt(ids=(), error="")
        if kind == "receipt"
        else pkts.status.Step(
            seq=1, target="t", runname="r", test="a", step="s", state=pkts.StepState.START
        )
    )
    for layout in ("map", "row"):
        fields = wire_map(packet)
        fields["v"] = 2**63
        body = fields if layout == "map" else list(fields.values())  # kind first, as a row
        frame = sign_raw(msgpack.packb(body, use_bin_type=True), KEY)
        with pytest.raises(pkts.PacketError, match="field 'v': integer 9223372036854775808"):
            pkts.decode(frame, KEY)
