"""Run directories on disk: removing, archiving and restoring one test instance's tree.

The filesystem side of ``clean``, ``rerunclean`` and ``archive``. Nothing here
leaves the run tree: names are checked by :func:`agents.area.paths.run_dir`,
symlinks are never followed (removed or stored as links), and an archive is
only restored after its checksum matches and every member stays inside.

One link is followed: with ``[disks]`` a test's directory in the linktree is a
link to ``<disk>/<target>/<runname>/<test>`` (:mod:`agents.area.disks`). Given
the area's disks, such a link is taken for the directory it leads to, once
that is checked to lie inside one of them: ``clean`` removes that directory
and then the link (as Megatest's ``runs:remove-test-directory``,
runs.scm:2243-2290), ``archive`` packs it, ``restore`` unpacks into it.
Files are streamed, never read whole. Every failure is a :class:`RunDirError`
whose ``str()`` is one line naming the path and the reason.
"""

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import attrs

from mtpkt.agents.area import Area, AreaError, PathError
from mtpkt.agents.area.configcache import CACHE_NAME
from mtpkt.agents.area.paths import check_name, inside, inside_any, run_dir, run_root
from mtpkt.store.files import atomic_file, fsync_dir

__all__ = [
    # Errors and results
    "ArchiveInfo",
    "RunDirError",
    # Paths
    "archive_root",
    "instance_dir",
    # Operations
    "archive_test_dir",
    "remove_archive",
    "remove_test_dir",
    "restore_test_dir",
    "verify_archive",
]

# The ways writing, reading or unpacking a .tar.gz fails; each becomes one RunDirError line.
_FAILURES = (OSError, tarfile.TarError, EOFError, zlib.error)


class RunDirError(AreaError):
    """A run directory or archive that cannot be removed, packed or restored (one line)."""


@attrs.frozen
class ArchiveInfo:
    """One packed run directory."""

    path: Path
    """The archive file, ``<archive root>/<target>/<runname>/<test>[/<item>].tar.gz``."""
    sha256: str
    """Hex digest of the archive file: pass it back to restore."""
    size: int
    """Bytes of the archive file."""
    files: int
    """Regular files packed."""


@attrs.frozen
class _Entry:
    """What verification compares: one file, directory or symlink of a tree."""

    kind: str
    mode: int = 0
    size: int = 0
    data: str = ""
    """Content hash of a file, target of a symlink."""


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _digest(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def instance_dir(
    linktree: Path,
    target: str,
    runname: str,
    test: str,
    item: str = "",
    *,
    disks: Sequence[Path] = (),
) -> Path:
    """``<linktree>/<target>/<runname>/<test>[/<item>]``, checked.

    Raises:
        RunDirError: a part is absolute, empty or ``..``, or a symlink on the way
            (the run dir itself included) leads out of the linktree and out of
            every disk of ``disks``.
    """
    try:
        return run_dir(linktree, target, runname, test, item, disks=disks)
    except PathError as exc:
        raise RunDirError(str(exc)) from None


def _on_disk(path: Path, linktree: Path, disks: Sequence[Path]) -> Path | None:
    """Where ``path``, a symlink into one of ``disks`` (not into the linktree), leads;
    None for anything else."""
    if not disks or not path.is_symlink():
        return None
    real = Path(os.path.realpath(path))
    if inside(linktree, real) or not inside_any(disks, real):
        return None
    return real


def _remove_disk_dir(link: Path, real: Path, disks: Sequence[Path]) -> None:
    """Remove a test's directory on a disk, then the link to it, then the disk's
    directories it leaves empty (up to the disk)."""
    if real.is_dir() and not real.is_symlink():
        shutil.rmtree(real)
    link.unlink()
    top = next(Path(os.path.realpath(disk)) for disk in disks if inside(disk, real))
    for parent in real.parents:
        if parent == top or not inside(top, parent):
            break
        try:
            parent.rmdir()
        except OSError:
            break


def remove_test_dir(
    linktree: Path,
    target: str,
    runname: str,
    test: str,
    item: str = "",
    *,
    disks: Sequence[Path] = (),
) -> bool:
    """Remove a test instance's run directory, then the parents it leaves empty.

    Symlinks inside are removed as links; what they point to is never touched.
    With ``item=""`` the test's own directory goes, and with it the directories
    of all its items. Emptied parents are removed up to, not including, the
    linktree (best effort: a parent that cannot go stays); the run's directory
    goes once it holds nothing but the run's cached configs
    (:mod:`~mtpkt.agents.area.configcache`). A test's directory that is a link
    into one of ``disks`` goes with the directory it leads to.

    Returns:
        Whether there was something to remove.

    Raises:
        RunDirError: the path is unsafe (see :func:`instance_dir`) or removing failed.
    """
    path = instance_dir(linktree, target, runname, test, item, disks=disks)
    if not os.path.lexists(path):
        return False
    try:
        if (real := _on_disk(path, linktree, disks)) is not None:
            _remove_disk_dir(path, real, disks)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # fd-based on Linux: does not follow links, even if swapped in
        else:
            path.unlink()  # a link (leading inside, instance_dir checked) or a stray file
    except OSError as exc:
        raise RunDirError(f"cannot remove {path}: {_why(exc)}") from None
    runpath = run_root(linktree, target, runname)
    for parent in path.parents:
        if parent == linktree:
            break
        try:
            if parent == runpath and os.listdir(parent) == [CACHE_NAME]:
                (parent / CACHE_NAME).unlink()  # the run's last test went: its cache goes too
            parent.rmdir()
        except OSError:
            break  # not empty (another test, another run) or not ours to remove
    return True


def archive_root(area: Area) -> Path:
    """Where archives go: ``<first [archive-disks] path>/<testsuite>``, else
    ``<area>/.mtpkt/archive``.

    The testsuite is ``[setup] testsuite``, else the area directory's name; a
    relative disk path is taken from the area's home.

    Raises:
        ConfigError: a value cannot be computed.
        PathError: the testsuite name cannot be a directory name.
    """
    for key in area.config.keys("archive-disks"):
        disk = (area.config.get("archive-disks", key, env=area.env, cwd=area.home) or "").strip()
        if disk:
            suite = (area.config.get("setup", "testsuite") or "").strip() or area.home.name
            return area.home / disk / check_name("testsuite", suite)
    return area.home / ".mtpkt" / "archive"


def remove_archive(root: Path, path: Path) -> bool:
    """Delete one archive file, then the directories under ``root`` it leaves empty.

    Only a ``.tar.gz`` file that lies inside ``root`` (the area's :func:`archive_root`, every
    link on the way resolved) and is not itself a link is deleted: a record naming anything
    else is refused, so a changed record cannot delete files elsewhere.

    Returns:
        Whether there was a file to delete (one already gone is not an error).

    Raises:
        RunDirError: the path lies outside ``root``, is not an archive file, or deleting failed.
    """
    if not os.path.lexists(path):
        return False
    if not path.is_absolute() or not inside(root, path) or path.is_symlink():
        raise RunDirError(f"not removing {path}: it is not inside the archive root {root}")
    if not path.name.endswith(".tar.gz") or not path.is_file():
        raise RunDirError(f"not removing {path}: it is not an archive file (.tar.gz)")
    try:
        path.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot remove archive {path}: {_why(exc)}") from None
    top = Path(os.path.realpath(root))
    emptied = Path(os.path.realpath(path.parent))
    for parent in (emptied, *emptied.parents):
        if parent == top or not inside(top, parent):
            break
        try:
            parent.rmdir()
        except OSError:
            break  # not empty: another test's archive
    return True


def _link_escapes(name: str, linkname: str) -> bool:
    """Whether a symlink at ``name`` (relative to the tree) leads out of it, by its text."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), linkname))
    return linkname.startswith("/") or joined == ".." or joined.startswith("../")


def _tree(root: Path) -> Iterator[tuple[str, Path]]:
    """Every entry below ``root`` (``"."`` first), relative names, symlinks not followed."""
    yield ".", root

    def fail(exc: OSError) -> None:
        raise exc

    for folder, dirs, files in os.walk(root, onerror=fail):
        for name in sorted(dirs + files):
            path = Path(folder, name)
            yield path.relative_to(root).as_posix(), path


def _manifest(root: Path) -> dict[str, _Entry]:
    """The tree as it is on disk; refuses symlinks leading out (they could not be restored)."""
    entries = {}
    for name, path in _tree(root):
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            link = os.readlink(path)
            if _link_escapes(name, link) or not inside(root, path):
                raise RunDirError(f"cannot archive {root}: symlink {name} -> {link} leads out")
            entries[name] = _Entry("link", data=link)
        elif stat.S_ISDIR(info.st_mode):
            entries[name] = _Entry("dir", mode)
        elif stat.S_ISREG(info.st_mode):
            with path.open("rb") as stream:
                entries[name] = _Entry("file", mode, info.st_size, _digest(stream))
    return entries  # sockets, FIFOs and devices hold no data: left out, as when packing


def _listing(archive: IO[bytes]) -> dict[str, _Entry]:
    """The tree as the archive holds it, file contents hashed as they stream by."""
    entries: dict[str, _Entry] = {}
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        for member in tar:
            name = posixpath.normpath(member.name)
            if member.isreg():
                stream = tar.extractfile(member)
                assert stream is not None
                entries[name] = _Entry("file", member.mode, member.size, _digest(stream))
            elif member.islnk():
                entries[name] = entries.get(posixpath.normpath(member.linkname), _Entry("?"))
            elif member.isdir():
                entries[name] = _Entry("dir", member.mode)
            else:
                entries[name] = _Entry("link" if member.issym() else "?", data=member.linkname)
    return entries


def _packable(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return member if member.isreg() or member.isdir() or member.issym() or member.islnk() else None


def archive_test_dir(
    linktree: Path,
    archive_root: Path,
    target: str,
    runname: str,
    test: str,
    item: str = "",
    *,
    disks: Sequence[Path] = (),
) -> ArchiveInfo:
    """Pack a run directory into ``<archive_root>/<target>/<runname>/<test>[/<item>].tar.gz``.

    With ``item=""`` the test's whole directory is packed, item directories
    included. The archive is written to a temporary file beside it, synced, read
    back and compared with the run directory (every file, directory and symlink;
    sizes, modes, content hashes, link targets), and only then renamed into place.
    Member names are relative (``./step.log``); symlinks are stored as links.
    A test's directory that is a link into one of ``disks`` is packed as the
    directory it leads to.

    Raises:
        RunDirError: the run directory is missing or unsafe, holds a symlink leading
            out of it, cannot be read, the archive cannot be written (disk full …)
            or does not match the run directory.
    """
    source = instance_dir(linktree, target, runname, test, item, disks=disks)
    source = _on_disk(source, linktree, disks) or source
    if source.is_symlink() or not source.is_dir():
        why = "it is a symlink" if source.is_symlink() else "no such run directory"
        raise RunDirError(f"cannot archive {source}: {why}")
    dest = archive_root / target / runname / test / item  # item "" adds nothing
    dest = dest.with_name(dest.name + ".tar.gz")
    if not inside(archive_root, dest):
        raise RunDirError(f"cannot archive {source}: {dest} leads out of {archive_root}")
    try:
        expected = _manifest(source)  # first: a link leading out is refused before any writing
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dest, mode=source.stat().st_mode & 0o644) as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                tar.add(source, arcname=".", filter=_packable)
            raw.seek(0)
            packed = _listing(raw)
            if packed != expected:
                differ = set(packed) | set(expected)
                wrong = min(n for n in differ if packed.get(n) != expected.get(n))
                raise RunDirError(f"archive of {source} does not match it: {wrong} differs")
            raw.seek(0)
            digest = _digest(raw)
            size = os.fstat(raw.fileno()).st_size
    except _FAILURES as exc:  # disk full, unreadable files, an archive that does not read back
        raise RunDirError(f"cannot archive {source} to {dest}: {_why(exc)}") from None
    files = sum(entry.kind == "file" for entry in expected.values())
    return ArchiveInfo(path=dest, sha256=digest, size=size, files=files)


def verify_archive(path: Path, sha256: str) -> None:
    """Check an archive file against the digest recorded when it was made.

    Raises:
        RunDirError: the file is missing or unreadable, or its digest differs.
    """
    try:
        with path.open("rb") as stream:
            digest = _digest(stream)
    except OSError as exc:
        raise RunDirError(f"cannot read archive {path}: {exc.strerror}") from None
    if digest != sha256.lower():
        raise RunDirError(f"archive {path} is damaged: sha256 {digest}, expected {sha256}")


def _unsafe(member: tarfile.TarInfo, name: str, seen: dict[str, tarfile.TarInfo]) -> str:
    """Why a member cannot be restored, or "": what tarfile's ``data`` filter lets through.

    The filter, applied as each member is extracted (:func:`_keep_modes`), refuses
    names and links that lead out and special files. It strips a leading ``/``
    instead of refusing it, passes a ``..`` that comes back inside (``l/../f``
    makes a directory ``l`` where the archive's symlink ``l`` may belong), and
    looks neither at names given twice nor at what a hard link names.
    :func:`archive_test_dir` writes none of these.
    """
    if member.name.startswith("/"):
        return "is an absolute path"
    if ".." in member.name.split("/"):
        return "leaves the tree"
    if name in seen:
        return "appears twice"
    if member.islnk():
        # A file met before only: when tarfile cannot link, it extracts the member the link
        # names in its place, unfiltered, or fails with a KeyError if there is none.
        first = seen.get(posixpath.normpath(member.linkname))
        return "" if first is not None and first.isreg() else "is a hard link to no file of it"
    if name == "." and not member.isdir():
        return "is the tree itself but not a directory"
    return ""


def _checked_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, refused if :func:`_unsafe` or under a symlink of the archive; symlinks
    last, so that extracting never writes through a link of the archive."""
    seen: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        name = posixpath.normpath(member.name)
        if unsafe := _unsafe(member, name, seen):
            raise RunDirError(f"archive member {member.name!r} {unsafe}: not restored into {dest}")
        seen[name] = member
    links = {name for name, member in seen.items() if member.issym()}
    for name, member in seen.items():
        if not links.isdisjoint(map(str, Path(name).parents)):
            raise RunDirError(f"archive member {member.name!r} lies under a symlink: not restored")
    return sorted(seen.values(), key=lambda member: member.issym())  # stable: order kept


def _keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter (no name or link leading out, no devices, no owners), but
    with the file and directory modes of the run directory kept (``data`` drops group/other
    write and directory modes); setuid, setgid and sticky bits still go.

    Raises:
        tarfile.FilterError: the member is refused.
    """
    checked = tarfile.data_filter(member, dest)
    return checked if member.issym() else checked.replace(mode=member.mode & 0o777, deep=False)


def restore_test_dir(
    linktree: Path,
    archive: Path,
    sha256: str,
    target: str,
    runname: str,
    test: str,
    item: str = "",
    *,
    disks: Sequence[Path] = (),
) -> int:
    """Unpack an archive made by :func:`archive_test_dir` back into its run directory.

    The checksum is checked first. The archive is unpacked into a temporary
    directory beside the run directory, checked again (no symlink resolving out
    of it) and renamed into place, so the run directory appears whole or not at
    all. Contents, modes, mtimes and symlinks come back as they were. Where
    the test's directory is a link into one of ``disks``, the archive is
    unpacked on the disk, where the link leads.

    Returns:
        The number of regular files restored.

    Raises:
        RunDirError: the path is unsafe; the archive is missing or damaged; a member
            is absolute, holds ``..``, is a device, or is a link leading out; the run
            directory exists and is not an empty directory; or writing failed.
    """
    dest = instance_dir(linktree, target, runname, test, item, disks=disks)
    dest = _on_disk(dest, linktree, disks) or dest
    verify_archive(archive, sha256)
    tmp: Path | None = None
    try:
        if os.path.lexists(dest) and (
            dest.is_symlink() or not dest.is_dir() or any(dest.iterdir())
        ):
            raise RunDirError(f"cannot restore {dest}: it exists and is not an empty directory")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".restore", dir=dest.parent))
        with tarfile.open(archive, "r:gz", errorlevel=2) as tar:
            members = _checked_members(tar, dest)
            tar.extractall(tmp, members=members, filter=_keep_modes)
        for name, path in _tree(tmp):
            if path.is_symlink() and not inside(tmp, path):
                raise RunDirError(f"archive member {name!r} resolves out of {dest}: not restored")
        os.replace(tmp, dest)  # replaces an empty directory, fails on anything else
        tmp = None
        fsync_dir(dest.parent)
        return sum(member.isreg() or member.islnk() for member in members)
    except _FAILURES as exc:  # refused members (tarfile.FilterError), disk full, bad gzip …
        raise RunDirError(f"cannot restore {dest} from {archive}: {_why(exc)}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
