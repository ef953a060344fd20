"""Real disk faults for the fault suite: small file systems that fill up or turn read-only.

Needs root (or CAP_SYS_ADMIN) to mount; :func:`require_mounts` skips a test
with a reason naming what is missing otherwise.

* *Full*: a small tmpfs mounted on a directory; :func:`fill` writes a filler
  file until the kernel says ENOSPC, :func:`unfill` deletes it.
* *Unwritable*: a read-only remount (``mount -o remount,ro``) is refused
  with EBUSY while any process holds a file of it open for writing, which
  every SQLite writer does; Linux only turns a file system read-only under
  open files when it finds an error. :func:`ext4_image` mounts a small ext4
  image with ``errors=remount-ro`` and :func:`break_readonly` raises such an
  error (``/sys/fs/ext4/<dev>/trigger_fs_error``): from then on every write
  fails with EROFS, also through files already open. As on a real machine,
  it stays read-only until it is unmounted, checked and mounted again
  (:func:`repair`), so the processes using it must be stopped first.

Every context manager unmounts what it mounted, even when the test fails; a
mount still busy is detached lazily (``umount -l``) so none is left behind.
"""

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "break_readonly",
    "ext4_image",
    "fill",
    "repair",
    "require_mounts",
    "tmpfs",
    "unfill",
]

FILLER = "filler"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


def _check(*args: str) -> None:
    result = _run(*args)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


def require_mounts(ext4: bool = False) -> None:
    """Skip the test, naming what is missing, unless this process can mount file systems."""
    probe = Path(tempfile.mkdtemp(prefix="mtpkt-mount-probe-"))
    try:
        result = _run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs (root or CAP_SYS_ADMIN needed): {result.stderr}")
        _unmount(probe)
    finally:
        probe.rmdir()
    if ext4:
        missing = [tool for tool in ("mkfs.ext4", "e2fsck", "losetup") if not shutil.which(tool)]
        if missing or not Path("/dev/loop-control").exists():
            pytest.skip(f"no ext4 image can be mounted: missing {missing or '/dev/loop-control'}")


def _unmount(where: Path) -> None:
    if _run("umount", str(where)).returncode:
        _check("umount", "-l", str(where))


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"2m"``) on ``where`` (made if missing) for the block."""
    where.mkdir(parents=True, exist_ok=True)
    _check("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where))
    try:
        yield where
    finally:
        _unmount(where)


def fill(where: Path) -> int:
    """Write a filler file in ``where`` until its file system is full; the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with (where / FILLER).open("ab", buffering=0) as filler:
        while written < 1 << 30:  # bounded: the test's file systems are a few MB
            try:
                written += filler.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]  # the last blocks, too
    raise RuntimeError(f"{where} did not fill up")


def unfill(where: Path) -> None:
    """Delete the filler: the file system has room again."""
    (where / FILLER).unlink()


@contextlib.contextmanager
def ext4_image(where: Path, image: Path, size: str) -> Iterator[Path]:
    """A fresh ext4 file system of ``size`` in ``image``, mounted on ``where`` for the block.

    No journal, ``errors=remount-ro``: an error found turns it read-only at once.
    """
    where.mkdir(parents=True, exist_ok=True)
    _check("truncate", "-s", size, str(image))
    _check("mkfs.ext4", "-q", "-F", "-O", "^has_journal", str(image))
    _mount_image(image, where)
    try:
        yield where
    finally:
        if where.is_mount():
            _unmount(where)
        image.unlink(missing_ok=True)


def _mount_image(image: Path, where: Path) -> None:
    _check("mount", "-o", "loop,errors=remount-ro", str(image), str(where))
    os.chmod(where, 0o700)


def break_readonly(where: Path) -> None:
    """Make the ext4 file system on ``where`` find an error: it turns read-only (EROFS)."""
    device = next(
        line.split()[0]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1] == str(where)
    )
    name = Path(os.path.realpath(device)).name
    Path(f"/sys/fs/ext4/{name}/trigger_fs_error").write_text("mtpkt fault suite\n")


def repair(where: Path, image: Path) -> None:
    """Unmount the broken file system, check it, and mount it again read-write.

    The processes that held files of it must have stopped.
    """
    _check("umount", str(where))
    e2fsck = _run("e2fsck", "-f", "-y", str(image))
    if e2fsck.returncode not in (0, 1):  # 1: errors corrected
        raise RuntimeError(f"e2fsck {image}: exit {e2fsck.returncode}: {e2fsck.stdout}")
    _mount_image(image, where)
