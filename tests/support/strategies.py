"""Hypothesis strategies for packets (derived from the classes' annotations) and frame helpers."""

import enum
import hashlib
import hmac
import types
import typing
from typing import Any

import attrs
import msgpack
from hypothesis import strategies as st

from mtpkt import pkts
from mtpkt.pkts.codec import BODY_OFFSET, MAGIC, SINGLE
from mtpkt.pkts.envelope import Envelope

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _for_type(tp: Any, metadata: typing.Mapping[str, Any]) -> st.SearchStrategy[Any]:
    if tp is str:
        return st.text(max_size=40)
    if tp is int:
        return INT64
    if tp is float:
        return FINITE
    if tp is bool:
        return st.booleans()
    if tp is bytes:
        size = metadata.get("size")
        return st.binary(min_size=size or 0, max_size=size if size is not None else 64)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType):
        (inner,) = (arg for arg in args if arg is not type(None))
        return st.none() | _for_type(inner, metadata)
    if typing.get_origin(tp) is tuple:
        return st.lists(_for_type(args[0], metadata), max_size=5).map(tuple)
    raise AssertionError(f"no strategy for {tp!r}")


def _packet(cls: type[Envelope], fields: dict[str, Any]) -> pkts.Packet:
    packet = cls(**fields)
    assert isinstance(packet, pkts.Packet), cls  # a kind of the codec's registry
    return packet


def packets_of(cls: type[Envelope]) -> st.SearchStrategy[pkts.Packet]:
    """Packets of one kind with every field drawn from its declared type."""
    attrs.resolve_types(cls)
    fields = {
        field.name: _for_type(field.type, field.metadata)
        for field in attrs.fields(cls)
        if field.name != "v"
    }
    strategy = st.fixed_dictionaries(fields)
    if cls is pkts.control.Archive:  # remove and restore exclude each other
        strategy = strategy.filter(lambda f: not (f["remove"] and f["restore"]))
    return strategy.map(lambda f: _packet(cls, f))


KIND_CLASSES = [schema.cls for schema in pkts.KINDS.values()]
any_packet = st.one_of([packets_of(cls) for cls in KIND_CLASSES])


def sign_raw(body: bytes, key: bytes, *, frame_type: int = SINGLE) -> bytes:
    """A correctly signed frame around any body bytes, to reach the checks behind the MAC."""
    header = MAGIC + bytes((1, frame_type))
    return header + hmac.new(key, header + body, hashlib.sha256).digest() + body


# Bodies that are correctly signed (an insider's or a buggy sender's) but are not packets.
msgpack_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def wire_map(packet: pkts.Packet) -> dict[str, object]:
    """The packet's fields as a sender writes them in a single-packet frame, as a map
    (a status packet, written as a row, made a map)."""
    body = msgpack.unpackb(pkts.encode(packet, b"w" * 32)[BODY_OFFSET:])
    if isinstance(body, list):
        return dict(zip(pkts.KINDS[packet.kind].keys, body, strict=True))
    fields: dict[str, object] = body
    return fields
