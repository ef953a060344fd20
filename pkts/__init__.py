"""mtpkt packets: the eight kinds, Megatest's states and statuses, and the signed codec.

Build a packet, then :func:`encode` it with the area's key; :func:`decode`
gives it back or raises :class:`PacketError`::

    frame = pkts.encode(pkts.control.Run(target="ubuntu/x86_64", runname="nightly"), key)
    match pkts.decode(frame, key):
        case pkts.control.Run(runname=name): ...
"""

from pkts import control as control
from pkts import link as link
from pkts import status as status
from pkts.codec import KINDS as KINDS
from pkts.codec import MAX_FRAME_SIZE as MAX_FRAME_SIZE
from pkts.codec import MAX_PACKET_SIZE as MAX_PACKET_SIZE
from pkts.codec import MIN_KEY_SIZE as MIN_KEY_SIZE
from pkts.codec import BadMac as BadMac
from pkts.codec import Packet as Packet
from pkts.codec import PacketError as PacketError
from pkts.codec import decode as decode
from pkts.codec import decode_batch as decode_batch
from pkts.codec import decode_packed as decode_packed
from pkts.codec import encode as encode
from pkts.codec import encode_batch as encode_batch
from pkts.codec import pack as pack
from pkts.codec import seal as seal
from pkts.codec import unpack as unpack
from pkts.control import Control as Control
from pkts.enums import AckOutcome as AckOutcome
from pkts.enums import Action as Action
from pkts.enums import Phase as Phase
from pkts.enums import State as State
from pkts.enums import Status as Status
from pkts.enums import StepState as StepState
from pkts.enums import worst as worst
from pkts.envelope import ID_SIZE as ID_SIZE
from pkts.envelope import Envelope as Envelope
from pkts.envelope import default_origin as default_origin
from pkts.envelope import new_id as new_id
from pkts.status import StatusPacket as StatusPacket

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
