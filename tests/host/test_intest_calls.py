"""The pieces of exactly-once calls: the spool's call ids (schema v2), Reporter.together, and
the checks a call passes before anything is reported."""

import re
import threading
from pathlib import Path

import apsw
import msgpack
import pytest

from mtpkt import pkts
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host import intest
from mtpkt.agents.host.endpoint import MAX_IPC_PATH, Endpoint, address_for
from mtpkt.agents.host.report import Reporter
from mtpkt.bus import Requester, Spool
from mtpkt.pkts.status import StatusPacket
from mtpkt.pkts.testdata import DataRow
from mtpkt.tools.intest_args import FLAGS, VALUED
from mtpkt.tools.megatest_cmd import HELP

REF = TestRef(target="linux/x86", runname="r1", test="runfirst", item="")


def test_a_calls_packets_and_its_id_are_one_transaction_kept_across_a_reopen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    reporter = Reporter("a1", spool.put, next_seq=spool.next_seq)
    with reporter.together(lambda packets: spool.put_many(packets, call=(b"c1", b"answer"))):
        reporter.step(REF, "s", pkts.StepState.START)
        reporter.test_data(REF, [DataRow.judged("foo", "bar", "1", "2", "<")])
    assert len(spool) == 2
    assert spool.answer(b"c1") == (b"answer", True)
    assert spool.answer(b"c2") is None
    spool.close()
    spool = Spool(path)
    try:
        assert spool.answer(b"c1") == (b"answer", True)
        assert spool.next_seq == 3
    finally:
        spool.close()


def test_a_version_1_spool_is_upgraded_with_its_packets(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    db = apsw.Connection(str(path))
    db.execute(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE packets (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
        " data BLOB NOT NULL);"
        "INSERT INTO meta VALUES ('next_seq', 7); PRAGMA user_version = 1;"
    )
    db.close()
    spool = Spool(path)
    try:
        assert spool.next_seq == 7
        assert spool.answer(b"c1") is None
        spool.put_many([], call=(b"c1", b"ok"))
        assert spool.answer(b"c1") == (b"ok", True)
    finally:
        spool.close()
    db = apsw.Connection(str(path))
    assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()


def test_together_numbers_in_order_and_holds_other_threads_until_sealed(tmp_path: Path) -> None:
    got: list[StatusPacket] = []
    reporter = Reporter("a1", got.append)
    sealed: list[list[StatusPacket]] = []
    other = threading.Thread(target=lambda: reporter.step(REF, "other", pkts.StepState.START))
    with reporter.together(sealed.append):
        reporter.step(REF, "a", pkts.StepState.START)
        other.start()
        other.join(0.2)
        assert other.is_alive()  # waits for the block's end
        reporter.step(REF, "b", pkts.StepState.START)
        assert got == []
    other.join(5)
    assert [[p.seq for p in batch] for batch in sealed] == [[1, 2]]
    assert [p.seq for p in got] == [3]


def test_together_reports_nothing_when_the_block_fails() -> None:
    got: list[StatusPacket] = []
    reporter = Reporter("a1", got.append)

    def failing_call() -> None:
        with reporter.together(got.extend):
            reporter.step(REF, "a", pkts.StepState.START)
            raise intest.CallError("no")

    with pytest.raises(intest.CallError):
        failing_call()
    reporter.step(REF, "b", pkts.StepState.START)
    assert [(p.seq, p.step) for p in got if isinstance(p, pkts.status.Step)] == [(1, "b")]


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("0", pkts.Status.PASS),  # megatest.scm:1999-2002: :status $? from a shell
        ("1", pkts.Status.FAIL),
        ("127", pkts.Status.FAIL),
        ("PASS", pkts.Status.PASS),
        ("n/a", pkts.Status.NA),
        ("AUTO", intest.AUTO),
    ],
)
def test_status_words_as_megatest_reads_them(word: str, status: object) -> None:
    assert intest.status_word(word) == status


@pytest.mark.parametrize("word", ["pass", "GREAT", "", "1x"])
def test_bad_status_words_are_refused(word: str) -> None:
    with pytest.raises(intest.CallError, match="bad :status"):
        intest.status_word(word)


def test_auto_is_the_tests_status_from_its_data_rows() -> None:
    """db.scm:3270-3287 and the rollup query at db.scm:3783-3790."""
    passed, failed = DataRow("c", "v", status="pass"), DataRow("c", "w", status="FAIL")
    assert intest.auto_status([passed], pkts.Status.NA) is pkts.Status.PASS
    assert intest.auto_status([passed, failed], pkts.Status.NA) is pkts.Status.FAIL
    assert intest.auto_status([passed], pkts.Status.WARN) is pkts.Status.WARN
    assert intest.auto_status([], pkts.Status.NA) is pkts.Status.NA


def test_a_long_state_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    assert address_for(tmp_path) == f"ipc://{tmp_path.absolute() / 'calls.ipc'}"
    deep = tmp_path / ("d" * 120)
    address = address_for(deep)
    assert address.startswith("ipc:///tmp/mtpkt-")
    assert len(address.removeprefix("ipc://")) <= MAX_IPC_PATH
    assert address_for(deep) == address  # the same agent finds the same socket again


NOT_IN_HELP = (
    *("-h", "-help", "--help", "--modepatt", "-runall", "-showkeys", "-transport", "-debug"),
    *("-server", "-list-servers", "-kill-servers", "-clean-cache", "-no-cache"),
)
"""Spellings the help leaves out: help itself, aliases, and options with no meaning here."""


def test_every_option_the_command_takes_is_in_the_docs_table() -> None:
    """In docs/in-test.md's table (options inside a test) or docs/megatest-cli.md's (the
    others); in ``megatest -h`` unless it is one accepted only for old scripts."""
    docs = Path(__file__).parents[2] / "docs"
    table = (docs / "in-test.md").read_text().split("## Megatest's in-test options", 1)[1]
    table += (docs / "megatest-cli.md").read_text().split("## Every option", 1)[1]
    listed = {
        word
        for row in re.findall(r"^\| ([^|]+) \|", table, flags=re.MULTILINE)
        for name in re.findall(r"`([^`]+)`", row)
        for word in name.split()
    }
    assert set(VALUED) | set(FLAGS) <= listed, (set(VALUED) | set(FLAGS)) - listed
    for option in (*VALUED, *FLAGS):
        if option.startswith("-") and option not in NOT_IN_HELP:
            assert option in HELP, option


def test_a_step_start_with_no_status_word_is_recorded_n_a_and_an_end_is_refused() -> None:
    test = intest.InTest(REF, None)
    start = {"name": "s", "state": "start", "status": "running"}  # as fullrun's exit_0
    checked = intest.check(test, {"step": start})
    assert checked.step is not None
    assert checked.step[2] is pkts.Status.NA
    with pytest.raises(intest.CallError, match="bad :status"):
        intest.check(test, {"step": {**start, "state": "end"}})


def test_malformed_calls_are_answered_with_one_line_and_record_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "state" / "spool.db")
    reporter = Reporter("a1", spool.put, next_seq=spool.next_seq)
    endpoint = Endpoint(tmp_path / "state", spool, reporter, agent="a1")
    token, env = endpoint.admit(REF, None, {"PATH": "/bin"})
    assert env["PATH"] == f"/bin:{endpoint.megatest.parent}"
    assert env["MTPKT_TOKEN"] == token
    bad = [
        b"\xc1 not msgpack",
        msgpack.packb([1, 2]),
        msgpack.packb({"token": token, "id": "not bytes", "parts": {}}),
        msgpack.packb({"token": token, "id": b"1", "parts": {"status": "not a map"}}),
        msgpack.packb({"token": token, "id": b"2", "parts": {"step": {"name": 3}}}),
    ]
    good = msgpack.packb(
        {"token": token, "id": b"3", "parts": {"step": {"name": "s", "state": "start"}}}
    )
    try:
        endpoint.start()
        with Requester(endpoint.address, timeout=10) as requester:
            for frame in bad:
                answer = msgpack.unpackb(requester.request(frame), raw=False)
                assert answer["ok"] is False, frame
                assert answer["error"], frame
                assert "\n" not in answer["error"], frame
            assert len(spool) == 0
            answer = msgpack.unpackb(requester.request(good), raw=False)
            assert answer["ok"] is False  # admitted, but its process is not bound yet
            endpoint.dismiss(token)
    finally:
        endpoint.close()
        spool.close()
    assert (tmp_path / "state" / "bin" / "megatest").read_text().startswith("#!/bin/sh\nexec ")


@pytest.mark.parametrize(
    ("key", "given", "mine"),
    [
        ("target", "linux/x86", True),
        ("target", "linux/arm", False),
        ("runname", "r2", False),
        ("testpatt", "runfirst", True),
        ("testpatt", "run%", True),
        ("testpatt", "runfirst,~runfirst", False),
        ("testpatt", "other", False),
        ("item", "", True),
        ("item", "a/b", False),
    ],
)
def test_a_call_that_names_another_test_is_refused(key: str, given: str, mine: bool) -> None:
    test = intest.InTest(REF, None)
    if mine:
        intest.check(test, {"names": {key: given}})
    else:
        with pytest.raises(intest.CallError, match="names another test"):
            intest.check(test, {"names": {key: given}})
