"""An area's ``.mtpkt/`` directory, on real files; the home lock against a real second process."""

import json
import os
import selectors
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mtpkt.agents.area import AreaError
from mtpkt.agents.homedir import KEY_SIZE, HomeDir, HomeError
from tests.support.procs import stop_process


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def area(tmp_path: Path) -> Path:
    path = tmp_path / "area"
    path.mkdir()
    return path


def test_paths_are_under_dot_mtpkt(area: Path) -> None:
    home = HomeDir(area)
    assert home.path == area / ".mtpkt"
    assert home.secret_path == area / ".mtpkt" / "secret"
    assert home.db_dir == area / ".mtpkt" / "db"
    assert home.address_path == area / ".mtpkt" / "home.json"
    assert home.lock_path == area / ".mtpkt" / "home.lock"
    assert home.agents_dir == area / ".mtpkt" / "agents"
    assert not home.path.exists()  # nothing is made until asked


def test_ensure_makes_a_private_dir_and_a_secret_once(area: Path) -> None:
    home = HomeDir(area)
    home.ensure()
    assert mode(home.path) == 0o700
    assert home.db_dir.is_dir()
    assert mode(home.secret_path) == 0o600
    secret = home.secret_path.read_bytes()
    assert len(secret) == KEY_SIZE
    assert home.key() == secret
    home.ensure()
    HomeDir(area).ensure()
    assert home.secret_path.read_bytes() == secret  # never overwritten
    assert sorted(p.name for p in home.path.iterdir()) == ["db", "secret"]  # no temporary left


def test_ensure_does_not_create_a_missing_area(tmp_path: Path) -> None:
    home = HomeDir(tmp_path / "no-such-area")
    with pytest.raises(HomeError, match=r"cannot create .*no-such-area/\.mtpkt"):
        home.ensure()
    assert not (tmp_path / "no-such-area").exists()


def test_homes_starting_at_once_agree_on_one_secret(area: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from mtpkt.agents.homedir import HomeDir
        home = HomeDir(Path(sys.argv[1]))
        home.ensure()
        print(home.key().hex())
        """
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(area)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    keys = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert keys == {HomeDir(area).secret_path.read_bytes().hex()}


def test_a_missing_secret_says_how_to_get_one(area: Path) -> None:
    with pytest.raises(HomeError) as caught:
        HomeDir(area).key()
    assert str(caught.value) == (
        f"no secret in {area}/.mtpkt: start `mtpkt home` there first, or pass --key-file"
    )
    assert isinstance(caught.value, AreaError)  # callers catching area errors catch these


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660, 0o620])
def test_a_secret_others_can_reach_is_refused_with_the_fix(area: Path, loose: int) -> None:
    home = HomeDir(area)
    home.ensure()
    home.secret_path.chmod(loose)
    with pytest.raises(HomeError, match=f"mode 0{loose:o}.*chmod 600 {home.secret_path}"):
        home.key()
    home.secret_path.chmod(0o600)
    assert len(home.key()) == KEY_SIZE


def test_a_key_file_is_checked_like_the_secret(area: Path, tmp_path: Path) -> None:
    home = HomeDir(area)
    key_file = tmp_path / "other.key"
    with pytest.raises(HomeError, match=r"key file .*other\.key does not exist"):
        home.key(key_file)
    key_file.write_bytes(b"k" * 32)
    key_file.chmod(0o644)
    with pytest.raises(HomeError, match="chmod 600"):
        home.key(key_file)
    key_file.chmod(0o600)
    assert home.key(key_file) == b"k" * 32
    key_file.write_bytes(b"short")
    with pytest.raises(HomeError, match="5 bytes, fewer than 16"):
        home.key(key_file)
    with pytest.raises(HomeError, match="not a regular file"):
        home.key(tmp_path)


def test_addresses_round_trip_atomically(area: Path) -> None:
    home = HomeDir(area)
    home.write_addresses(listen="tcp://h:7400", publish="tcp://h:7401")
    assert home.addresses() == ("tcp://h:7400", "tcp://h:7401")
    record = json.loads(home.address_path.read_text())
    assert record["pid"] == os.getpid()
    assert set(record) == {"pid", "listen", "publish", "started"}
    home.write_addresses(listen="tcp://h:7500", publish="tcp://h:7501")
    assert home.addresses() == ("tcp://h:7500", "tcp://h:7501")
    assert sorted(p.name for p in home.path.iterdir()) == ["home.json"]  # no temporary left


def test_missing_or_garbled_addresses_say_what_to_do(area: Path) -> None:
    home = HomeDir(area)
    with pytest.raises(HomeError) as caught:
        home.addresses()
    assert str(caught.value) == (
        f"no home address in {area}/.mtpkt/home.json: start `mtpkt home` in {area} or pass --home"
    )
    home.path.mkdir()
    for garbled, why in (
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"listen": "tcp://h:1"}', "listen or publish missing"),
        ('{"listen": 5, "publish": "tcp://h:2"}', "listen or publish missing"),
    ):
        home.address_path.write_text(garbled)
        with pytest.raises(HomeError, match=f"no home address in .*home.json \\({why}\\): start"):
            home.addresses()


def test_agent_dirs_are_made_and_bad_names_refused(area: Path) -> None:
    home = HomeDir(area)
    path = home.agent_dir("build7")
    assert path == area / ".mtpkt" / "agents" / "build7"
    assert path.is_dir()
    assert mode(path) == 0o700
    assert home.agent_dir("build7") == path  # again: the same directory
    for bad in ("", ".", "..", "a/b", "../x", "x..", "a\x00b"):
        with pytest.raises(HomeError, match="cannot be used as a directory name"):
            home.agent_dir(bad)
    assert sorted(p.name for p in home.agents_dir.iterdir()) == ["build7"]


def test_lock_is_per_process_and_released_by_unlock(area: Path) -> None:
    home = HomeDir(area)
    home.lock()
    home.lock()  # a second call does nothing
    assert home.locked
    assert home.lock_path.read_text().strip() == str(os.getpid())
    home.write_addresses(listen="tcp://h:1", publish="tcp://h:2")
    other = HomeDir(area)
    with pytest.raises(HomeError, match=f"pid {os.getpid()}, listening on tcp://h:1"):
        other.lock()
    home.unlock()
    home.unlock()
    assert (home.locked, other.locked) == (False, False)
    other.lock()
    other.unlock()
    assert home.addresses() == ("tcp://h:1", "tcp://h:2")  # kept for agents to reconnect


HOLDER = """
import sys
from pathlib import Path
from mtpkt.agents.homedir import HomeDir
home = HomeDir(Path(sys.argv[1]))
home.lock()
if sys.argv[2] == "with-address":
    home.write_addresses(listen="tcp://127.0.0.1:7400", publish="tcp://127.0.0.1:7401")
print("locked", flush=True)
sys.stdin.readline()
"""


Holder = Callable[[str], "subprocess.Popen[str]"]


@pytest.fixture
def holder(area: Path) -> Iterator[Holder]:
    """Starts a process that takes the area's lock and keeps it until its stdin closes."""
    process: subprocess.Popen[str] | None = None

    def start(variant: str) -> subprocess.Popen[str]:
        nonlocal process
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(area), variant],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        try:
            assert selector.select(timeout=30), "the holder did not lock in time"
        finally:
            selector.close()
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    if process is not None:
        stop_process(process)


def test_a_second_home_is_told_who_holds_the_area(area: Path, holder: Holder) -> None:
    process = holder("with-address")
    home = HomeDir(area)
    with pytest.raises(HomeError) as caught:
        home.lock()
    assert str(caught.value) == (
        f"another home is running for {area} (pid {process.pid}, listening on tcp://127.0.0.1:7400)"
    )
    assert not home.locked
    assert process.stdin is not None
    process.stdin.close()  # the holder exits: its lock goes with it
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:
        try:
            home.lock()
            break
        except HomeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert home.lock_path.read_text().strip() == str(os.getpid())
    home.unlock()


def test_a_holder_that_wrote_no_address_yet_is_named_by_pid(area: Path, holder: Holder) -> None:
    HomeDir(area).write_addresses(listen="tcp://old:1", publish="tcp://old:2")  # a stale file
    process = holder("without-address")
    with pytest.raises(HomeError) as caught:
        HomeDir(area).lock()
    assert str(caught.value) == (
        f"another home is running for {area} (pid {process.pid}, its address is not written yet)"
    )
