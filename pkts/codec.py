"""The one codec: packets to signed msgpack frames and back.

A frame is::

    magic "MTPK" | frame version (1 byte) | frame type (1 byte) | HMAC-SHA256 (32 bytes) | body

The MAC covers the 6 header bytes and the body, keyed with the area's secret.
The body is one packet (frame type ``0x01``), an array of packets (``0x02``,
a batch), or an array of bins, each one packet packed on its own (``0x03``, a
packed batch: what :func:`seal` and :func:`encode_batch` write, so that a
receiver can keep or forward each packet's bytes as they came).

A packet is a msgpack map of its fields, or a row: an array of the same
values in declared order, ``kind`` first. Both are read for every kind;
status packets, the bulk of the traffic, are written as rows (smaller and
quicker to read), every other kind as maps. ``docs/packets.md`` describes
every field.

Every failure to read a frame raises :class:`PacketError` with a one-line
reason; nothing else escapes :func:`decode` or :func:`decode_batch`.
"""

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias, cast

import msgpack

from mtpkt.pkts.control import Archive, Clean, Control, Kill, RerunClean, Run, SetRun, SetState
from mtpkt.pkts.envelope import Envelope
from mtpkt.pkts.link import Heartbeat, Link, Published, Pull, Query, Receipt, Task
from mtpkt.pkts.schema import FieldError, KindSchema, schema_of
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step, TestData

__all__ = [
    "FRAME_VERSION",
    "HEADER_SIZE",
    "KINDS",
    "MAGIC",
    "MAX_FRAME_SIZE",
    "MAX_PACKET_SIZE",
    "MIN_KEY_SIZE",
    "ROW_KINDS",
    "BadMac",
    "Packet",
    "PacketError",
    "decode",
    "decode_batch",
    "decode_packed",
    "encode",
    "encode_batch",
    "open_packed",
    "pack",
    "seal",
    "unpack",
]

MAGIC: Final = b"MTPK"
FRAME_VERSION: Final = 1
SINGLE: Final = 0x01
BATCH: Final = 0x02
PACKED: Final = 0x03
MAC_SIZE: Final = 32
HEADER_SIZE: Final = len(MAGIC) + 2
BODY_OFFSET: Final = HEADER_SIZE + MAC_SIZE
MAX_FRAME_SIZE: Final = 4 * 1024 * 1024
"""Largest frame accepted or produced by default (bytes). Sockets set ``recv_max_size`` to it."""
MAX_PACKET_SIZE: Final = MAX_FRAME_SIZE - 256
"""Largest packed status packet: one that fits a frame on its own, also with the
``published`` header the live stream puts before it."""
MIN_KEY_SIZE: Final = 16

Packet: TypeAlias = Control | StatusPacket | Link
"""Every packet kind."""

KINDS: Final[dict[str, KindSchema]] = {
    cls.kind: schema_of(cls)
    for cls in (
        *(Run, Kill, RerunClean, Clean, Archive, SetState, SetRun),
        *(Ack, Step, StatusChange, TestData),
        *(Heartbeat, Receipt, Query, Published, Pull, Task),
    )
}
"""Every packet kind by its tag."""

ROW_KINDS: Final = frozenset({Ack.kind, Step.kind, StatusChange.kind, TestData.kind})
"""Kinds written as rows rather than maps (both are read for every kind)."""

_HEADERS: Final = {
    frame_type: MAGIC + bytes((FRAME_VERSION, frame_type)) for frame_type in (SINGLE, BATCH, PACKED)
}
_FRAME_TYPE_NAMES: Final = {SINGLE: "single packet", BATCH: "batch", PACKED: "packed batch"}


class PacketError(Exception):
    """A frame or packet that cannot be encoded or decoded.

    ``str(error)`` is a one-line reason; :attr:`data` keeps the offending bytes.
    """

    def __init__(self, reason: str, data: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        """One line saying what is wrong."""
        self.data = data
        """The frame (or as much of it as there was) that could not be read."""


class BadMac(PacketError):
    """A frame whose MAC does not verify: signed with another area's key, or corrupted.

    Told apart from other faults because a peer that keeps answering with it
    will never be understood without another key (``mtpkt agent`` stops on it).
    """


def _mac(key: bytes, header: bytes, body: bytes) -> bytes:
    digest = hmac.new(key, header, hashlib.sha256)
    digest.update(body)
    return digest.digest()


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_SIZE:
        raise PacketError(f"signing key must be at least {MIN_KEY_SIZE} bytes")


def _to_wire(packet: Envelope) -> dict[str, object] | list[object]:
    """The packet's map, or its row for a kind of :data:`ROW_KINDS`."""
    schema = KINDS.get(getattr(type(packet), "kind", ""))
    if schema is None or schema.cls is not type(packet):
        raise PacketError(f"not a packet kind: {type(packet).__name__}")
    try:
        return schema.to_row(packet) if schema.cls.kind in ROW_KINDS else schema.to_map(packet)
    except FieldError as exc:
        raise PacketError(f"cannot encode {schema.cls.kind!r} packet: {exc}") from None


def _seal(frame_type: int, body_object: object, key: bytes, max_size: int) -> bytes:
    _check_key(key)
    try:
        body: bytes = msgpack.packb(body_object, use_bin_type=True)
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. lone surrogates in a str
        raise PacketError(f"cannot encode packet: {exc}") from None
    header = _HEADERS[frame_type]
    size = BODY_OFFSET + len(body)
    if size > max_size:
        raise PacketError(f"frame of {size} bytes exceeds the limit of {max_size} bytes")
    return header + _mac(key, header, body) + body


def encode(packet: Packet, key: bytes, *, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """Encode one packet as a signed frame.

    Args:
        packet: any packet kind (:data:`pkts.Packet`).
        key: the area's secret, at least 16 bytes.
        max_size: refuse to produce a frame larger than this many bytes.

    Returns:
        The frame bytes.

    Raises:
        PacketError: a field holds a value of the wrong type, or the frame is too large.
    """
    return _seal(SINGLE, _to_wire(packet), key, max_size)


def encode_batch(packets: Iterable[Packet], key: bytes, *, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """Encode many packets (of any kinds) as one signed packed batch frame.

    Raises:
        PacketError: as for :func:`encode`.
    """
    return seal([pack(packet) for packet in packets], key, max_size=max_size)


def pack(packet: Packet) -> bytes:
    """One packet's msgpack map or row, unsigned: what spools and histories store.

    Raises:
        PacketError: a field holds a value of the wrong type.
    """
    try:
        packed: bytes = msgpack.packb(_to_wire(packet), use_bin_type=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PacketError(f"cannot encode packet: {exc}") from None
    return packed


def seal(packed: Sequence[bytes], key: bytes, *, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """A signed packed batch frame of packets already packed with :func:`pack`.

    Raises:
        PacketError: the frame would be too large, or the key is too short.
    """
    _check_key(key)
    body: bytes = msgpack.packb(packed, use_bin_type=True)
    size = BODY_OFFSET + len(body)
    if size > max_size:
        raise PacketError(f"frame of {size} bytes exceeds the limit of {max_size} bytes")
    header = _HEADERS[PACKED]
    return header + _mac(key, header, body) + body


def unpack(data: bytes) -> Packet:
    """Read one packet map made by :func:`pack` (a store's own copy: no frame, no MAC).

    Raises:
        PacketError: it is not a valid packet.
    """
    try:
        wire = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types; all mean "not our msgpack"
        raise PacketError(f"stored packet is not valid msgpack: {exc}", data) from None
    return _from_wire(wire, data, "stored packet")


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _unpack_body(body: bytes, data: bytes) -> object:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types; all mean "not our msgpack"
        raise PacketError(f"body is not valid msgpack: {_first_line(exc)}", data) from None


def _open(data: bytes, key: bytes, max_size: int) -> tuple[int, object]:
    """Check a frame's size, header and MAC; return its type and unpacked body."""
    frame_type, body = _open_header(data, key, max_size)
    return frame_type, _unpack_body(body, bytes(data))


def _open_header(data: bytes, key: bytes, max_size: int) -> tuple[int, bytes]:
    """Check a frame's size, header and MAC; return its type and its body bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PacketError(f"frame must be bytes, not {type(data).__name__}")
    data = bytes(data)
    _check_key(key)
    if len(data) < BODY_OFFSET + 1:
        raise PacketError(
            f"truncated frame: {len(data)} bytes, a frame has at least {BODY_OFFSET + 1}", data
        )
    if len(data) > max_size:
        raise PacketError(f"oversized frame: {len(data)} bytes, limit {max_size}", data[:64])
    if data[:4] != MAGIC:
        raise PacketError("not an mtpkt frame (bad magic)", data)
    if data[4] != FRAME_VERSION:
        raise PacketError(
            f"unsupported frame version {data[4]} (this build reads {FRAME_VERSION})", data
        )
    frame_type = data[5]
    if frame_type not in _FRAME_TYPE_NAMES:
        raise PacketError(f"unknown frame type 0x{frame_type:02x}", data)
    header, mac, body = data[:HEADER_SIZE], data[HEADER_SIZE:BODY_OFFSET], data[BODY_OFFSET:]
    if not hmac.compare_digest(mac, _mac(key, header, body)):
        raise BadMac("bad MAC (signed with another key, or corrupted)", data)
    return frame_type, body


def _from_wire(wire: object, data: bytes, position: str) -> Packet:
    """The packet of a decoded map or row."""
    if type(wire) is dict:
        kind = wire.get("kind")
    elif type(wire) is list:
        kind = wire[0] if wire else None
    else:
        shown = type(wire).__name__
        raise PacketError(f"{position}: expected a map or an array, got {shown}", data)
    if not isinstance(kind, str):
        raise PacketError(f"{position}: missing or non-string 'kind'", data)
    schema = KINDS.get(kind)
    if schema is None:
        raise PacketError(f"{position}: unknown kind {kind[:40]!r}", data)
    try:
        if type(wire) is dict:
            return cast(Packet, schema.read(wire))
        return cast(Packet, schema.read_row(cast(list[object], wire)))
    except (FieldError, ValueError, TypeError) as exc:
        raise PacketError(f"{position} ({kind!r}): {exc}", data) from None


def _packed_body(body: bytes, data: bytes) -> list[bytes]:
    """The packets' bins of a packed batch's body."""
    packed = _unpack_body(body, data)
    if type(packed) is not list:
        raise PacketError(f"packed batch body must be an array, got {type(packed).__name__}", data)
    if not set(map(type, packed)) <= {bytes}:
        raise PacketError("packed batch body must be an array of bin", data)
    return packed


def _from_packed(packed: bytes, data: bytes, position: str) -> Packet:
    try:
        wire = msgpack.unpackb(packed, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types; all mean "not our msgpack"
        raise PacketError(f"{position} is not valid msgpack: {_first_line(exc)}", data) from None
    return _from_wire(wire, data, position)


def open_packed(data: bytes, key: bytes, *, max_size: int = MAX_FRAME_SIZE) -> list[bytes] | None:
    """Check a frame and return its packets' bins if it is a packed batch, else ``None``.

    The bins are not read: see :func:`pkts.columns.read_status_frame` for the collector's way.

    Raises:
        PacketError: for any fault in the frame (other than its packets' contents).
    """
    frame_type, body = _open_header(data, key, max_size)
    if frame_type != PACKED:
        return None
    return _packed_body(body, bytes(data))


def decode(data: bytes, key: bytes, *, max_size: int = MAX_FRAME_SIZE) -> Packet:
    """Decode and verify a single-packet frame.

    Args:
        data: the frame as received.
        key: the area's secret the sender signed with.
        max_size: frames larger than this are refused unread.

    Returns:
        The packet, one of the kinds of :data:`pkts.Packet`.

    Raises:
        PacketError: for any fault in the frame; the reason says which.
    """
    frame_type, body = _open(data, key, max_size)
    if frame_type != SINGLE:
        raise PacketError("expected a single-packet frame, got a batch", bytes(data))
    return _from_wire(body, bytes(data), "packet")


def decode_batch(data: bytes, key: bytes, *, max_size: int = MAX_FRAME_SIZE) -> list[Packet]:
    """Decode and verify a frame of packets (a batch, or a single packet as a batch of one).

    Raises:
        PacketError: for any fault in the frame; one bad packet rejects the whole frame.
    """
    frame_type, body = _open(data, key, max_size)
    raw = bytes(data)
    if frame_type == SINGLE:
        return [_from_wire(body, raw, "packet")]
    if not isinstance(body, list):
        raise PacketError(f"batch body must be an array, got {type(body).__name__}", raw)
    if frame_type == PACKED:
        if not set(map(type, body)) <= {bytes}:
            raise PacketError("packed batch body must be an array of bin", raw)
        return [_from_packed(item, raw, f"packet {index}") for index, item in enumerate(body)]
    return [_from_wire(wire, raw, f"packet {index}") for index, wire in enumerate(body)]


def decode_packed(
    data: bytes, key: bytes, *, max_size: int = MAX_FRAME_SIZE
) -> list[tuple[Packet, bytes]]:
    """Like :func:`decode_batch`, with each packet's own msgpack map as it came.

    The bytes are what :func:`pack` would make of the packet had it been made
    here, so a receiver can store or forward them (:func:`seal`) without
    encoding again.

    Raises:
        PacketError: for any fault in the frame, as :func:`decode_batch`.
    """
    frame_type, _ = _open_header(data, key, max_size)
    raw = bytes(data)
    body = raw[BODY_OFFSET:]
    if frame_type == SINGLE:
        return [(_from_wire(_unpack_body(body, raw), raw, "packet"), body)]
    if frame_type == PACKED:
        return [
            (_from_packed(item, raw, f"packet {index}"), item)
            for index, item in enumerate(_packed_body(body, raw))
        ]
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(body) or 1)
    unpacker.feed(body)
    try:
        count = unpacker.read_array_header()
        result = []
        for index in range(count):
            start = unpacker.tell()
            wire = unpacker.unpack()
            result.append((_from_wire(wire, raw, f"packet {index}"), body[start : unpacker.tell()]))
        if unpacker.tell() != len(body):
            raise ValueError("extra data after the batch")
    except PacketError:
        raise
    except Exception as exc:  # msgpack raises many types; all mean "not our msgpack"
        raise PacketError(f"body is not valid msgpack: {_first_line(exc)}", raw) from None
    return result
