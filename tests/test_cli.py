"""The installed ``mtpkt`` command, run as a user runs it."""

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.support.cli import clean_env, run_mtpkt, start_mtpkt
from tests.support.procs import processes_with, read_line


def mtpkt(*args: str) -> "subprocess.CompletedProcess[str]":
    """The installed console script, not ``python -m``: what a user runs."""
    return run_mtpkt(*args, installed=True)


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


def test_demo_runs_a_small_farm_and_stops_it(tmp_path: Path) -> None:
    area = tmp_path / "demo"
    try:
        result = mtpkt("demo", "--area", str(area))
    finally:
        left = processes_with(str(area))
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert result.returncode == 0, result.stderr
    assert not left, "the demo left processes running"
    out = result.stdout
    assert "run demo/x86_64 first: 11 tests: 9 PASS, 1 FAIL, 1 NOT_STARTED/PREQ_FAIL" in out
    assert "unit/parser  FAIL on host-" in out  # the packets, one line each (not a terminal)
    assert {"host-a", "host-b"} <= set(re.findall(r"on (host-[ab])", out))  # both agents ran
    assert f"{area}/.mtpkt/db/: main.db, and 1.db for the run" in out
    assert (area / "logs" / "home.log").exists()
    assert result.stderr == ""


def test_a_demo_stopped_with_ctrl_c_says_where_its_area_is(tmp_path: Path) -> None:
    """A Ctrl-C'd ``mtpkt demo`` stopped its farm but did not say where its area stayed
    (issue 21, item 8)."""
    area = tmp_path / "demo"
    process = start_mtpkt("demo", "--area", str(area), cwd=tmp_path)
    try:
        assert process.stdout is not None
        assert "started; logs in" in read_line(process.stdout, "started", timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for pid in processes_with(str(area)):
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert f"the area stays in {area}" in out
    assert err.strip().splitlines()[-1] == "mtpkt demo: interrupted"
    assert not processes_with(str(area))


def test_demo_does_not_write_into_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = mtpkt("demo", "--area", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"mtpkt demo: error: {tmp_path} is not an empty directory: the demo writes a new area"
        " there (pass a new or empty --area DIR)"
    )


def test_an_unknown_flag_is_named_by_its_command() -> None:
    result = mtpkt("send", "run", "-t", "a/b", "-r", "x", "--wiat")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mtpkt send run: error: unrecognized arguments: --wiat (see 'mtpkt send run --help')"
    )


def test_megatest_spellings_are_refused_naming_the_mtpkt_option() -> None:
    """A Megatest user's ``-target`` was read as ``-t arget``: "unrecognized arguments:
    ubuntu/x86_64 nightly" (issue 21, item 7)."""
    result = mtpkt("send", "run", "-target", "ubuntu/x86_64", "-runname", "nightly")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "mtpkt: error: -target is Megatest's spelling: mtpkt takes -t/--target;"
    )
    assert "megatest command" in lines[0]
    assert "-runname" in mtpkt("runs", "-runname=x").stderr
    passed = mtpkt("send", "run", "-t", "a/b", "-r", "x", "--", "-target")
    assert "Megatest's spelling" not in passed.stderr  # after --, a value


def test_wait_timeout_without_wait_is_refused() -> None:
    """``--wait-timeout`` alone was silently ignored (issue 21, item 8)."""
    result = mtpkt("send", "run", "-t", "a/b", "-r", "x", "--wait-timeout", "5")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mtpkt send: error: --wait-timeout needs --wait (it bounds the wait)"
    )


def test_a_home_refuses_an_area_without_fields_naming_its_file_and_leaving_nothing(
    tmp_path: Path,
) -> None:
    """``mtpkt home`` on a megatest.config without ``[fields]`` exited 1 (the docs say 7 for a
    wrong area), did not name the file, and made ``.mtpkt/`` first (issue 21, item 8)."""
    (tmp_path / "megatest.config").write_text("[setup]\nmax_concurrent_jobs 2\n")
    (tmp_path / "runconfigs.config").write_text("[default]\n")
    result = mtpkt("home", "--area", str(tmp_path))
    assert result.returncode == 7, result
    assert result.stderr.strip() == (
        f"mtpkt home: error: {tmp_path / 'megatest.config'}: the area has no [fields] keys;"
        " a target needs at least one"
    )
    assert not (tmp_path / ".mtpkt").exists()


def test_an_area_from_mt_run_area_home_that_is_not_there_names_the_variable(
    tmp_path: Path,
) -> None:
    """``MT_RUN_AREA_HOME=/nonexist mtpkt runs`` named the path but not where it came from
    (issue 21, the new user's trial)."""
    gone = tmp_path / "nonexist"
    for args in (["runs"], ["send", "run", "-t", "a/b", "-r", "x"]):
        done = run_mtpkt(*args, cwd=tmp_path, env=clean_env(MT_RUN_AREA_HOME=str(gone)))
        assert done.returncode == 7, done
        assert done.stderr.startswith(f"mtpkt {args[0]}: error: {gone} does not exist: ")
        assert done.stderr.endswith(" (from $MT_RUN_AREA_HOME)\n"), done.stderr
