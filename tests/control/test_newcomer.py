"""What a newcomer tripped over, end to end (issue 21): each a reproduction that failed
before its fix."""

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.farm import TARGET, Farm
from tests.support.procs import wait_for


@pytest.mark.timeout(120)
def test_a_run_pinned_to_an_unknown_agent_says_why_its_tests_wait(farm: Farm) -> None:
    """With ``--host hostZ`` (no such agent) the tests showed NOT_STARTED with an empty comment,
    and ``send --wait`` said nothing of why (issue 21, item 5)."""
    farm.start_home()
    waited = farm.send(
        "run", "-t", TARGET, "-r", "p1", "--testpatt", "build", "--host", "hostZ",
        "--wait", "--wait-timeout", "6",
    )  # fmt: skip
    assert waited.returncode == 8, waited  # not settled in time: no such agent
    reason = "waiting for agent hostZ, which the home does not know"
    assert waited.stderr.splitlines().count(reason) == 1, waited.stderr
    listed = farm.command("tests", "-t", TARGET, "-r", "p1", "--json")
    assert listed.returncode == 0, listed
    assert f'"comment": "{reason}"' in listed.stdout
    farm.start_agent("hostZ")  # once it comes, the test runs and the reason is gone
    done = farm.send("run", "-t", TARGET, "-r", "p1", "--testpatt", "build", "--wait")
    assert done.returncode == 0, done
    assert farm.tests("p1")[("build", "")][:2] == ("COMPLETED", "PASS")


@pytest.mark.timeout(120)
def test_tail_until_done_names_what_its_selection_misses_and_can_give_up(farm: Farm) -> None:
    """``tail -r nightlly --until-done`` (misspelt) or ``--testpatt unti`` said "waiting for
    a selected run to start" and waited for ever (issue 21, item 2)."""
    farm.start_home()
    farm.start_agent("alpha")
    done = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "build", "--wait")
    assert done.returncode == 0, done
    misspelt = farm.command("tail", "-r", "nightlly", "--until-done", "--wait-timeout", "2")
    assert misspelt.returncode == 8, misspelt
    lines = misspelt.stderr.splitlines()
    assert lines[0] == "mtpkt tail: no run 'nightlly' yet (runs there: nightly); waiting for it"
    assert lines[-1] == (
        "mtpkt tail: error: not every selected test had settled after 2s (the runs go on)"
    )
    pattern = farm.command(
        "tail", "-r", "nightly", "--testpatt", "unti", "--until-done", "--wait-timeout", "2"
    )
    assert pattern.returncode == 8, pattern
    assert pattern.stderr.splitlines()[0] == (
        "mtpkt tail: no test of the selected runs matches --testpatt 'unti' (tests: build)"
    )
    alone = farm.command("tail", "-r", "nightly", "--wait-timeout", "2")
    assert alone.returncode == 2
    assert "--wait-timeout needs --until-done" in alone.stderr


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Makes a directory immutable (``chattr +i``: refused even to root) and undoes it at the
    end; skips where ``chattr`` cannot (not root, a file system without the flag)."""
    frozen: list[Path] = []

    def freeze(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i {path} failed: {done.stderr.strip()}")
        frozen.append(path)

    yield freeze
    for path in frozen:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.timeout(120)
def test_an_unwritable_run_directory_is_the_homes_reason_at_once(
    farm: Farm, immutable: Callable[[Path], None]
) -> None:
    """With the linktree unwritable, ``send run`` waited 10 s and said "no answer from the
    home … (is mtpkt home running?)", exit 5, while the home's log held a traceback ending in
    PermissionError (issue 21, item 1)."""
    farm.start_home()
    links = farm.area / "links"
    links.mkdir(exist_ok=True)
    immutable(links)
    started = time.monotonic()
    sent = farm.send("run", "-t", TARGET, "-r", "frozen", "--testpatt", "build")
    took = time.monotonic() - started
    assert sent.returncode == 4, sent
    (line,) = sent.stderr.splitlines()
    assert line.startswith("mtpkt send: error: the home refused the run: "), line
    why = f"cannot make the run directory {links / 'linux'}: Operation not permitted"
    assert line.endswith(why), line
    assert took < 8, took  # not a timeout's wait
    log = farm.log("home")
    assert "Traceback" not in log, log
    assert sum("Operation not permitted" in entry for entry in log.splitlines()) == 1, log
    farm.start_agent("alpha")  # the home is well: once the directory can be written, it runs
    subprocess.run(["chattr", "-i", str(links)], check=True)
    done = farm.send("run", "-t", TARGET, "-r", "frozen", "--testpatt", "build", "--wait")
    assert done.returncode == 0, done


@pytest.mark.timeout(120)
def test_a_home_whose_mtpkt_dir_is_removed_stops_and_no_second_home_starts_beside_it(
    farm: Farm,
) -> None:
    """With ``.mtpkt/`` deleted under a running home, the old home ran on deleted files and a
    new ``mtpkt home`` started beside it with a new key and port (issue 21, item 4)."""
    farm.start_home()
    first = farm.processes["home"]
    first.send_signal(signal.SIGSTOP)  # it cannot notice yet: the second home must not start
    try:
        shutil.rmtree(farm.area / ".mtpkt")
        second = farm.command("home", "--area", str(farm.area), timeout=30)
        assert second.returncode == 7, second
        assert second.stderr.splitlines() == [
            f"mtpkt home: error: another home is running for {farm.area} (its .mtpkt/ was removed)"
        ], second.stderr
        assert not (farm.area / ".mtpkt").exists()  # not even a new secret
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=10) == 7
    gone = [line for line in farm.log("home").splitlines() if "error" in line]
    assert gone == [
        f"mtpkt home: error: {farm.area / '.mtpkt' / 'home.lock'} was removed under this home;"
        " stopping"
    ], farm.log("home")
    farm.start_home(name="home2")  # now the area can have its home again
    farm.start_agent("alpha")
    done = farm.send("run", "-t", TARGET, "-r", "again", "--testpatt", "build", "--wait")
    assert done.returncode == 0, done


@pytest.mark.timeout(60)
def test_a_home_whose_mtpkt_dir_is_replaced_stops(farm: Farm) -> None:
    """A ``.mtpkt/`` put back from a copy is not the directory the home locked."""
    farm.start_home()
    state = farm.area / ".mtpkt"
    shutil.copytree(state, farm.area / "copy")
    shutil.rmtree(state)
    (farm.area / "copy").rename(state)
    assert farm.processes["home"].wait(timeout=10) == 7
    assert "home.lock was replaced under this home; stopping" in farm.log("home")


@pytest.mark.timeout(120)
def test_an_agent_stopping_with_packets_the_home_does_not_take_says_why_it_waits(
    farm: Farm,
) -> None:
    """With the home gone, an agent took seconds after SIGTERM to stop, saying only
    "draining: finishing 0 running tests" (issue 21, the new user's trial)."""
    farm.start_home()
    farm.start_agent("alpha")
    assert farm.send("run", "-t", TARGET, "-r", "gone", "--testpatt", "sleeper").returncode == 0
    assert wait_for(lambda: farm.tests("gone").get(("sleeper", ""), ("",))[0] == "RUNNING", 60)
    home = farm.processes["home"]
    home.send_signal(signal.SIGSTOP)  # answers nothing from now on
    try:
        agent = farm.processes["alpha"]
        agent.send_signal(signal.SIGINT)  # drains: would wait for the sleeper
        assert wait_for(lambda: "draining" in farm.log("alpha"), 10)
        agent.send_signal(signal.SIGINT)  # stops now: the sleeper's end is spooled, not taken
        assert agent.wait(timeout=30) == 0
    finally:
        home.send_signal(signal.SIGCONT)
    said = [line for line in farm.log("alpha").splitlines() if "spooled status packet" in line]
    assert len(said) == 1, farm.log("alpha")
    assert said[0].endswith(
        "before it stops (up to 1s; what is not sent stays spooled for its next start)"
    ), said
