"""Following a step's log (:func:`mtpkt.tools.step_logs.follow`) on real files: what is added
is copied, a log written anew is copied from its start, the end and the deadline stop it."""

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from mtpkt.tools.errors import CliError
from mtpkt.tools.step_logs import follow


def test_what_is_added_until_the_end_is_copied_and_a_log_written_anew_from_its_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "step.log"
    log.write_bytes(b"one\n")

    def append(data: bytes) -> None:
        with log.open("ab") as stream:
            stream.write(data)

    writes: list[Callable[[], object]] = [
        lambda: append(b"two\n"),
        lambda: log.write_bytes(b"x\n"),  # a rerun: the log starts again
        lambda: append(b"last\n"),
    ]

    def ended() -> bool:
        if writes:
            writes.pop(0)()
            return False
        return True

    out = io.BytesIO()
    assert follow(log, out, ended, poll=0) is True
    assert out.getvalue() == b"one\ntwo\nx\nlast\n"


def test_the_deadline_stops_following_a_test_that_does_not_end(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_bytes(b"still going\n")
    now = iter([0.0, 1.0, 2.0, 3.0])
    out = io.BytesIO()
    assert follow(log, out, lambda: False, poll=0, deadline=2.0, clock=lambda: next(now)) is False
    assert out.getvalue() == b"still going\n"


def test_a_log_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"^cannot read .*gone\.log: No such file or directory$"):
        follow(tmp_path / "gone.log", io.BytesIO(), lambda: True)
