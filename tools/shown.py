"""How a status packet is shown in text: a line for people, a JSON object for scripts."""

import datetime
import enum

import attrs

from mtpkt import pkts
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step, TestData
from mtpkt.pkts.testdata import parse_number
from mtpkt.pkts.text import display_name, end_label, one_line

__all__ = ["data_line", "json_record", "plain_line"]


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


def data_line(packet: TestData) -> str:
    """``data perf/cpu = 1.2 s pass (expected 1 ± 0.5)``: a row of test data in one line."""
    what = f"data {packet.category}/{packet.variable} = {packet.value or '(none)'}"
    if packet.units:
        what += f" {packet.units}"
    if packet.status:
        what += f" {packet.status}"
    if packet.expected:
        if parse_number(packet.tol) is not None:
            what += f" (expected {packet.expected} ± {packet.tol.strip()})"
        elif packet.tol:
            what += f" (expected {packet.tol} {packet.expected})"
        else:
            what += f" (expected {packet.expected})"
    if packet.comment:
        what += f": {packet.comment}"
    return one_line(what)


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
            what = end_label(packet.state, packet.status)
            if packet.host:
                what += f" on {packet.host}"
            if packet.comment:
                what += f": {one_line(packet.comment)}"
        case TestData():
            what = data_line(packet)
    name = display_name(packet.test, packet.item)
    return f"{_clock(packet.ts)}  {packet.target} {packet.runname}  {name}  {what}"
