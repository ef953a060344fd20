"""An area's ``.mtpkt/`` directory: the secret, the home's address and lock, the databases.

::

    area/.mtpkt/            mode 0700
        secret              32 random bytes, mode 0600, made once by the first ``mtpkt home``
        home.lock           flock'ed by the running home; holds its pid
        home.json           {"pid", "listen", "publish", "started"} of the newest home
        db/                 main.db and <run_id>.db (the store)
        agents/<name>/      each host agent's own state (seen packet ids, spool)

Every failure is a :class:`HomeError` whose ``str()`` is one line saying what
to do about it.
"""

import errno
import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Final

from mtpkt.agents.area.errors import AreaError
from mtpkt.pkts import MIN_KEY_SIZE
from mtpkt.store.files import atomic_write, fsync_dir, lock_dir, lock_file

__all__ = ["KEY_SIZE", "HomeDir", "HomeError"]

_log = logging.getLogger(__name__)

KEY_SIZE: Final = 32
"""Bytes of a new area secret (HMAC-SHA256 keys gain nothing from more)."""
_DIR_MODE: Final = 0o700
_KEY_MODE: Final = 0o600


class HomeError(AreaError):
    """The area's ``.mtpkt/`` state is missing, unsafe or in use; ``str()`` is one line."""


def _write_key(fd: int, key: bytes) -> None:
    """Write a key in full to a new file, mode 0600, and sync it; closes ``fd``."""
    with os.fdopen(fd, "wb") as file:  # buffered: writes all of it, however many calls it takes
        os.fchmod(fd, _KEY_MODE)
        file.write(key)
        file.flush()
        os.fsync(fd)


class HomeDir:
    """The ``.mtpkt/`` directory of one area.

    Nothing is touched on disk until a method is called. :meth:`ensure`,
    :meth:`lock` and :meth:`write_addresses` are for the home;
    :meth:`key`, :meth:`addresses` and :meth:`agent_dir` for everyone else.

    Args:
        area: the test-suite area (the directory of ``megatest.config``).
    """

    def __init__(self, area: Path) -> None:
        self.area = Path(os.path.abspath(area))
        self._lock_fd: int | None = None
        self._area_fd: int | None = None

    # -- paths --------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """``<area>/.mtpkt``."""
        return self.area / ".mtpkt"

    @property
    def secret_path(self) -> Path:
        """The area's key: ``.mtpkt/secret``."""
        return self.path / "secret"

    @property
    def db_dir(self) -> Path:
        """The store's directory: ``.mtpkt/db``."""
        return self.path / "db"

    @property
    def address_path(self) -> Path:
        """Where the running home says where it listens: ``.mtpkt/home.json``."""
        return self.path / "home.json"

    @property
    def lock_path(self) -> Path:
        """Held by the running home: ``.mtpkt/home.lock``."""
        return self.path / "home.lock"

    @property
    def agents_dir(self) -> Path:
        """The host agents' state directories: ``.mtpkt/agents``."""
        return self.path / "agents"

    # -- the home's side ----------------------------------------------------------------

    def _make_dir(self, path: Path) -> None:
        # No parents=True: a mistyped area must not be created; the area has to exist.
        try:
            path.mkdir(mode=_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise HomeError(f"cannot create {path}: {exc.strerror or exc}") from None
        if not path.is_dir():
            raise HomeError(f"{path} is not a directory")

    def ensure(self) -> None:
        """Create ``.mtpkt/`` (mode 0700), ``db/`` and the secret if they are missing.

        The secret is 32 bytes from the OS's random source, mode 0600. It is
        written in full to a private temporary file and then hard-linked into
        place, which fails if a secret exists: a secret is never overwritten,
        never seen half-written, and two homes starting at once end up with
        the same one.

        Raises:
            HomeError: something cannot be created (permissions, a file in the way …).
        """
        self._make_dir(self.path)
        self._make_dir(self.db_dir)
        if not self.secret_path.exists():
            self._create_secret()

    def _create_secret(self) -> None:
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".secret-", dir=self.path)  # O_EXCL, mode 0600
        except OSError as exc:
            raise HomeError(f"cannot create a secret in {self.path}: {exc.strerror}") from None
        tmp = Path(tmp_name)
        try:
            _write_key(fd, os.urandom(KEY_SIZE))
            self._link_secret(tmp)
        except OSError as exc:
            raise HomeError(f"cannot create {self.secret_path}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.path)

    def _link_secret(self, tmp: Path) -> None:
        try:
            os.link(tmp, self.secret_path)  # atomic, and fails if a secret exists
        except FileExistsError:
            return  # another home made one first: theirs is the area's secret
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # A file system without hard links: O_EXCL still never overwrites.
            self._write_secret_exclusive(tmp.read_bytes())

    def _write_secret_exclusive(self, secret: bytes) -> None:
        try:
            fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_MODE)
        except FileExistsError:
            return
        _write_key(fd, secret)

    def lock(self) -> None:
        """Take ``home.lock`` for this process (one home per area); a second call does nothing.

        The lock is an ``flock`` held as long as this process keeps the file
        open, so it goes away with the process however it ends.

        Raises:
            HomeError: another home holds it (the line names its pid and address),
                or the lock file cannot be opened.
        """
        if self._lock_fd is not None:
            return
        self._lock_area()
        try:
            self._make_dir(self.path)
            try:
                fd = lock_file(self.lock_path, mode=0o600)
            except OSError as exc:
                raise HomeError(f"cannot lock {self.lock_path}: {exc.strerror}") from None
            if fd is None:
                raise HomeError(f"another home is running for {self.area} ({self._holder()})")
        except BaseException:
            self._unlock_area()
            raise
        self._lock_fd = fd

    def _lock_area(self) -> None:
        """Also lock the area directory itself: a home whose ``.mtpkt/`` was removed under it
        still holds that, so a second home cannot start beside it (:meth:`gone` makes the
        first one stop)."""
        try:
            fd = lock_dir(self.area)
        except OSError as exc:  # NFS cannot lock a directory: home.lock alone guards
            _log.debug("no lock on the area directory %s: %s", self.area, exc)
            return
        if fd is None:
            holder = self._holder() if self.lock_path.exists() else "its .mtpkt/ was removed"
            raise HomeError(f"another home is running for {self.area} ({holder})")
        self._area_fd = fd

    def _unlock_area(self) -> None:
        fd, self._area_fd = self._area_fd, None
        if fd is not None:
            os.close(fd)

    def gone(self) -> str | None:
        """Why this home's ``.mtpkt/`` is no longer the one it locked (removed, or replaced by
        another), or None while it is; a home that gets a reason must stop."""
        if self._lock_fd is None:
            return None
        try:
            now = os.stat(self.lock_path)
        except FileNotFoundError:
            return f"{self.lock_path} was removed under this home"
        except OSError:
            return None  # a passing fault of the file system: looked at again later
        held = os.fstat(self._lock_fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            return f"{self.lock_path} was replaced under this home"
        return None

    def _holder(self) -> str:
        """``pid N, listening on ADDR`` for the home that holds the lock, as far as is known."""
        try:
            pid = int(self.lock_path.read_text().strip())
        except (OSError, ValueError):
            return "its pid and address are not written yet"
        try:
            info = self._read_addresses()
        except HomeError:
            info = {}
        if info.get("pid") == pid and isinstance(info.get("listen"), str):
            return f"pid {pid}, listening on {info['listen']}"
        return f"pid {pid}, its address is not written yet"

    def unlock(self) -> None:
        """Release ``home.lock`` (if this object holds it).

        ``home.json`` stays: agents and ``mtpkt send`` keep dialing the last
        address, and reach the next home if it listens there again.
        """
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        os.close(fd)  # closing the file releases the flock
        self._unlock_area()

    @property
    def locked(self) -> bool:
        """Whether this object holds ``home.lock``."""
        return self._lock_fd is not None

    def write_addresses(self, *, listen: str, publish: str) -> None:
        """Write ``home.json`` atomically: this process's pid, its two addresses, the start time.

        Args:
            listen: the request endpoint, as peers on other hosts dial it
                (see :func:`bus.dial_address`).
            publish: the live stream endpoint, likewise.

        Raises:
            HomeError: the file cannot be written.
        """
        self._make_dir(self.path)
        record = {
            "pid": os.getpid(),
            "listen": listen,
            "publish": publish,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        data = (json.dumps(record, indent=2) + "\n").encode()
        try:
            atomic_write(self.address_path, data)  # readers see the old file or the new one
        except OSError as exc:
            raise HomeError(f"cannot write {self.address_path}: {exc.strerror or exc}") from None

    # -- everyone else's side -----------------------------------------------------------

    def key(self, key_file: Path | None = None) -> bytes:
        """The area's secret, from ``.mtpkt/secret`` or ``key_file``.

        Raises:
            HomeError: the file is missing, unreadable, too short, or readable or
                writable by group or others (the line says how to fix it).
        """
        path = self.secret_path if key_file is None else Path(key_file)
        try:
            info = path.stat()
        except FileNotFoundError:
            if key_file is None:
                raise HomeError(
                    f"no secret in {self.path}: start `mtpkt home` there first, or pass --key-file"
                ) from None
            raise HomeError(f"key file {path} does not exist") from None
        except OSError as exc:
            raise HomeError(f"cannot read the key {path}: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise HomeError(f"the key {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:  # like ssh with a private key: a secret others can read is no secret
            raise HomeError(
                f"the key {path} is open to group or others (mode {mode:04o}):"
                f" run `chmod 600 {path}`"
            )
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise HomeError(f"cannot read the key {path}: {exc.strerror}") from None
        if len(key) < MIN_KEY_SIZE:
            raise HomeError(
                f"the key {path} holds {len(key)} bytes, fewer than {MIN_KEY_SIZE}: it is not a key"
            )
        return key

    def _read_addresses(self) -> dict[str, object]:
        problem = ""
        record: object
        try:
            record = json.loads(self.address_path.read_bytes())
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as exc:
            record = None
            problem = "not valid JSON" if isinstance(exc, ValueError) else str(exc.strerror)
        if record is not None and not isinstance(record, dict):
            record, problem = None, "not a JSON object"
        if record is None:
            detail = f" ({problem})" if problem else ""
            raise HomeError(
                f"no home address in {self.address_path}{detail}:"
                f" start `mtpkt home` in {self.area} or pass --home"
            )
        return record

    def addresses(self) -> tuple[str, str]:
        """``(listen, publish)``: where the area's home takes requests and publishes status.

        These are what the newest home wrote; it may have stopped since.

        Raises:
            HomeError: ``home.json`` is missing or does not hold both addresses.
        """
        record = self._read_addresses()
        listen, publish = record.get("listen"), record.get("publish")
        if not (isinstance(listen, str) and listen and isinstance(publish, str) and publish):
            raise HomeError(
                f"no home address in {self.address_path} (listen or publish missing):"
                f" start `mtpkt home` in {self.area} or pass --home"
            )
        return listen, publish

    def agent_dir(self, name: str) -> Path:
        """``.mtpkt/agents/<name>/``, created (mode 0700) if missing.

        Raises:
            HomeError: ``name`` is empty or holds ``/``, ``..`` or NUL; or the
                directory cannot be created.
        """
        if not name or "/" in name or ".." in name or "\x00" in name or name == ".":
            raise HomeError(f"agent name {name!r} cannot be used as a directory name")
        path = self.agents_dir / name
        for directory in (self.path, self.agents_dir, path):
            self._make_dir(directory)
        return path
