"""``mtpkt send`` and ``mtpkt agent`` run as real subprocesses, against real sockets.

The home is a stand-in made of real parts: a REP socket that answers control
packets the way the home does (after committing the selected tests'
``NOT_STARTED`` records, for ``--wait``), in front of a real collector and
store that serve everything else. Status packets are committed through the
collector as an agent sends them.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pynng
import pytest

from mtpkt import pkts
from mtpkt.agents.area import TestPatt
from mtpkt.agents.home.collector import Collector
from mtpkt.agents.homedir import HomeDir
from mtpkt.bus import Replier, Requester
from mtpkt.pkts import AckOutcome, State, Status
from mtpkt.pkts.control import Archive, Clean, Control, Kill, RerunClean, Run
from mtpkt.pkts.link import Receipt
from mtpkt.pkts.status import Ack, StatusChange
from mtpkt.store import Store
from mtpkt.tools.agent_cmd import Shutdown
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.watch import RunWatch
from tests.support.cli import clean_env, start_mtpkt
from tests.support.cli import run_mtpkt as mtpkt
from tests.support.procs import free_port, read_line, stop_process, wait_for

TARGET = "ubuntu/x86_64"
FIELDS = ["os", "arch"]
CONTROL = (Run, Kill, RerunClean, Clean, Archive)


def one_error_line(result: subprocess.CompletedProcess[str], code: ExitCode) -> str:
    """The only line on stderr, checked to be an ``mtpkt …`` error with the expected code."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match(r"mtpkt( \w+)*: ", lines[0]), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def area(tmp_path: Path) -> Path:
    """An area with its secret (no home address yet)."""
    path = tmp_path / "area"
    path.mkdir()
    (path / "megatest.config").write_text("[fields]\nos TEXT\narch TEXT\n")
    HomeDir(path).ensure()
    return path


@pytest.fixture
def key(area: Path) -> bytes:
    return HomeDir(area).key()


class StandIn:
    """A home that answers every control packet with a receipt, an error, or a foreign key."""

    def __init__(self, key: bytes, *, error: str = "", reply_key: bytes | None = None) -> None:
        self.key = key
        self.error = error
        self.reply_key = reply_key or key
        self.received: list[Control] = []
        self.replier = Replier("tcp://127.0.0.1:0", self.handle, name="stand-in home")
        self.replier.start()

    @property
    def address(self) -> str:
        return self.replier.address

    def handle(self, frame: bytes) -> bytes:
        try:
            packet = pkts.decode(frame, self.key)
        except pkts.PacketError as exc:
            return self.receipt(error=f"rejected: {exc}")
        assert isinstance(packet, CONTROL)
        self.received.append(packet)
        if self.error:
            return self.receipt(error=self.error)
        return self.receipt(ids=(packet.id,))

    def receipt(self, *, ids: tuple[bytes, ...] = (), error: str = "") -> bytes:
        return pkts.encode(Receipt(origin="home", ids=ids, error=error), self.reply_key)


@pytest.fixture
def stand_in(key: bytes) -> Iterator[Callable[..., StandIn]]:
    made: list[StandIn] = []

    def make(*, error: str = "", reply_key: bytes | None = None) -> StandIn:
        home = StandIn(key, error=error, reply_key=reply_key)
        made.append(home)
        return home

    yield make
    for home in made:
        home.replier.close()


# -- sending ------------------------------------------------------------------------------


def test_run_is_sent_signed_and_its_id_printed(
    area: Path, stand_in: Callable[..., StandIn]
) -> None:
    home = stand_in()
    HomeDir(area).write_addresses(listen=home.address, publish="tcp://127.0.0.1:1")
    result = mtpkt(
        "send", "run", "-t", TARGET, "-r", "nightly", "--testpatt", "ez_%,~slow",
        "--host", "build7", "--rerun", "fail,ABORT", "--preclean", "--area", str(area),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (packet,) = home.received
    assert result.stdout == packet.id.hex() + "\n"
    assert isinstance(packet, Run)
    assert (packet.target, packet.runname, packet.testpatt, packet.host) == (
        TARGET,
        "nightly",
        "ez_%,~slow",
        "build7",
    )
    assert packet.rerun == (Status.FAIL, Status.ABORT)
    assert (packet.rerun_all, packet.preclean) == (False, True)
    user, at, host = packet.origin.partition("@")
    assert user
    assert at
    assert host == socket.gethostname()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--rerun-all"], Run(target=TARGET, runname="n", rerun_all=True)),
        (["kill"], Kill(target=TARGET, runname="n")),
        (["kill", "--grace", "2.5"], Kill(target=TARGET, runname="n", grace=2.5)),
        (["kill", "--grace", "0"], Kill(target=TARGET, runname="n", grace=0.0)),
        (["rerunclean"], RerunClean(target=TARGET, runname="n")),
        (["clean", "--keep-records"], Clean(target=TARGET, runname="n", keep_records=True)),
        (["archive", "--remove"], Archive(target=TARGET, runname="n", remove=True)),
        (["archive", "--restore"], Archive(target=TARGET, runname="n", restore=True)),
    ],
)
def test_every_kind_carries_its_flags(
    area: Path, stand_in: Callable[..., StandIn], args: list[str], expected: Control
) -> None:
    home = stand_in()
    kind, *flags = args
    result = mtpkt("send", kind, "-t", TARGET, "-r", "n", *flags, "--home", home.address, cwd=area)
    assert result.returncode == 0, result.stderr
    (packet,) = home.received
    assert packet == attrs.evolve(expected, id=packet.id, ts=packet.ts, origin=packet.origin)


def test_area_comes_from_the_environment_then_the_current_directory_or_above(
    area: Path, stand_in: Callable[..., StandIn], tmp_path: Path
) -> None:
    home = stand_in()
    HomeDir(area).write_addresses(listen=home.address, publish="tcp://127.0.0.1:1")
    env = clean_env(MT_RUN_AREA_HOME=str(area))
    by_env = mtpkt("send", "kill", "-t", TARGET, "-r", "n", cwd=tmp_path, env=env)
    by_cwd = mtpkt("send", "kill", "-t", TARGET, "-r", "n", cwd=area)
    inside = area / "tests" / "deep"
    inside.mkdir(parents=True)
    by_parent = mtpkt("send", "kill", "-t", TARGET, "-r", "n", cwd=inside)  # found upwards
    results = (by_env, by_cwd, by_parent)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert len(home.received) == 3


def test_a_refusal_is_one_line_with_the_homes_reason(
    area: Path, stand_in: Callable[..., StandIn]
) -> None:
    home = stand_in(error="testpatt 'nosuch' matches no test of the area (tests: a, b)")
    result = mtpkt("send", "run", "-t", TARGET, "-r", "n", "--home", home.address, cwd=area)
    line = one_error_line(result, ExitCode.REFUSED)
    assert line == (
        "mtpkt send: error: the home refused the run:"
        " testpatt 'nosuch' matches no test of the area (tests: a, b)"
    )
    assert result.stdout == ""


def test_no_home_listening_fails_within_a_few_seconds(area: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    # A refusal gives up after 2 s; the rest is starting Python, generous for a busy machine.
    for timeout, most in (("1", 1 + 4), ("10", 2 + 4)):
        began = time.monotonic()
        result = mtpkt(
            "send", "run", "-t", TARGET, "-r", "n", "--home", address, "--timeout", timeout,
            cwd=area,
        )  # fmt: skip
        took = time.monotonic() - began
        line = one_error_line(result, ExitCode.UNREACHABLE)
        assert line == (
            f"mtpkt send: error: nothing listens at {address}: the connection is refused"
            " (is `mtpkt home` running?)"
        )
        assert took < most, took
        assert result.stdout == ""


def test_a_home_that_does_not_answer_fails_at_the_timeout(area: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    with pynng.Rep0(listen=address):  # takes the request, never answers
        began = time.monotonic()
        result = mtpkt(
            "send", "run", "-t", TARGET, "-r", "n", "--home", address, "--timeout", "1",
            cwd=area,
        )  # fmt: skip
    line = one_error_line(result, ExitCode.UNREACHABLE)
    assert line == (
        f"mtpkt send: error: no answer from the home at {address} within 1s"
        " (is `mtpkt home` running?)"
    )
    assert time.monotonic() - began < 1 + 2


def test_an_answer_under_another_key_is_reported_as_such(
    area: Path, stand_in: Callable[..., StandIn]
) -> None:
    other = os.urandom(32)
    home = stand_in(reply_key=other)
    result = mtpkt("send", "run", "-t", TARGET, "-r", "n", "--home", home.address, cwd=area)
    line = one_error_line(result, ExitCode.BAD_REPLY)
    assert f"the answer from {home.address} does not verify" in line
    assert "is the key the area's?" in line


def test_a_key_file_replaces_the_areas_secret(
    area: Path, stand_in: Callable[..., StandIn], tmp_path: Path
) -> None:
    home = stand_in()
    key_file = tmp_path / "copy.key"
    key_file.write_bytes(HomeDir(area).key())
    key_file.chmod(0o600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = mtpkt(
        "send", "kill", "-t", TARGET, "-r", "n", "--home", home.address,
        "--key-file", str(key_file), cwd=elsewhere,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    key_file.chmod(0o644)
    loose = mtpkt(
        "send", "kill", "-t", TARGET, "-r", "n", "--home", home.address,
        "--key-file", str(key_file), cwd=elsewhere,
    )  # fmt: skip
    assert f"chmod 600 {key_file}" in one_error_line(loose, ExitCode.BAD_AREA)


def test_missing_secret_or_address_says_what_to_do(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    no_area = mtpkt("send", "run", "-t", TARGET, "-r", "n", "--area", str(bare))
    assert one_error_line(no_area, ExitCode.BAD_AREA) == (
        f"mtpkt send: error: {bare} is not a Megatest area (no megatest.config):"
        " cd into the area, pass --area DIR, or give --home and --key-file"
    )
    (bare / "megatest.config").write_text("[fields]\nos TEXT\narch TEXT\n")
    no_secret = mtpkt("send", "run", "-t", TARGET, "-r", "n", "--area", str(bare))
    assert one_error_line(no_secret, ExitCode.BAD_AREA) == (
        f"mtpkt send: error: no secret in {bare}/.mtpkt:"
        " start `mtpkt home` there first, or pass --key-file"
    )
    HomeDir(bare).ensure()
    no_address = mtpkt("send", "run", "-t", TARGET, "-r", "n", "--area", str(bare))
    assert one_error_line(no_address, ExitCode.BAD_AREA) == (
        f"mtpkt send: error: no home address in {bare}/.mtpkt/home.json:"
        f" start `mtpkt home` in {bare} or pass --home"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "-r", "n"], "the following arguments are required: -t/--target"),
        (["run", "-t", TARGET, "-r", "n", "--rerun", "FAIL,NOPE"], "unknown status 'NOPE'"),
        (["archive", "-t", TARGET, "-r", "n", "--remove", "--restore"], "not allowed with"),
        (["run", "-t", TARGET, "-r", "n", "--testpatt", "a,,b"], "has an empty pattern"),
        (["run", "-t", TARGET, "-r", "n", "--timeout", "0"], "give a number of seconds above 0"),
        (["kill", "-t", TARGET, "-r", "n", "--grace", "soon"], "'soon' is not a number"),
        (["run", "-t", "ubuntu/../etc", "-r", "n"], "would leave the run tree"),
        (["run", "-t", TARGET, "-r", "a/b"], "run name 'a/b' cannot be used"),
        (["clean", "-t", TARGET, "-r", "n", "--grace", "3"], "unrecognized arguments: --grace"),
        (["kill", "-t", TARGET, "-r", "n", "--preclean"], "unrecognized arguments: --preclean"),
        (["frob", "-t", TARGET, "-r", "n"], "invalid choice: 'frob'"),
    ],
)
def test_bad_command_lines_are_one_line_usage_errors(
    area: Path, args: list[str], needle: str
) -> None:
    result = mtpkt("send", *args, "--home", "tcp://127.0.0.1:1", cwd=area)
    assert needle in one_error_line(result, ExitCode.USAGE)


def test_an_address_nng_cannot_dial_is_a_usage_error(area: Path) -> None:
    result = mtpkt("send", "run", "-t", TARGET, "-r", "n", "--home", "home:7400", cwd=area)
    assert one_error_line(result, ExitCode.USAGE) == (
        "mtpkt send: error: cannot dial the home at 'home:7400': Invalid argument"
        " (addresses look like tcp://host:port or ipc:///path)"
    )


def test_wait_with_another_home_needs_its_stream_address(
    area: Path, stand_in: Callable[..., StandIn]
) -> None:
    home = stand_in()
    args = ["send", "run", "-t", TARGET, "-r", "n", "--wait", "--home", home.address]
    line = one_error_line(mtpkt(*args, cwd=area), ExitCode.USAGE)
    assert "pass --publish ADDR with --home" in line
    bad_stream = mtpkt(*args, "--publish", "nowhere", cwd=area)
    assert "cannot dial the home at 'nowhere'" in one_error_line(bad_stream, ExitCode.USAGE)
    assert home.received == []  # both checked before anything was sent


@pytest.mark.parametrize("kind", ["run", "kill", "rerunclean", "clean", "archive"])
def test_help_of_every_kind_has_an_example(kind: str) -> None:
    result = mtpkt("send", kind, "--help")
    assert result.returncode == 0
    assert "example:\n  mtpkt send " + kind in result.stdout


def test_help_lists_the_new_commands_and_every_exit_code() -> None:
    result = mtpkt("--help")
    assert result.returncode == 0
    for command in ("home", "agent", "send", "demo"):
        assert f"    {command} " in result.stdout
    for code in ExitCode:
        assert f"\n  {code.value:<4} " in result.stdout, code


# -- --wait: a stand-in home in front of a real collector and store -------------------------


class WaitHome:
    """Answers control packets after committing ``NOT_STARTED`` for the selected tests, as the
    home does; forwards everything else (queries) to a real collector."""

    def __init__(self, dbdir: Path, key: bytes, tests: list[tuple[str, str]]) -> None:
        self.key = key
        self.tests = tests
        self.store = Store(dbdir, FIELDS)
        self.collector = Collector(
            self.store, key, listen="tcp://127.0.0.1:0", publish="tcp://127.0.0.1:0"
        )
        self.collector.start()
        self.agent = Requester(self.collector.listen_address, timeout=10)
        self.seqs = {"home": 0, "agent-1": 0}
        self.runs: list[bytes] = []
        """The run and rerunclean packets not yet acknowledged ``done``."""
        self.lock = threading.Lock()
        self.front = Replier("tcp://127.0.0.1:0", self.handle, name="wait home")
        self.front.start()

    def close(self) -> None:
        self.front.close()
        self.agent.close()
        self.collector.close()
        self.store.close()

    def handle(self, frame: bytes) -> bytes:
        try:
            packet = pkts.decode(frame, self.key)
        except pkts.PacketError:
            packet = None
        if not isinstance(packet, CONTROL):
            return self.agent.request(frame)  # queries of the follower
        patt = TestPatt.parse(packet.testpatt)
        selected = [(t, i) for t, i in self.tests if patt.matches(t, i)]
        self.report("home", [(t, i, State.NOT_STARTED, Status.NA) for t, i in selected])
        if isinstance(packet, Run | RerunClean):
            self.runs.append(packet.id)
            if not selected:  # nothing to run: settled at once
                self.ack_runs()
        return pkts.encode(Receipt(origin="home", ids=(packet.id,)), self.key)

    def ack_runs(self) -> None:
        """The ``done`` acks the home commits once a run's launch has settled."""
        with self.lock:
            runs, self.runs = self.runs, []
        for ref in runs:
            self.ack(ref, AckOutcome.DONE)

    def ack(self, ref: bytes, outcome: AckOutcome, reason: str = "") -> None:
        """Commit the home's ``ack`` of control packet ``ref``."""
        with self.lock:
            self.seqs["home"] += 1
            packet = Ack(
                origin="home", seq=self.seqs["home"], ref=ref, outcome=outcome, reason=reason
            )
            self.agent.request(pkts.encode_batch([packet], self.key))

    def report(self, origin: str, changes: list[tuple[str, str, State, Status]]) -> None:
        """Commit status changes through the collector, as the agent or home ``origin``."""
        with self.lock:
            packets = []
            for test, item, state, status in changes:
                self.seqs[origin] += 1
                packets.append(
                    StatusChange(
                        origin=origin,
                        seq=self.seqs[origin],
                        target=TARGET,
                        runname="nightly",
                        test=test,
                        item=item,
                        state=state,
                        status=status,
                    )
                )
            reply = pkts.decode(self.agent.request(pkts.encode_batch(packets, self.key)), self.key)
        assert isinstance(reply, Receipt)
        assert not reply.error, reply.error
        assert set(reply.ids) == {p.id for p in packets}

    def finish(self, ends: dict[tuple[str, str], Status]) -> None:
        """Run each instance through LAUNCHED and RUNNING to COMPLETED with its status."""
        for state in (State.LAUNCHED, State.RUNNING):
            self.report("agent-1", [(t, i, state, Status.NA) for t, i in ends])
        self.report("agent-1", [(t, i, State.COMPLETED, s) for (t, i), s in ends.items()])
        self.ack_runs()


TESTS = [("a", ""), ("b", "1"), ("b", "2")]


@pytest.fixture
def wait_home(area: Path, key: bytes) -> Iterator[WaitHome]:
    home = WaitHome(area / ".mtpkt" / "db", key, TESTS)
    try:
        # The run has records the testpatt below leaves out, and a toplevel record of b
        # that no agent ever updates (items say all there is): neither may hold --wait up.
        home.report("home", [("other", "", State.NOT_STARTED, Status.NA)])
        home.report("home", [("b", "", State.NOT_STARTED, Status.NA)])
        HomeDir(area).write_addresses(
            listen=home.front.address, publish=home.collector.publish_address
        )
        yield home
    finally:
        home.close()


class Started:
    """``mtpkt`` processes started in a test; every one is stopped at its end."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []

    def __call__(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        process = start_mtpkt(*args, cwd=cwd)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            stop_process(process)


@pytest.fixture
def start() -> Iterator[Started]:
    started = Started()
    try:
        yield started
    finally:
        started.stop_all()


def finish_waiting(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    assert process.stderr is not None
    code = process.wait(timeout=timeout)
    return code, process.stderr.read()


WAIT = ["send", "run", "-t", TARGET, "-r", "nightly", "--testpatt", "a,b", "--wait"]


def started_waiting(process: subprocess.Popen[str]) -> str:
    """The packet id the waiting command printed, once it follows the run."""
    assert process.stdout is not None
    assert process.stderr is not None
    packet_id = read_line(process.stdout, "", timeout=30).strip()
    assert len(bytes.fromhex(packet_id)) == pkts.ID_SIZE
    assert "run nightly: 0/3 settled" in read_line(process.stderr, "settled", timeout=30)
    return packet_id


@pytest.mark.timeout(60)
def test_wait_ends_when_every_selected_test_passed(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    process = start(*WAIT, cwd=area)
    started_waiting(process)
    wait_home.finish({("a", ""): Status.PASS, ("b", "1"): Status.PASS, ("b", "2"): Status.PASS})
    code, stderr = finish_waiting(process)
    assert code == ExitCode.OK, stderr
    assert "run nightly: 3/3 settled" in stderr
    assert stderr.splitlines()[-1] == f"run {TARGET} nightly: 3 tests: 3 PASS"


@pytest.mark.timeout(60)
def test_wait_fails_when_a_test_failed_and_names_it(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    process = start(*WAIT, cwd=area)
    started_waiting(process)
    wait_home.finish({("a", ""): Status.PASS, ("b", "1"): Status.PASS, ("b", "2"): Status.FAIL})
    code, stderr = finish_waiting(process)
    assert code == ExitCode.TESTS_FAILED, stderr
    assert "run nightly: 3/3 settled, 1 FAIL" in stderr
    assert stderr.splitlines()[-2:] == [
        f"run {TARGET} nightly: 3 tests: 2 PASS, 1 FAIL",
        "  FAIL  b/2",
    ]


@pytest.mark.timeout(60)
def test_wait_of_a_settled_run_returns_at_once(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    wait_home.finish({("a", ""): Status.PASS})
    wait_home.tests = []  # the home leaves a completed, good test alone: nothing new to commit
    result = mtpkt(
        "send", "run", "-t", TARGET, "-r", "nightly", "--testpatt", "a", "--wait", cwd=area
    )
    assert result.returncode == ExitCode.OK, result.stderr
    assert result.stderr.splitlines()[-1] == f"run {TARGET} nightly: 1 test: 1 PASS"


@pytest.mark.timeout(60)
def test_wait_timeout_gives_up_with_its_own_code(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    began = time.monotonic()
    process = start(*WAIT, "--wait-timeout", "1", cwd=area)
    started_waiting(process)
    wait_home.finish({("a", ""): Status.PASS})
    code, stderr = finish_waiting(process)
    assert code == ExitCode.WAIT_TIMEOUT, stderr
    assert time.monotonic() - began < 15
    assert stderr.splitlines()[-1] == (
        "mtpkt send: error: not every test had settled after 1s (the run goes on)"
    )


CHORE = ["-t", TARGET, "-r", "nightly", "--testpatt", "a", "--wait"]


def chore_waiting(process: subprocess.Popen[str], kind: str) -> bytes:
    """The id of the chore packet the waiting command sent, once it waits for the home."""
    assert process.stdout is not None
    assert process.stderr is not None
    packet_id = bytes.fromhex(read_line(process.stdout, "", timeout=30).strip())
    assert read_line(process.stderr, "hands", timeout=30).strip() == (
        f"{kind} nightly: in the home's hands"
    )
    return packet_id


@pytest.mark.timeout(60)
def test_clean_wait_prints_what_the_home_did_and_exits_4_when_it_could_not(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    done = start("send", "clean", *CHORE, cwd=area)
    wait_home.ack(chore_waiting(done, "clean"), AckOutcome.DONE, "removed 1 test record(s)")
    code, stderr = finish_waiting(done)
    assert code == ExitCode.OK, stderr
    assert stderr.splitlines()[-1] == f"clean {TARGET} nightly: removed 1 test record(s)"
    failed = start("send", "clean", *CHORE, cwd=area)
    wait_home.ack(chore_waiting(failed, "clean"), AckOutcome.REJECTED, "disk full")
    code, stderr = finish_waiting(failed)
    assert code == ExitCode.REFUSED, stderr
    assert stderr.splitlines()[-1] == "mtpkt send: error: the home gave up on the clean: disk full"


@pytest.mark.timeout(60)
def test_archive_wait_timeout_gives_up_with_its_own_code(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    process = start("send", "archive", *CHORE, "--wait-timeout", "1", cwd=area)
    chore_waiting(process, "archive")
    code, stderr = finish_waiting(process)
    assert code == ExitCode.WAIT_TIMEOUT, stderr
    assert stderr.splitlines()[-1] == (
        "mtpkt send: error: the home had not done the archive after 1s (the chore goes on)"
    )


@pytest.mark.timeout(60)
def test_ctrl_c_while_waiting_exits_cleanly(
    area: Path, wait_home: WaitHome, start: Started
) -> None:
    process = start(*WAIT, cwd=area)
    started_waiting(process)
    process.send_signal(signal.SIGINT)
    code, stderr = finish_waiting(process, timeout=10)
    assert code == ExitCode.INTERRUPTED, stderr
    assert stderr.splitlines()[-1] == "mtpkt send: interrupted"
    assert "Traceback" not in stderr


def change(test: str, item: str, state: State, status: Status, seq: int = 1) -> StatusChange:
    return StatusChange(
        origin="agent-1", seq=seq, target=TARGET, runname="nightly",
        test=test, item=item, state=state, status=status,
    )  # fmt: skip


def settled(watch: RunWatch) -> bool:
    return watch.settled  # a call, so that mypy does not keep a narrowed property across adds


def test_run_watch_counts_items_not_their_toplevel_and_knows_a_kill_ends_killed() -> None:
    patt = TestPatt.parse("%,~skip")
    run = RunWatch("run", TARGET, "nightly", patt)
    kill = RunWatch("kill", TARGET, "nightly", patt)
    for watch in (run, kill):
        watch.add([
            change("t", "", State.NOT_STARTED, Status.NA),  # toplevel: counts until items show
            change("skip", "", State.RUNNING, Status.NA),  # not selected
            attrs.evolve(change("u", "", State.RUNNING, Status.NA), runname="other"),
        ])  # fmt: skip
        assert not settled(watch)
        assert watch.progress().endswith(": 0/1 settled")
        watch.add([change("t", "1", State.KILLED, Status.KILLED)])
        assert settled(watch)  # the toplevel record of t no longer counts
        watch.add([change("t", "2", State.RUNNING, Status.NA)])
        assert not settled(watch)
        watch.add([change("t", "2", State.COMPLETED, Status.PASS)])
        assert settled(watch)
    assert run.bad() == [("t/1", "KILLED/KILLED")]
    assert run.exit_code() == ExitCode.TESTS_FAILED
    assert run.progress() == "run nightly: 2/2 settled, 1 KILLED/KILLED"
    assert run.summary() == f"run {TARGET} nightly: 2 tests: 1 KILLED/KILLED, 1 PASS"
    assert kill.bad() == []
    assert kill.exit_code() == ExitCode.OK


def test_run_watch_of_a_run_ends_with_the_homes_ack_and_a_rejected_one_ends_it_too() -> None:
    """A run's records may all settle before Megatest's second pass records some NOT_STARTED
    again (runs.scm:613-621): ``send run --wait`` ends on the home's ack of the run."""
    patt = TestPatt.parse("%")
    control = pkts.new_id()
    watch = RunWatch("run", TARGET, "nightly", patt, control)
    watch.add([change("t", "", State.COMPLETED, Status.PASS)])
    assert not settled(watch)
    other = Ack(origin="home", seq=1, ref=pkts.new_id(), outcome=AckOutcome.DONE)
    watch.add([other])
    assert not settled(watch)
    watch.add([attrs.evolve(other, seq=2, ref=control)])
    assert settled(watch)
    assert watch.rejected == ""

    given_up = RunWatch("run", TARGET, "nightly", patt, control)
    given_up.add([change("t", "", State.NOT_STARTED, Status.NA)])
    reason = "not picked up again: tests/t/testconfig:3: unknown mode"
    rejected = Ack(origin="home", seq=3, ref=control, outcome=AckOutcome.REJECTED, reason=reason)
    given_up.add([rejected])
    assert settled(given_up)  # the records will not settle: the wait ends, saying why
    assert given_up.rejected == reason


# -- mtpkt agent ----------------------------------------------------------------------------


def test_agent_outside_an_area_or_without_a_secret_is_a_clear_error(
    tmp_path: Path, area: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    no_area = mtpkt("agent", "--area", str(bare))
    assert "not a Megatest area (no megatest.config)" in one_error_line(no_area, ExitCode.BAD_AREA)
    HomeDir(area).secret_path.unlink()
    no_secret = mtpkt("agent", "--area", str(area))
    assert "no secret in" in one_error_line(no_secret, ExitCode.BAD_AREA)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--slots", "0"], "at least one slot"),
        (["--slots", "two"], "'two' is not a whole number"),
        (["--name", ".."], "agent name '..' cannot be used as a directory name"),
        (["--kill-grace", "-1"], "give a number of seconds, 0 or more"),
    ],
)
def test_agent_bad_command_lines(area: Path, args: list[str], needle: str) -> None:
    result = mtpkt("agent", "--area", str(area), "--home", "tcp://127.0.0.1:1", *args)
    assert needle in one_error_line(result, ExitCode.USAGE)


def test_agent_help_has_an_example() -> None:
    result = mtpkt("agent", "--help")
    assert result.returncode == 0
    assert "examples:\n  mtpkt agent --area" in result.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]])
def test_agent_drains_on_a_signal_and_stops_on_a_second(
    area: Path, start: Started, signals: list[signal.Signals]
) -> None:
    # No home listens: the agent starts anyway, says so (not "ready", which it was said
    # to be before: issue 21, item 6) and keeps trying; signals still end it.
    home = f"tcp://127.0.0.1:{free_port()}"
    HomeDir(area).write_addresses(listen=home, publish=f"tcp://127.0.0.1:{free_port()}")
    process = start("agent", "--name", "a1", "--slots", "2", "--kill-grace", "1", cwd=area)
    assert process.stdout is not None
    assert process.stderr is not None
    said = read_line(process.stderr, "no answer", timeout=30)
    assert said.strip() == (
        f"no answer from the home at {home} (connection refused: is mtpkt home running, at"
        " that address?); still trying"
    )
    for sig in signals:
        process.send_signal(sig)
        time.sleep(0.05)
    code, stderr = finish_waiting(process, timeout=30)
    assert code == ExitCode.OK, stderr
    assert "draining: finishing 0 running tests; signal again to stop now" in stderr
    assert ("stopping now" in stderr) == (len(signals) == 2)
    assert stderr.splitlines()[-1] == "agent a1 stopped"
    assert (area / ".mtpkt" / "agents" / "a1" / "spool.db").exists()
    assert "ready" not in process.stdout.read()


class SlowAgent:
    """Stands in for a HostAgent in-process: drain() takes until stop() is called."""

    def __init__(self) -> None:
        self.running = ["t1", "t2"]
        self.calls: list[str] = []
        self._stopped = threading.Event()

    def drain(self) -> None:
        self.calls.append("drain")
        self._stopped.wait(30)

    def stop(self) -> None:
        self.calls.append("stop")
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)


def test_shutdown_drains_on_the_first_signal_and_stops_on_the_second(tmp_path: Path) -> None:
    agent = SlowAgent()
    with (tmp_path / "out.txt").open("w+") as out:
        shutdown = Shutdown(agent, out)
        shutdown.step()
        assert agent.calls == []
        shutdown.handle_signal(signal.SIGTERM)
        shutdown.step()
        wait_for(lambda: agent.calls == ["drain"], 10, interval=0.01)
        assert agent.calls == ["drain"]
        assert not agent.wait(0.05)  # draining goes on
        shutdown.handle_signal(signal.SIGINT)
        shutdown.handle_signal(signal.SIGINT)
        shutdown.run(poll=0.01)
        assert agent.calls == ["drain", "stop"]
        out.seek(0)
        assert out.read().splitlines() == [
            "draining: finishing 2 running tests; signal again to stop now",
            "stopping now: killing the running tests",
            "already stopping: waiting for the killed tests to end",
        ]
