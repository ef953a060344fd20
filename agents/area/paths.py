"""Run directories, and the checks that keep every path inside the run tree.

A test runs in ``<linktree>/<target>/<runname>/<test>/<itempath>``. Names come
from config files and packets, so each part is checked: no ``..``, no absolute
paths, no empty parts, no NUL, and no symlink on the way that leads out of the
linktree, unless it leads into one of the area's ``[disks]``
(:mod:`~mtpkt.agents.area.disks`: the test's directory is then a link to
``<disk>/<target>/<runname>/<test>``).
"""

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from mtpkt.agents.area.errors import AreaError

__all__ = [
    "PathError",
    "check_name",
    "check_relative",
    "inside",
    "inside_any",
    "run_dir",
    "run_root",
    "instance_path",
]


class PathError(AreaError):
    """A name or path that would leave the run tree (message is one line)."""


def check_name(kind: str, value: str) -> str:
    """Check one path component (a test name, a run name, one target key value).

    Raises:
        PathError: it is empty, ``.``/``..``, or holds ``/`` or NUL.
    """
    if not value or value in (".", "..") or "/" in value or "\x00" in value:
        raise PathError(f"{kind} {value!r} cannot be used as a directory name")
    return value


def check_relative(kind: str, value: str) -> str:
    """Check a relative path of one or more components (a target, an item path).

    Raises:
        PathError: it is absolute, or a component is empty, ``.`` or ``..``, or it holds NUL.
    """
    if value.startswith("/"):
        raise PathError(f"{kind} {value!r} is an absolute path")
    for part in value.split("/"):
        if not part or part in (".", "..") or "\x00" in part:
            raise PathError(f"{kind} {value!r} would leave the run tree")
    return value


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, with every existing symlink on the way resolved, stays in ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def inside_any(roots: Sequence[Path], path: Path) -> bool:
    """Whether ``path``, resolved, stays in one of ``roots`` (see :func:`inside`)."""
    return any(inside(root, path) for root in roots)


def run_root(linktree: Path, target: str, runname: str) -> Path:
    """``<linktree>/<target>/<runname>``, the directory of one run (``MT_RUNPATH``)."""
    check_relative("target", target)
    check_name("run name", runname)
    path = linktree / target / runname
    if not inside(linktree, path):
        raise PathError(f"run directory {path} leads out of the linktree {linktree}")
    return path


def run_dir(
    linktree: Path,
    target: str,
    runname: str,
    test: str,
    item: str = "",
    *,
    disks: Sequence[Path] = (),
) -> Path:
    """The run directory of one test instance, checked.

    Raises:
        PathError: a part is unsafe, or a symlink on the way leads out of the linktree
            and out of every disk of ``disks``.
    """
    return instance_path(run_root(linktree, target, runname), linktree, test, item, disks)


def instance_path(
    root: Path, linktree: Path, test: str, item: str = "", disks: Sequence[Path] = ()
) -> Path:
    """The run directory of one test instance of the run whose directory is ``root``
    (as :func:`run_root` gave it, checked), checked.

    Only the parts below ``root`` are looked at, an ``lstat`` each until one
    does not exist (nothing below it can be a link yet); a symlink among them
    is resolved and must stay in the linktree or in one of ``disks`` (the
    resolved ``[disks]`` paths). Planning a run looks up every
    instance's directory, so this matters: resolving each whole path took
    most of an agent's time with 100 items a test.

    Raises:
        PathError: a part is unsafe, or a symlink below ``root`` leads out of the
            linktree and out of every disk.
    """
    parts = [check_name("test name", test)]
    if item:
        parts += check_relative("item path", item).split("/")
    path = root
    for part in parts:
        path = path / part
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:  # missing, or below a file: nothing further down is a link
            break
        if is_link:
            path = root.joinpath(*parts)
            if not inside(linktree, path) and not inside_any(disks, path):
                where = f"the linktree {linktree}" + (" and its disks" if disks else "")
                raise PathError(f"run directory {path} leads out of {where}")
            break
    return root.joinpath(*parts)
