"""The ``mtpkt`` command line run as a subprocess, as users and scripts run it.

``run_mtpkt`` runs a command to its end; ``start_mtpkt`` starts one that keeps
running (a home, an agent, a tail) and leaves stopping it to the caller.
Both use this interpreter (``python -m mtpkt.tools``) unless ``installed``
asks for the console script a ``pip install`` put beside it.
"""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import pytest

__all__ = ["INSTALLED", "clean_env", "mtpkt_argv", "run_mtpkt", "start_mtpkt"]

INSTALLED = Path(sys.executable).parent / "mtpkt"
"""The console script of the installed project."""

Output = int | IO[str] | IO[bytes] | None
"""Where a started command's stdout or stderr goes (as ``subprocess.Popen`` takes it)."""


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without ``MT_RUN_AREA_HOME`` (a test names its area itself), output
    unbuffered, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if name != "MT_RUN_AREA_HOME"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def mtpkt_argv(*args: str, installed: bool = False) -> list[str]:
    """The command line of ``mtpkt ARGS…``.

    Args:
        args: the command and its options.
        installed: through the installed console script, not ``python -m mtpkt.tools``.
    """
    if not installed:
        return [sys.executable, "-m", "mtpkt.tools", *args]
    if not INSTALLED.exists():
        pytest.fail(f"{INSTALLED} is missing: install the project first (README, second command)")
    return [str(INSTALLED), *args]


def run_mtpkt(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    installed: bool = False,
) -> "subprocess.CompletedProcess[str]":
    """``mtpkt ARGS…`` run to its end, stdin closed, its output captured as text.

    Args:
        args: the command and its options.
        cwd: where it runs (default: here).
        env: its environment (default: :func:`clean_env`).
        timeout: seconds before it is killed and ``subprocess.TimeoutExpired`` raised.
        installed: through the installed console script.
    """
    return subprocess.run(
        mtpkt_argv(*args, installed=installed),
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def start_mtpkt(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdout: Output = subprocess.PIPE,
    stderr: Output = subprocess.PIPE,
) -> "subprocess.Popen[str]":
    """``mtpkt ARGS…`` started, stdin closed, its pipes (if any) read as text; the caller
    stops it.

    Args:
        args: the command and its options.
        cwd: where it runs.
        env: its environment (default: :func:`clean_env`).
        stdout: where its output goes (default: a pipe).
        stderr: where its errors go (default: a pipe; ``subprocess.STDOUT``: with the output).
    """
    return subprocess.Popen(
        mtpkt_argv(*args),
        cwd=cwd,
        env=clean_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        text=True,
    )
