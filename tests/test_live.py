"""The live view's model and drawing: right counts, and a screenful whatever the run's size."""

import io
from typing import Any

import attrs
from rich.console import Console

from mtpkt.pkts import AckOutcome, State, Status, StepState
from mtpkt.pkts.status import Ack, StatusChange, Step, TestData
from mtpkt.tools.live import LiveModel, render
from mtpkt.tools.shown import plain_line

RUN = {"origin": "a1", "target": "linux/x86", "runname": "big"}


def change(seq: int, test: str, item: str, state: State, status: Status = Status.NA,
           **extra: object) -> StatusChange:  # fmt: skip
    return StatusChange(seq=seq, test=test, item=item, state=state, status=status, **RUN, **extra)  # type: ignore[arg-type]


def big_run(tests: int) -> LiveModel:
    """An itemized test of ``tests`` items: all passed but every 100th failed, 5 running."""
    model = LiveModel()
    seq = 0
    model.add([change(seq := seq + 1, "t", "", State.NOT_STARTED)])  # toplevel, then items
    for n in range(tests):
        item = f"{n:05d}"
        model.add([change(seq := seq + 1, "t", item, State.NOT_STARTED)])
    for n in range(tests):
        item = f"{n:05d}"
        model.add([change(seq := seq + 1, "t", item, State.RUNNING, host=f"h{n % 8}", ts=1000.0)])
        model.add([Step(seq=(seq := seq + 1), origin="a1", target="linux/x86", runname="big",
                        test="t", item=item, step="sim", state=StepState.START)])  # fmt: skip
        if n >= tests - 5:
            continue
        status = Status.FAIL if n % 100 == 0 else Status.PASS
        model.add([change(seq := seq + 1, "t", item, State.COMPLETED, status, comment="x\ny")])
    return model


def draw(model: LiveModel, width: int, height: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, height=height, color_system=None)
    console.print(render(model, width=width, height=height - 1, now=1075.0))
    return out.getvalue().splitlines()


def test_ten_thousand_tests_are_counted_and_summarised_in_a_screenful() -> None:
    model = big_run(10_000)
    (run,) = model.runs.values()
    assert run.total == 10_000  # the toplevel record is not a test of its own
    assert run.settled == 9_995
    assert run.counts == {"PASS": 9_895, "FAIL": 100, "RUNNING": 5}
    assert len(run.active) == 5
    assert len(run.bad) == 100

    for width, height in ((80, 24), (200, 50)):
        lines = draw(model, width, height)
        assert len(lines) < height
        assert max(len(line) for line in lines) <= width
        text = "\n".join(lines)
        assert "linux/x86 big" in text
        assert "9995/10000" in text
        assert "100 FAIL" in text
        assert "running (5)" in text
        assert "t/09995  h3  sim  1:15" in text  # host, step, elapsed
        assert "ended badly (100)" in text
        assert "more ended badly" in text


def test_a_rerun_moves_a_test_between_counts() -> None:
    model = LiveModel()
    model.add([change(1, "u", "", State.COMPLETED, Status.FAIL)])
    model.add([change(2, "u", "", State.NOT_STARTED)])
    (run,) = model.runs.values()
    assert run.counts == {"NOT_STARTED": 1}
    assert run.settled == 0
    assert not run.bad
    model.add([change(3, "u", "", State.KILLED, Status.KILLED)])
    assert run.counts == {"KILLED/KILLED": 1}
    assert list(run.bad) == [("u", "")]


def test_tests_a_clean_removed_are_not_listed_as_ended_badly() -> None:
    """After ``send clean`` the removed tests were reported under "ended badly" (issue 21,
    item 8). A clean's records are DELETED/n/a (agents/home/chores.py), which the outcome rules
    call settled and not bad, so they are counted as DELETED and leave the bad list."""
    model = LiveModel()
    model.add([change(1, "u", "", State.COMPLETED, Status.FAIL, comment="exited with 4")])
    model.add([change(2, "k", "", State.KILLED, Status.KILLED)])
    model.add([change(3, "v", "", State.COMPLETED, Status.PASS)])
    (run,) = model.runs.values()
    assert list(run.bad) == [("u", ""), ("k", "")]
    model.add([change(n, t, "", State.DELETED, comment="cleaned") for n, t in enumerate("ukv", 4)])
    assert not run.bad
    assert run.counts == {"DELETED": 3}
    assert not any("ended badly" in line for line in draw(model, 100, 20))


def test_an_empty_view_says_it_waits() -> None:
    assert "waiting for a selected run to start" in "\n".join(draw(LiveModel(), 80, 24))


def test_with_several_runs_each_test_names_its_run() -> None:
    model = LiveModel()
    model.add([change(1, "u", "", State.COMPLETED, Status.FAIL)])
    model.add([attrs.evolve(change(2, "u", "", State.RUNNING), runname="other")])
    text = "\n".join(draw(model, 80, 24))
    assert "big: u  " in text  # ended badly, in run big
    assert "other: u  " in text  # running, in run other


def test_a_comment_reaches_the_screen_as_one_line_without_its_control_characters() -> None:
    model = LiveModel()
    model.add([change(1, "u", "", State.COMPLETED, Status.FAIL, comment="red\x1b[31m\nnow")])
    (run,) = model.runs.values()
    assert run.instances["u", ""].comment == "red\\x1b[31m now"
    assert "\x1b" not in "\n".join(draw(model, 80, 24))


def test_an_acks_reason_is_one_line_without_its_control_characters() -> None:
    ack = Ack(
        origin="home", seq=1, ref=b"\x01" * 16, outcome=AckOutcome.DONE, reason="a\x1b[31m\nb"
    )
    assert plain_line(ack).endswith("done (a\\x1b[31m b)")


def test_labels_take_the_colours_of_the_outcome_rules() -> None:
    model = LiveModel()
    model.add([change(1, "u", "", State.COMPLETED, Status.CHECK)])
    model.add([change(2, "v", "", State.RUNNING)])
    model.add([change(3, "w", "", State.COMPLETED, Status.PASS)])
    out = io.StringIO()
    Console(file=out, width=80, height=24, color_system="standard").print(
        render(model, width=80, height=23, now=1075.0)
    )
    text = out.getvalue()
    assert "\x1b[1;31m1 CHECK" in text  # bad: bold red, and first
    assert "\x1b[33m1 RUNNING" in text
    assert "\x1b[32m1 PASS" in text


def data(seq: int, item: str, variable: str, **cells: Any) -> TestData:
    return TestData(origin="a1", target="linux/x86", runname="big", seq=seq, test="t",
                    item=item, category=cells.pop("category", "perf"), variable=variable,
                    **cells)  # fmt: skip


def test_test_data_is_an_event_line_and_a_steps_comment_is_shown() -> None:
    model = LiveModel()
    model.add([change(1, "t", "", State.RUNNING, host="h1", ts=1000.0)])
    model.add([Step(seq=2, origin="a1", target="linux/x86", runname="big", test="t", step="sim",
                    state=StepState.END, status=Status.WARN, comment="2 warnings")])  # fmt: skip
    model.add([data(3, "", "cpu", value="1.5", expected="1", tol="1", units="s", status="pass")])
    model.add([data(4, "", "io", value="10", expected="8", tol=">=", status="pass")])
    (run,) = model.runs.values()
    assert run.counts == {"RUNNING": 1}  # data are no tests of their own
    screen = "\n".join(draw(model, 120, 30))
    assert "sim: 2 warnings" in screen  # the running test's step, with its comment
    assert "step sim end WARN: 2 warnings" in screen
    assert "t  data perf/cpu = 1.5 s pass (expected 1 ± 1)" in screen
    assert "t  data perf/io = 10 pass (expected >= 8)" in screen
    line = plain_line(data(5, "a", "v", category="c", comment="x\ny"))
    assert line.endswith("big  t/a  data c/v = (none): x y")  # one line


def test_a_long_comment_is_cut_not_the_name_of_the_test_that_ended_badly() -> None:
    """With one long comment, the rows under "ended badly" showed no test name at all at 120
    columns, and ``nig…`` for the run at 200 (issue 21, the new user's trial)."""
    model = LiveModel()
    long = "cannot make the run directory /very/long/path/" + "x" * 300
    model.add([change(1, "sleeper", "", State.INCOMPLETE, Status.ABORT, comment=long)])
    model.add([change(2, "fail1", "", State.COMPLETED, Status.FAIL, comment="Failed at step bad")])
    for width in (80, 120, 200):
        lines = draw(model, width, 30)
        start = lines.index("ended badly (2)")
        rows = lines[start + 1 : start + 3]
        assert rows[0].startswith("sleeper  INCOMPLETE/ABORT  cannot make"), rows
        assert rows[1].startswith("fail1    FAIL              Failed at step bad"), rows
        assert all(len(row) <= width for row in rows), rows
