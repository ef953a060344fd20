"""mtpkt packets: the eight kinds, Megatest's states and statuses, and the signed codec.

Build a packet, then :func:`encode` it with the area's key; :func:`decode`
gives it back or raises :class:`PacketError`::

    frame = pkts.encode(pkts.control.Run(target="ubuntu/x86_64", runname="nightly"), key)
    match pkts.decode(frame, key):
        case pkts.control.Run(runname=name): ...
"""

from mtpkt.pkts import control as control
from mtpkt.pkts import link as link
from mtpkt.pkts import status as status
from mtpkt.pkts.codec import KINDS as KINDS
from mtpkt.pkts.codec import MAX_FRAME_SIZE as MAX_FRAME_SIZE
from mtpkt.pkts.codec import MAX_PACKET_SIZE as MAX_PACKET_SIZE
from mtpkt.pkts.codec import MIN_KEY_SIZE as MIN_KEY_SIZE
from mtpkt.pkts.codec import BadMac as BadMac
from mtpkt.pkts.codec import Packet as Packet
from mtpkt.pkts.codec import PacketError as PacketError
from mtpkt.pkts.codec import decode as decode
from mtpkt.pkts.codec import decode_batch as decode_batch
from mtpkt.pkts.codec import decode_packed as decode_packed
from mtpkt.pkts.codec import encode as encode
from mtpkt.pkts.codec import encode_batch as encode_batch
from mtpkt.pkts.codec import pack as pack
from mtpkt.pkts.codec import seal as seal
from mtpkt.pkts.codec import unpack as unpack
from mtpkt.pkts.control import Control as Control
from mtpkt.pkts.enums import AckOutcome as AckOutcome
from mtpkt.pkts.enums import Action as Action
from mtpkt.pkts.enums import Phase as Phase
from mtpkt.pkts.enums import State as State
from mtpkt.pkts.enums import Status as Status
from mtpkt.pkts.enums import StepState as StepState
from mtpkt.pkts.enums import worst as worst
from mtpkt.pkts.envelope import ID_SIZE as ID_SIZE
from mtpkt.pkts.envelope import Envelope as Envelope
from mtpkt.pkts.envelope import default_origin as default_origin
from mtpkt.pkts.envelope import new_id as new_id
from mtpkt.pkts.status import StatusPacket as StatusPacket

__all__ = [
    # Megatest's words
    "AckOutcome",
    "Action",
    "Phase",
    "State",
    "Status",
    "StepState",
    "worst",
    # Envelope
    "ID_SIZE",
    "Envelope",
    "default_origin",
    "new_id",
    # Packet kinds
    "Control",
    "Packet",
    "StatusPacket",
    "control",
    "link",
    "status",
    # Codec
    "KINDS",
    "MAX_FRAME_SIZE",
    "MAX_PACKET_SIZE",
    "MIN_KEY_SIZE",
    "BadMac",
    "PacketError",
    "decode",
    "decode_batch",
    "decode_packed",
    "encode",
    "encode_batch",
    "pack",
    "seal",
    "unpack",
]
