"""Reading status packets by columns agrees with reading them one by one."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtpkt import pkts
from mtpkt.pkts.codec import PACKED
from mtpkt.pkts.columns import StatusColumns, read_status_frame
from mtpkt.pkts.control import Run
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step, TestData
from tests.support.strategies import msgpack_values, packets_of, sign_raw

KEY = b"c" * 32
COLUMNS = [name for name in StatusColumns.__slots__ if not name.startswith("_")]

status_packets = st.one_of(
    packets_of(Step), packets_of(StatusChange), packets_of(Ack), packets_of(TestData)
)


def same_columns(one: StatusColumns, other: StatusColumns) -> None:
    for name in COLUMNS:
        assert getattr(one, name) == getattr(other, name), name


@settings(max_examples=300)
@given(st.lists(status_packets, max_size=30))
def test_a_frame_of_status_packets_reads_as_its_packets(packets: list[StatusPacket]) -> None:
    frame = pkts.encode_batch(packets, KEY)
    columns = read_status_frame(frame, KEY)
    assert columns is not None
    same_columns(columns, StatusColumns.of(packets))
    assert [columns.packet(index) for index in range(len(columns))] == packets


@settings(max_examples=1000)
@given(
    st.lists(
        st.one_of(packets_of(Step), packets_of(StatusChange), packets_of(TestData)),
        min_size=1,
        max_size=5,
    ),
    st.data(),
    msgpack_values,
)
def test_any_value_anywhere_is_read_as_decode_batch_reads_it(
    packets: list[StatusPacket], data: st.DataObject, value: object
) -> None:
    """A row with one value replaced: refused by both readers, or read alike by both."""
    rows = [msgpack.unpackb(pkts.pack(packet)) for packet in packets]
    row = data.draw(st.sampled_from(rows))
    row[data.draw(st.integers(min_value=0, max_value=len(row) - 1))] = value
    packed = [msgpack.packb(row, use_bin_type=True) for row in rows]
    frame = pkts.seal(packed, KEY)
    try:
        expected = pkts.decode_batch(frame, KEY)
    except pkts.PacketError as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        with pytest.raises(pkts.PacketError) as caught:
            read_status_frame(frame, KEY)
        assert str(caught.value) == reason
        return
    columns = read_status_frame(frame, KEY)
    if not all(isinstance(packet, StatusPacket) for packet in expected):
        assert columns is None
        return
    assert columns is not None
    assert [columns.packet(index) for index in range(len(columns))] == expected
    same_columns(columns, StatusColumns.of(expected, packed))  # type: ignore[arg-type]


def test_maps_and_ints_for_floats_are_read_too() -> None:
    step = Step(seq=1, target="a/b", runname="r", test="t", step="s", state=pkts.StepState.START)
    wire = msgpack.unpackb(pkts.pack(step))
    as_map = dict(zip(pkts.KINDS["step"].keys, wire, strict=True))
    as_map["ts"] = 5
    frame = sign_raw(msgpack.packb([msgpack.packb(as_map)]), KEY, frame_type=PACKED)
    columns = read_status_frame(frame, KEY)
    assert columns is not None
    assert columns.ts == [5.0]
    assert columns.packet(0).ts == 5.0


def test_other_frames_are_left_to_decode_batch() -> None:
    run = Run(target="a/b", runname="r")
    step = Step(seq=1, target="a/b", runname="r", test="t", step="s", state=pkts.StepState.START)
    assert read_status_frame(pkts.encode(step, KEY), KEY) is None  # a single-packet frame
    assert read_status_frame(pkts.encode_batch([step, run], KEY), KEY) is None  # not all status
    empty = read_status_frame(pkts.encode_batch([], KEY), KEY)
    assert empty is not None
    assert len(empty) == 0
    with pytest.raises(pkts.PacketError, match="bad MAC"):
        read_status_frame(pkts.encode_batch([step], b"x" * 32), KEY)


def test_joined_batches_keep_their_order() -> None:
    make = [
        Step(seq=n, target="a/b", runname="r", test="t", step="s", state=pkts.StepState.START)
        for n in range(1, 4)
    ]
    change = StatusChange(
        seq=4, target="a/b", runname="r", test="t", state=pkts.State.RUNNING, status=pkts.Status.NA
    )
    one = read_status_frame(pkts.encode_batch([*make[:2], change], KEY), KEY)
    other = StatusColumns.of([make[2]])
    assert one is not None
    joined = StatusColumns.join([one, other])
    assert joined.steps == [0, 1, 3]
    assert joined.changes == [2]
    assert [joined.packet(index) for index in range(4)] == [*make[:2], change, make[2]]
    assert joined.packed[3] == pkts.pack(make[2])


def v1_row(packet: Step | StatusChange) -> list[object]:
    """The row an agent of the first release wrote: without the fields later versions added
    (``comment`` of a step; ``logfile`` (v2) and ``job`` (v3) of a status_change)."""
    row = msgpack.unpackb(pkts.pack(packet))
    keys = pkts.KINDS[packet.kind].keys
    added = ["comment"] if isinstance(packet, Step) else ["job", "logfile"]
    for name in added:  # the last first: indices before it stay right
        del row[keys.index(name)]
    row[keys.index("v")] = 1
    return list(row)


def test_v1_rows_of_an_old_agent_are_read_with_the_new_fields_empty() -> None:
    step = Step(
        seq=1, target="a/b", runname="r", test="t", step="s", state=pkts.StepState.END,
        status=pkts.Status.PASS, exit_code=0, logfile="s.log", duration=1.5,
    )  # fmt: skip
    change = StatusChange(
        seq=2, target="a/b", runname="r", test="t", state=pkts.State.COMPLETED,
        status=pkts.Status.PASS, comment="done", host="h", pid=7,
    )  # fmt: skip
    v2 = Step(seq=3, target="a/b", runname="r", test="t", step="x", state=pkts.StepState.START)
    packed = [msgpack.packb(v1_row(step)), msgpack.packb(v1_row(change)), pkts.pack(v2)]
    frame = pkts.seal(packed, KEY)
    columns = read_status_frame(frame, KEY)
    assert columns is not None
    assert [columns.packet(index) for index in range(3)] == [step, change, v2]
    assert columns.step_comments == ["", ""]
    assert columns.change_logfiles == [""]
    assert columns.change_jobs == [""]
    assert columns.packed == packed  # kept as they came: the history holds the v1 rows
    assert pkts.decode_batch(frame, KEY) == [step, change, v2]


def test_a_v1_row_with_a_v2_field_is_refused() -> None:
    step = Step(seq=1, target="a/b", runname="r", test="t", step="s", state=pkts.StepState.START)
    row = msgpack.unpackb(pkts.pack(step))
    row[1] = 1  # v1, with v2's comment still in it
    frame = pkts.seal([msgpack.packb(row)], KEY)
    with pytest.raises(pkts.PacketError, match="field 'comment' is not in v1 of 'step'"):
        read_status_frame(frame, KEY)


def test_test_data_rides_with_steps_and_keeps_its_place() -> None:
    step = Step(seq=1, target="a/b", runname="r", test="t", step="s", state=pkts.StepState.START)
    data = TestData(
        seq=2, target="a/b", runname="r", test="t", category="c", variable="v", value="1.5"
    )
    columns = read_status_frame(pkts.encode_batch([step, data, step], KEY), KEY)
    assert columns is not None
    assert columns.steps == [0, 2]
    assert columns.data == [1]
    assert columns.packet(1) == data
    joined = StatusColumns.join([StatusColumns.of([step]), columns])
    assert joined.data == [2]
