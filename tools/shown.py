"""How a status packet is shown in text: a line for people, a JSON object for scripts."""

import datetime
import enum

import attrs

from mtpkt import pkts
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step, TestData
from mtpkt.pkts.text import display_name, end_label, one_line
from mtpkt.tools.details import data_words

__all__ = ["json_record", "plain_line"]


def _value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


def json_record(seq: int, packet: StatusPacket) -> dict[str, object]:
    """A packet as a JSON object: ``seq`` (the stream's number), ``kind``, then its fields,
    its own ``seq`` named ``origin_seq``; enums as their values, ids in hex."""
    record: dict[str, object] = {"seq": seq, "kind": packet.kind}
    for field in attrs.fields(type(packet)):
        name = "origin_seq" if field.name == "seq" else field.name
        record[name] = _value(getattr(packet, field.name))
    return record


def _clock(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def _change_words(packet: StatusChange) -> str:
    """``RUNNING on build7``, ``LAUNCHED on batch-slurm-… (slurm:4711): queued …``."""
    what = end_label(packet.state, packet.status)
    if packet.host:
        what += f" on {packet.host}"
    if packet.job:
        what += f" ({packet.job})"
    if packet.comment:
        what += f": {one_line(packet.comment)}"
    return what


def plain_line(packet: StatusPacket) -> str:
    """A packet as one line: time (the sender's clock), run, test, what happened."""
    match packet:
        case Ack():
            what = f"ack of {packet.ref.hex()[:12]} from {packet.origin}: {packet.outcome.value}"
            return f"{_clock(packet.ts)}  {what}" + (
                f" ({one_line(packet.reason)})" if packet.reason else ""
            )
        case Step():
            what = f"step {packet.step} {packet.state.value}"
            if packet.state is pkts.StepState.END:
                details = [f"exit {packet.exit_code}"] if packet.exit_code is not None else []
                if packet.duration is not None:
                    details.append(f"{packet.duration:.2f}s")
                what += f" {packet.status.value}" + (f" ({', '.join(details)})" if details else "")
            if packet.comment:
                what += f": {one_line(packet.comment)}"
        case StatusChange():
            what = _change_words(packet)
        case TestData():
            what = data_words(
                packet.category, packet.variable, packet.value, packet.expected, packet.tol,
                packet.units, packet.status, packet.comment,
            )  # fmt: skip
    name = display_name(packet.test, packet.item)
    return f"{_clock(packet.ts)}  {packet.target} {packet.runname}  {name}  {what}"
