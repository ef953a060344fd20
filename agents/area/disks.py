"""``[disks]``: the disks run directories are made on, and Megatest's choice among them.

With a ``[disks]`` section in ``megatest.config`` (or in a testconfig, which
then replaces it for that test: launch.scm:1111-1113), a test's directory is
made on a disk, and the linktree links to it (launch.scm:1155-1240)::

    <linktree>/<target>/<runname>/<test>  ->  <disk>/<target>/<runname>/<test>

The item directories are made inside the disk's test directory, reached
through the link. The disk is the one with the most free space
(common.scm:1706-1734): a path that is not a directory, not writable or not
absolute counts as none (with a warning); free space is ``df``'s available
KiB, or what ``[setup] free-space-script PATH`` prints (common.scm:1645-1668);
among equals the first written wins; a disk must have more than ``[setup]
minspace`` (default 10000) or none is chosen, which is an error
(launch.scm:1118-1123). Without a ``[disks]`` section, test directories are
made in the linktree itself.

This module reads and chooses; :mod:`mtpkt.agents.host.workarea` makes the
directory and the link when a test starts, and :mod:`mtpkt.agents.rundirs`
follows such links only into a disk's tree.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs

from mtpkt.agents.area.configdata import Config, ConfigError, Origin, run_bash

__all__ = ["MINSPACE", "Disk", "Disks", "disk_roots", "read_disks"]

_log = logging.getLogger(__name__)

MINSPACE: Final = 10000.0
"""Free KiB a disk must exceed without ``[setup] minspace`` (launch.scm:1115)."""


@attrs.frozen
class Disk:
    """One ``[disks]`` entry."""

    name: str
    path: str
    """As written (computed): Megatest takes only absolute paths."""
    origin: Origin


@attrs.frozen
class Disks:
    """The disks of a run's test directories, as read when the run was planned."""

    disks: tuple[Disk, ...]
    minspace: float
    """Free KiB a disk must have more than (``[setup] minspace``)."""
    origin: Origin
    """Where the ``[disks]`` section starts (errors name it)."""
    free_space_script: str = ""
    """``[setup] free-space-script``: prints a path's free KiB; "" for ``df``'s figure."""
    env: Mapping[str, str] = attrs.field(factory=dict)
    """The environment of the free-space script."""

    def roots(self) -> list[Path]:
        """The disks a test directory may lead into: every absolute path written, resolved."""
        return [Path(os.path.realpath(d.path)) for d in self.disks if d.path.startswith("/")]

    def free(self, disk: Disk) -> float:
        """Free KiB of a disk, or -1 when it cannot take test directories (a warning says why)."""
        why = ""
        if not os.path.isdir(disk.path):
            why = "is not a directory"
        elif not os.access(disk.path, os.W_OK):
            why = "is not writeable"
        elif not disk.path.startswith("/"):
            why = "is not a fully qualified path"
        if why:
            where = disk.origin
            _log.warning("disk %s at %r %s - ignoring it (%s)", disk.name, disk.path, why, where)
            return -1.0
        return self._free_kib(disk)

    def _free_kib(self, disk: Disk) -> float:
        if self.free_space_script:
            command = f"{self.free_space_script} {disk.path}"
            done = run_bash(command, disk.origin, env=self.env, cwd=Path(disk.path), what=command)
            lines = done.stdout.decode(errors="replace").splitlines()
            try:
                return float(lines[0])
            except (IndexError, ValueError):
                return -1.0  # no number: (string->number …) is #f, the disk is never best
        try:
            stat = os.statvfs(disk.path)
        except OSError:
            return -1.0
        return stat.f_bavail * stat.f_frsize / 1024  # df's "Available" column, in KiB

    def best(self) -> Disk:
        """The disk with the most free space, the first of equals (common.scm:1706-1734).

        Raises:
            ConfigError: no disk is a writable absolute directory with more than
                ``minspace`` KiB free (launch.scm:1118-1123).
        """
        best: Disk | None = None
        most = 0.0
        for disk in self.disks:
            free = self.free(disk)
            if free > most:
                best, most = disk, free
        if best is None or most <= self.minspace:
            raise ConfigError(
                self.origin.path,
                self.origin.line,
                "no valid disk in [disks]: each must be an existing, writable, absolute "
                f"directory with more than [setup] minspace {self.minspace:g} KiB free",
            )
        return best


def read_disks(
    config: Config, testconfig: Config | None, env: Mapping[str, str], cwd: Path
) -> Disks | None:
    """The ``[disks]`` of a test: its testconfig's if it has the section, else
    ``megatest.config``'s; None when neither has one.

    Args:
        config: megatest.config (also for ``[setup] minspace`` and ``free-space-script``).
        testconfig: the test's testconfig, or None.
        env: environment for computed values and the free-space script.
        cwd: working directory for computed values.

    Raises:
        ConfigError: a value cannot be computed, or ``minspace`` is not a number.
    """
    source = testconfig if testconfig is not None and testconfig.has("disks") else config
    if not source.has("disks"):
        return None
    disks = []
    for name in source.keys("disks"):
        entry = source.entry("disks", name)
        assert entry is not None
        disks.append(Disk(name, source.resolve(entry, env=env, cwd=cwd).strip(), entry.origin))
    first = disks[0].origin if disks else Origin(source.path, 1)
    text = (config.get("setup", "minspace", env=env, cwd=cwd) or "").strip()
    try:
        minspace = float(text) if text else MINSPACE
    except ValueError:
        entry = config.entry("setup", "minspace")
        assert entry is not None
        raise ConfigError(
            entry.origin.path, entry.origin.line, f"minspace {text!r} is not a number"
        ) from None
    script = (config.get("setup", "free-space-script", env=env, cwd=cwd) or "").strip()
    return Disks(tuple(disks), minspace, first, script, dict(env))


def disk_roots(config: Config, env: Mapping[str, str], cwd: Path) -> list[Path]:
    """The resolved paths of megatest.config's ``[disks]``: where a test's directory in the
    linktree may lead (see :mod:`mtpkt.agents.rundirs`). A value that cannot be computed
    leaves its disk out (with a warning): links into it are then refused, never followed.
    """
    roots = []
    for name in config.keys("disks"):
        entry = config.entry("disks", name)
        assert entry is not None
        try:
            path = config.resolve(entry, env=env, cwd=cwd).strip()
        except ConfigError as exc:
            _log.warning("disk %s left out: %s", name, exc)
            continue
        if path.startswith("/"):
            roots.append(Path(os.path.realpath(path)))
    return roots
