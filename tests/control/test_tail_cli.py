"""``mtpkt tail`` against a real home and agents: what it prints is the committed history."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mtpkt import pkts
from mtpkt.pkts.status import StatusChange, Step
from mtpkt.tools.shown import json_record, plain_line
from tests.support.cli import start_mtpkt
from tests.support.farm import TARGET, Farm
from tests.support.procs import stop_process
from tests.support.storekit import Sender

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def started() -> Iterator[list["subprocess.Popen[str]"]]:
    """The tail processes a test starts; any still running at its end are killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        stop_process(process)


def tail(farm: Farm, started: list["subprocess.Popen[str]"], *args: str) -> "subprocess.Popen[str]":
    process = start_mtpkt("tail", *args, cwd=farm.area, env=farm.env)
    started.append(process)
    return process


def finish(process: "subprocess.Popen[str]", timeout: float = 90) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
        pytest.fail(f"mtpkt tail did not end: {err}")
    return process.returncode, out, err


def history(farm: Farm, runname: str) -> list[dict[str, object]]:
    """The run's committed history, each packet as tail --json shows it."""
    records = []
    for seq, packet in farm.history(runname):
        assert isinstance(packet, StatusChange | Step)
        records.append(json_record(seq, packet))
    return records


def test_tail_json_is_the_runs_history_packet_for_packet(
    farm: Farm, started: list["subprocess.Popen[str]"]
) -> None:
    farm.start_home()
    farm.start_agent("a1")
    farm.start_agent("a2")
    # Started before the run: it sees the run begin, follows it live, and ends with it.
    live = tail(farm, started, "-t", TARGET, "-r", "r1", "--json", "--until-done", "--timeout", "5")
    sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "%,~sleeper")
    assert sent.returncode == 0, sent.stderr

    code, out, err = finish(live)

    assert code == 3, err  # `broken` fails, so `after_broken` is PREQ_FAIL
    assert "7 tests: 5 PASS, 1 FAIL, 1 NOT_STARTED/PREQ_FAIL" in err
    shown = [json.loads(line) for line in out.splitlines()]
    assert shown == history(farm, "r1")
    assert {record["kind"] for record in shown} == {"status_change", "step"}

    # Started after the run: the same history, from the home's snapshot alone.
    code, out, err = finish(tail(farm, started, "-r", "r1", "--json", "--until-done"))
    assert code == 3, err
    assert [json.loads(line) for line in out.splitlines()] == history(farm, "r1")

    # --testpatt narrows it; --plain is one line per packet.
    code, out, err = finish(tail(farm, started, "-r", "r1", "--testpatt", "unit/%", "--until-done"))
    assert code == 0, err
    lines = out.splitlines()
    unit = [r for r in history(farm, "r1") if r["test"] == "unit" and r["item"]]
    assert len(lines) == len(unit)
    assert all(" unit/" in line for line in lines)
    assert "3 tests: 3 PASS" in err

    # From a host without the area, a target that does not fit is refused by the home.
    addresses = json.loads((farm.area / ".mtpkt/home.json").read_text())
    elsewhere = ("--area", "/", "--key-file", str(farm.area / ".mtpkt/secret"),
                 "--home", addresses["listen"], "--publish", addresses["publish"])  # fmt: skip
    code, _, err = finish(tail(farm, started, *elsewhere, "-t", "linux"), timeout=30)
    assert code == 4, err
    assert "target 'linux' has 1 part(s); the area's fields are OS/ARCH" in err


def test_tail_says_when_it_cannot_start(
    farm: Farm, started: list["subprocess.Popen[str]"], tmp_path: Path
) -> None:
    code, _, err = finish(tail(farm, started, "--testpatt", "a,,b"))
    assert code == 2
    assert "empty pattern" in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = finish(tail(farm, started, "--area", str(tmp_path / "nowhere")))
    assert code == 7
    assert f"{tmp_path}/nowhere does not exist: cd into the area" in err

    farm.start_home()
    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32))
    other_key.chmod(0o600)
    code, _, err = finish(tail(farm, started, "--key-file", str(other_key)))
    assert code == 6
    assert "is the key the area's?" in err

    code, _, err = finish(tail(farm, started, "-t", "linux"), timeout=30)
    assert code == 2  # before anything is asked of the home
    assert "target 'linux' does not match the area's keys OS/ARCH" in err

    farm.stop("home")  # its address is on file, but nothing listens there now
    began = time.monotonic()
    code, _, err = finish(tail(farm, started), timeout=30)
    assert code == 5
    assert "nothing listens at" in err
    assert time.monotonic() - began < 8  # not the whole 10 s timeout


def test_plain_lines_read_as_people_expect() -> None:
    a1 = Sender("a1", TARGET, "r1")  # numbers its packets 1, 2, 3
    running = a1.change("unit", "1", pkts.State.RUNNING, pkts.Status.NA, host="a1")
    failed = a1.change(
        "unit", "1", pkts.State.COMPLETED, pkts.Status.FAIL, comment="step 'x'\nfailed"
    )
    end = a1.step("unit", "1", "x", pkts.StepState.END, pkts.Status.FAIL, exit_code=3, duration=1.5)

    assert plain_line(running).endswith("linux/x86 r1  unit/1  RUNNING on a1")
    assert plain_line(failed).endswith("unit/1  FAIL: step 'x' failed")
    assert plain_line(end).endswith("unit/1  step x end FAIL (exit 3, 1.50s)")
    record = json_record(7, end)
    assert record["seq"] == 7
    assert record["origin_seq"] == 3
    assert record["state"] == "end"
    assert record["id"] == end.id.hex()
    assert json.loads(json.dumps(record)) == record


def test_a_plain_line_escapes_the_control_characters_of_a_comment() -> None:
    # `tail --plain` goes to a terminal too: a comment must not move its cursor or colour it.
    packet = Sender("a1", TARGET, "r1").change(
        "unit", "1", pkts.State.COMPLETED, pkts.Status.FAIL, comment="\x1b[2J\x1b[31mgone\r\n!"
    )
    line = plain_line(packet)
    assert line.endswith("unit/1  FAIL: \\x1b[2J\\x1b[31mgone !")
    assert line.isprintable()


class Tmux:
    """A tmux server of the test's own (its socket under tmp_path), killed at the end."""

    def __init__(self, socket: Path, cwd: Path, env: dict[str, str]) -> None:
        self.base = ["tmux", "-S", str(socket)]
        shell = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), "PS1=ready$ ",
                 "bash", "--norc", "--noprofile"]  # fmt: skip
        self.run("new-session", "-d", "-x", "100", "-y", "32", "-c", str(cwd), *shell)

    def run(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def type(self, *keys: str) -> None:
        self.run("send-keys", "-t", "0", *keys)

    def screen(self) -> str:
        """The pane as shown, with its colour codes."""
        return self.run("capture-pane", "-p", "-e", "-t", "0")

    def wait(self, found: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if found(screen) or time.monotonic() > deadline:
                return screen
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)


RED_FAIL = re.compile(r"\x1b\[(?:[0-9;]*;)?31m(?:\x1b\[[0-9;]*m)*FAIL\b")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")
def test_live_view_in_a_real_terminal(farm: Farm, tmp_path: Path) -> None:
    farm.start_home()
    farm.start_agent("a1")
    farm.start_agent("a2")
    tmux = Tmux(tmp_path / "tmux.sock", farm.area, farm.env)
    try:
        tmux.wait(lambda screen: "ready$" in screen, 10)
        tmux.type(f"{sys.executable} -m mtpkt.tools tail -r r1", "Enter")
        tmux.wait(lambda screen: "waiting for a selected run" in screen, 30)
        sent = farm.send("run", "-t", TARGET, "-r", "r1")  # with the sleeper: it keeps running
        assert sent.returncode == 0, sent.stderr

        def shown(screen: str) -> bool:
            return bool(RED_FAIL.search(screen)) and "7/8" in screen and "running (1)" in screen

        screen = tmux.wait(shown)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)
        assert shown(screen), plain
        assert re.search(r"linux/x86 r1 .*7/8 .*1 FAIL", plain), plain  # the run, its progress
        assert re.search(r"sleeper +a[12] +nap +0:\d\d", plain), plain  # host, step, elapsed
        assert re.search(r"broken +FAIL +Failed at step second", plain), plain  # launch.scm:262

        tmux.type("C-c")
        tmux.wait(lambda screen: "mtpkt tail: interrupted" in screen, 10)
        tmux.type("echo back-$((40+2))", "Enter")  # the prompt takes commands again
        after = tmux.wait(lambda screen: "back-42" in screen, 10)
        assert "back-42" in after
        assert after.rstrip().endswith("ready$")
    finally:
        tmux.kill()
        farm.send("kill", "-t", TARGET, "-r", "r1", "--grace", "1", "--wait", timeout=60)
