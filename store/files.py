"""Durable plain files: an atomic replace, a directory fsync, an exclusive lock.

The databases are not the only files mtpkt keeps: ``home.json``, the
``.mtpkt/`` locks, run archives and JUnit reports are written here too, each
so that a reader never sees half of one and a crash leaves the old one.
"""

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file", "atomic_write", "fsync_dir", "lock_dir", "lock_file"]

_HELD: frozenset[int] = frozenset({errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK})


def fsync_dir(path: Path) -> None:
    """Make a new or renamed entry of directory ``path`` durable.

    Best effort: a directory that cannot be opened or synced (some file systems
    cannot) has the entry all the same.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A new file to write (and read back) that replaces ``path`` as a whole when the block
    ends.

    The data goes to a temporary file beside ``path`` (same file system), is
    synced, and is renamed over ``path``; then the directory is synced. If
    the block raises, the temporary file goes and ``path`` is untouched.

    Args:
        path: the file to replace (or create).
        mode: the new file's permission bits.

    Raises:
        OSError: the file cannot be written, synced or renamed.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as file:
            os.fchmod(file.fileno(), mode)
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` as a whole (see :func:`atomic_file`).

    Raises:
        OSError: the file cannot be written.
    """
    with atomic_file(path, mode=mode) as file:
        file.write(data)


def lock_file(path: Path, *, mode: int = 0o644) -> int | None:
    """Take an exclusive ``flock`` on ``path`` (created if missing) and write this process's
    pid into it.

    The lock is held while the returned descriptor is open: closing it, or the
    end of the process however it comes, releases it.

    Returns:
        The descriptor, or None if another process holds the lock.

    Raises:
        OSError: the file cannot be opened, or locked for another reason.
    """
    fd = _flocked(os.open(path, os.O_RDWR | os.O_CREAT, mode))
    if fd is None:
        return None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        os.close(fd)
        raise
    return fd


def lock_dir(path: Path) -> int | None:
    """Take an exclusive ``flock`` on the directory ``path`` itself, held while the returned
    descriptor is open.

    A lock on the directory outlives anything inside it being removed or replaced, which a
    lock file does not.

    Returns:
        The descriptor, or None if another process holds the lock.

    Raises:
        OSError: the directory cannot be opened, or its file system cannot lock it (NFS
            locks a directory only as a byte range, which needs it open for writing).
    """
    return _flocked(os.open(path, os.O_RDONLY | os.O_DIRECTORY))


def _flocked(fd: int) -> int | None:
    """``fd`` once exclusively flock'ed, or None (closed) if another process holds it.

    Raises:
        OSError: it cannot be locked for another reason (closed first).
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in _HELD:
            return None
        raise
    return fd
