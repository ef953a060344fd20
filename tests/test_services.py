"""Home and agent as services: ``--log-file`` (appended, the format of stderr, reopened after
logrotate moved it) and the example systemd units in docs/systemd/ (issue 21)."""

import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from mtpkt.tools.cli import build_parser
from tests.support.cli import INSTALLED, run_mtpkt
from tests.support.components import need
from tests.support.farm import TARGET, running_farm
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(120)

UNITS = Path(__file__).parent.parent / "docs" / "systemd"
PROGRAM = "/usr/local/bin/mtpkt"
"""Where the units expect the console script (a drop-in changes it)."""
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (home|agent) [A-Z]+ \S")
"""A log line, as on stderr: time, role, level, message."""


def settings(unit: Path) -> dict[str, str]:
    """The unit's ``Key=value`` lines (each key once in ours)."""
    found = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key not in found, f"{unit.name}: {key} twice"
            found[key] = value
    return found


@pytest.mark.parametrize("command", ["home", "agent"])
def test_the_units_start_what_the_parsers_accept_and_stop_with_sigterm(command: str) -> None:
    unit = settings(UNITS / f"mtpkt-{command}@.service")
    argv = shlex.split(unit["ExecStart"].replace("%i", "nightly"))
    assert argv[:2] == [PROGRAM, command]
    args = build_parser().parse_args(argv[1:])
    assert args.command == command
    assert args.area == Path("/srv/megatest/nightly")
    assert args.log_file == Path(f"/var/log/mtpkt/{command}-nightly.log")
    assert unit["WorkingDirectory"] == "/srv/megatest/%i"
    assert unit["Restart"] == "on-failure"
    assert (unit["KillSignal"], unit["KillMode"]) == ("SIGTERM", "mixed")
    assert unit["User"]


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    need({"systemd-analyze": "systemd"})  # installed as CI does on a fresh machine
    if not INSTALLED.exists():
        pytest.fail(f"{INSTALLED} is missing: install the project first")
    for unit in UNITS.glob("*.service"):  # the console script where this install has it
        (tmp_path / unit.name).write_text(unit.read_text().replace(PROGRAM, str(INSTALLED)))
    checked = subprocess.run(
        ["systemd-analyze", "verify", "mtpkt-home@nightly.service", "mtpkt-agent@nightly.service"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (checked.returncode, checked.stderr) == (0, ""), checked


def test_the_home_appends_its_log_to_the_file_and_reopens_it_once_rotated(tmp_path: Path) -> None:
    log = tmp_path / "home.log"
    log.write_text("kept from before\n")
    with running_farm(tmp_path) as farm:
        farm.start_home("--log-file", str(log))
        assert " home INFO home of " in log.read_text()  # its addresses, as on stderr
        rotated = log.rename(tmp_path / "home.log.1")  # as logrotate does, without copytruncate
        sent = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "build")
        assert sent.returncode == 0, sent
        planned = f"home INFO run {TARGET}/r1: "  # logged after the rotation: in the new file
        assert wait_for(lambda: log.exists() and planned in log.read_text(), 30), farm.log("home")
        farm.stop("home")
        assert farm.processes["home"].returncode == 0
        stdout = farm.log("home")
    before, after = rotated.read_text().splitlines(), log.read_text().splitlines()
    assert before[0] == "kept from before"
    assert " home INFO home of " in before[1]
    assert all(LINE.match(line) for line in before[1:] + after), before + after
    assert "home ready" in stdout  # stdout and stderr still say it, without the log lines
    assert "home stopped" in stdout
    assert " home INFO " not in stdout


def test_the_agent_logs_to_its_file(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    with running_farm(tmp_path) as farm:
        farm.start_home()
        farm.start_agent("alpha", extra=["--log-file", str(log)])
        assert wait_for(lambda: "agent alpha ready" in farm.log("alpha"), 30), farm.log("alpha")
        farm.stop("alpha", signal.SIGTERM)  # nothing runs: draining ends at once
        assert farm.processes["alpha"].returncode == 0, farm.log("alpha")
    lines = log.read_text().splitlines()
    assert lines, "the agent logged nothing"
    assert all(LINE.match(line) for line in lines), lines
    assert " agent INFO agent alpha: 2 slots, pulling from " in lines[0]
    assert " agent INFO agent alpha stopped: 0 tests run" in lines[-1]


def test_a_log_file_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "home.log"
    refused = run_mtpkt("home", "--area", str(tmp_path), "--log-file", str(missing))
    assert refused.returncode == 1
    assert refused.stderr == (
        f"mtpkt home: error: cannot write the log file {missing}: No such file or directory\n"
    )
    assert not (tmp_path / ".mtpkt").exists()
