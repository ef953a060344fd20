"""Replayed control packets run once; packets and agents with another area's key run nothing.

The frames are built as ``mtpkt send`` builds them (its own parser and
packet maker) and sent to a real home, again and again: right away,
interleaved with other packets, after the home restarted, and after the run
was cleaned away.
"""

import pytest

from mtpkt import pkts
from mtpkt.agents.homedir import HomeDir
from mtpkt.bus import Requester
from mtpkt.pkts.link import Heartbeat, Receipt
from mtpkt.pkts.status import StatusChange
from mtpkt.tools.cli import build_parser
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.send_cmd import control_packet
from tests.support.farm import TARGET, Farm
from tests.support.procs import wait_for

OTHER_KEY = b"another area's key, 32 bytes ..."


def control_frame(key: bytes, *args: str) -> tuple[bytes, bytes]:
    """A control packet made by ``mtpkt send``'s own code, signed: (its id, the frame)."""
    packet = control_packet(build_parser().parse_args(["send", *args]))
    return packet.id, pkts.encode(packet, key)


def ask(farm: Farm, frame: bytes, key: bytes) -> Receipt:
    listen = HomeDir(farm.area).addresses()[0]
    with Requester(listen, timeout=20) as requester:
        # A batch: the receipt first, then (for a run started) its `accepted` ack.
        reply = pkts.decode_batch(requester.request(frame), key)[0]
    assert isinstance(reply, Receipt)
    return reply


def steps_started(farm: Farm, runname: str) -> int:
    rows = farm.query(runname, "SELECT count(*) FROM test_steps WHERE state = 'start'")
    return int(str(rows[0][0])) if rows else 0


def launches(farm: Farm, runname: str) -> int:
    history = farm.history(runname, "kind = 'status_change' AND origin = 'home'")
    return sum(
        isinstance(change, StatusChange) and change.state is pkts.State.LAUNCHED
        for _, change in history
    )


@pytest.mark.timeout(120)
def test_a_replayed_run_is_journaled_once_and_runs_once(farm: Farm) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    key = HomeDir(farm.area).key()
    run_id, frame = control_frame(key, "run", "-t", TARGET, "-r", "replay", "--testpatt", "build")
    for _ in range(2):  # the same frame again at once: taken already, the same receipt
        taken = ask(farm, frame, key)
        assert (taken.ids, taken.error) == ((run_id,), "")
    assert wait_for(lambda: farm.tests("replay").get(("build", ""), ("",))[0] == "COMPLETED", 30)

    beat = pkts.encode(Heartbeat(origin="other", phase=pkts.Phase.ONLINE, interval=5.0), key)
    kill_id, kill = control_frame(key, "kill", "-t", TARGET, "-r", "replay")
    for each in (frame, beat, frame, kill, frame):  # interleaved with other packets
        assert ask(farm, each, key).error == ""
    farm.stop("home")
    farm.start_home(name="home-again")
    again = ask(farm, frame, key)  # after a restart: the journal in main.db remembers
    assert (again.ids, again.error) == ((run_id,), "")

    assert farm.journal_ids().count(run_id) == 1
    assert farm.journal_ids().count(kill_id) == 1
    assert steps_started(farm, "replay") == 2  # build's two steps, once
    assert launches(farm, "replay") == 1
    assert [key for key in farm.tests("replay")] == [("build", "")]

    # Cleaned away, run and records: a replay still does not bring it back.
    cleaned = farm.send("clean", "-t", TARGET, "-r", "replay")
    assert cleaned.returncode == 0, cleaned
    assert wait_for(lambda: farm.run_db("replay") is None, 30)
    assert ask(farm, frame, key).error == ""
    assert farm.run_db("replay") is None
    assert farm.journal_ids().count(run_id) == 1


@pytest.mark.timeout(60)
def test_a_control_packet_with_another_areas_key_runs_nothing(farm: Farm) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    key = HomeDir(farm.area).key()
    before = farm.journal_ids()
    for kind in ("run", "kill", "rerunclean", "clean", "archive"):
        _, forged = control_frame(OTHER_KEY, kind, "-t", TARGET, "-r", "forged")
        reply = ask(farm, forged, key)  # the home answers with its own key
        assert reply.error == "rejected: bad MAC (signed with another key, or corrupted)", reply
        with pytest.raises(pkts.BadMac):  # which the forger cannot read
            ask(farm, forged, OTHER_KEY)
    assert farm.journal_ids() == before
    assert farm.run_db("forged") is None
    assert not (farm.area / "links").exists()  # no test ever started
    farm.stop("home")
    assert farm.log("home").count("bad MAC") == 10


@pytest.mark.timeout(60)
def test_an_agent_with_another_areas_key_stops_with_one_line(farm: Farm) -> None:
    farm.start_home()
    other = farm.area / "other.key"
    other.write_bytes(OTHER_KEY)
    other.chmod(0o600)
    sent = farm.send("run", "-t", TARGET, "-r", "waiting", "--testpatt", "build")
    assert sent.returncode == 0, sent
    agent = farm.command("agent", "--name", "stranger", "--key-file", str(other), timeout=40)
    assert agent.returncode == ExitCode.BAD_REPLY, agent
    last = agent.stderr.strip().splitlines()[-1]
    listen = HomeDir(farm.area).addresses()[0]
    assert last == (
        f"mtpkt agent: error: the answers from {listen} do not verify (bad MAC (signed with"
        " another key, or corrupted)): is the key the area's?"
    ), agent.stderr
    assert "Traceback" not in agent.stderr
    assert farm.tests("waiting") == {("build", ""): ("NOT_STARTED", "n/a", "")}
    assert not (farm.area / "links" / TARGET / "waiting" / "build").exists()
