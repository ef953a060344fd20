"""Programs some end-to-end tests need from the system, installed when missing.

Megatest's own areas call programs beyond Python (fullrun's ``sqlitespeed`` is a Ruby
runscript that also calls ``sqlite3``). A test asks for them with :func:`need`: a program
already on PATH is used as it is; a missing one is installed from Debian's packages when
this process may (root, ``apt-get`` present), as CI does on a fresh machine; otherwise the
test fails with one line saying what to install.
"""

import os
import shutil
import subprocess
from collections.abc import Mapping

import pytest

__all__ = ["need"]

INSTALL_TIMEOUT = 600.0
"""Seconds ``apt-get`` gets to refresh its lists and install (a cold mirror is slow)."""


def _apt_install(packages: list[str]) -> str:
    """Install ``packages`` with apt-get; returns "" or the one-line reason it failed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        try:
            done = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} took over {INSTALL_TIMEOUT:g}s"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            return f"{' '.join(command)} exited {done.returncode}: {lines[-1]}"
    return ""


def need(programs: Mapping[str, str]) -> None:
    """Make sure every program is on PATH, installing the Debian packages of missing ones.

    Args:
        programs: program name → the Debian package that provides it.
    """
    missing = {name: package for name, package in programs.items() if not shutil.which(name)}
    if not missing:
        return
    packages = sorted(set(missing.values()))
    if os.geteuid() == 0 and shutil.which("apt-get"):
        reason = _apt_install(packages)
        still = [name for name in missing if not shutil.which(name)]
        if not still:
            return
        reason = reason or f"{', '.join(still)} still not on PATH after installing"
    else:
        reason = "not root, or no apt-get"
    pytest.fail(
        f"this test needs {', '.join(missing)}: install {' '.join(packages)} ({reason})",
        pytrace=False,
    )
