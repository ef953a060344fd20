"""The installed ``mtpkt`` command, run as a user runs it."""

import subprocess
import sys
from pathlib import Path

import pytest

MTPKT = Path(sys.executable).parent / "mtpkt"


def mtpkt(*args: str) -> subprocess.CompletedProcess[str]:
    if not MTPKT.exists():
        pytest.fail(f"{MTPKT} is missing: install the project first (README, second command)")
    return subprocess.run(
        [str(MTPKT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = mtpkt("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
    assert "exit codes" in result.stdout


def test_version() -> None:
    result = mtpkt("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("mtpkt ")


def test_no_command_is_a_usage_error() -> None:
    result = mtpkt()
    assert result.returncode == 2
    assert "required: COMMAND" in result.stderr


def test_unknown_command_is_a_usage_error_in_one_line() -> None:
    result = mtpkt("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_demo_tours_the_packets_and_exits_zero() -> None:
    result = mtpkt("demo")
    assert result.returncode == 0, result.stderr
    assert "verified and decoded: run ubuntu/x86_64 demo" in result.stdout
    assert result.stdout.count("rejected") == 3
    assert "COMPLETED PASS" in result.stdout
    assert result.stderr == ""
