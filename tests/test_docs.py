"""docs/packets.md must describe the wire format the code speaks."""

import re
from pathlib import Path

from mtpkt import pkts
from mtpkt.pkts.control import Kill

DOC = (Path(__file__).parent.parent / "docs" / "packets.md").read_text()
ENVELOPE = ["v", "id", "ts", "origin"]
SELECTION = ["target", "runname", "testpatt", "host"]
IDENTITY = ["target", "runname", "test", "item"]


def documented_fields(kind: str) -> list[str]:
    """Field names in the tables under the kind's heading, with the shared ones it points to."""
    section = DOC.split(f"#### `{kind}`", 1)[1].split("\n#", 1)[0]
    names: list[str] = []
    for row in re.findall(r"^\| (`[^|]+) \|", section, flags=re.MULTILINE):
        names += re.findall(r"`(\w+)`", row)
    shared = SELECTION if pkts.KINDS[kind].cls.__module__ == "mtpkt.pkts.control" else []
    if kind in ("heartbeat", "receipt", "query", "published"):
        return ENVELOPE + names
    return ENVELOPE + shared + [name for name in names if name not in shared]


def test_every_kind_is_documented_with_exactly_its_fields() -> None:
    for kind, schema in pkts.KINDS.items():
        assert sorted(documented_fields(kind)) == sorted(schema.names), kind


def test_identity_fields_are_those_of_step_and_status_change() -> None:
    for kind in ("step", "status_change"):
        assert list(pkts.KINDS[kind].names[5:9]) == IDENTITY


def test_status_rows_are_laid_out_as_written() -> None:
    rows = re.findall(r'^\["(\w+)", ([\w, ]+)\]$', DOC, flags=re.MULTILINE)
    assert sorted(kind for kind, _ in rows) == sorted(pkts.codec.ROW_KINDS)
    for kind, values in rows:
        assert ["kind", *values.split(", ")] == list(pkts.KINDS[kind].keys), kind


def test_worked_example_is_a_real_frame() -> None:
    block = DOC.split("## Worked example", 1)[1].split("```")[1]
    frame = bytes.fromhex(block)
    assert len(frame) == 178
    packet = pkts.decode(frame, bytes(range(32)))
    assert packet == Kill(
        id=bytes(range(16)),
        ts=1795500000.5,
        origin="ann@ws1",
        target="ubuntu/x86_64",
        runname="nightly",
        testpatt="runfirst/%",
        grace=5.0,
    )


def test_enum_values_are_listed() -> None:
    for enum_type in (pkts.State, pkts.Status, pkts.StepState, pkts.AckOutcome, pkts.Phase):
        line = re.search(rf"^\* `{enum_type.__name__}`[^*]+", DOC, flags=re.MULTILINE)
        assert line is not None, enum_type
        members = list(enum_type)
        if enum_type is pkts.Status:  # listed best to worst, as roll-ups rank them
            members.sort(key=lambda status: pkts.Status(status).rank)
        assert re.findall(r"`([^`]+)`", line.group())[1:] == [member.value for member in members]
