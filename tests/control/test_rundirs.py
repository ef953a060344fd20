"""Run directories on disk: remove, archive and restore, on real files under tmp_path."""

import hashlib
import io
import os
import shutil
import stat
import tarfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mtpkt.agents import rundirs
from mtpkt.agents.area import Area
from mtpkt.agents.rundirs import RunDirError

TARGET = "linux/x86"
RUN = "nightly"
MTIME = 1_700_000_000_123_456_000  # ns: a fraction that a whole-second format would lose


@pytest.fixture
def linktree(tmp_path: Path) -> Path:
    path = tmp_path / "lt"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the linktree that nothing may touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "keep.txt").write_text("precious")
    return path


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    os.utime(path, ns=(MTIME, MTIME))


def make_test_dir(linktree: Path, test: str = "build") -> Path:
    """A test's run dir with two items, odd modes, empty dirs, links and a hard link."""
    root = linktree / TARGET / RUN / test
    write(root / "megatest.log", "top\n" * 1000)
    write(root / "run.sh", "#!/bin/sh\n", 0o750)
    write(root / "a" / "b" / "step.log", "item a/b\n", 0o600)
    write(root / "a" / "b" / "readonly.txt", "frozen\n", 0o444)
    write(root / "c" / "step.log", "item c\n", 0o664)
    (root / "c" / "empty").mkdir()
    (root / "c" / "empty").chmod(0o750)
    (root / "latest.log").symlink_to("a/b/step.log")
    (root / "a" / "up").symlink_to("../c")
    (root / "a" / "dangling").symlink_to("nothing-here")
    os.link(root / "megatest.log", root / "c" / "same.log")
    for path in [root / "c" / "empty", root / "c", root / "a" / "b", root / "a", root]:
        os.utime(path, ns=(MTIME, MTIME))
    return root


def snapshot(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Every entry: kind, mode, mtime (µs) and content or link target."""
    result = {}
    for folder, dirs, files in os.walk(root):
        for name in [".", *dirs, *files] if Path(folder) == root else [*dirs, *files]:
            path = Path(folder, name)
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            mtime = info.st_mtime_ns // 1000
            if stat.S_ISLNK(info.st_mode):
                result[rel] = ("link", 0, 0, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                result[rel] = ("dir", stat.S_IMODE(info.st_mode), mtime, "")
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                result[rel] = ("file", stat.S_IMODE(info.st_mode), mtime, digest)
    return result


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- round trip ---------------------------------------------------------------------------


def test_archive_remove_restore_gives_back_the_same_tree(linktree: Path, tmp_path: Path) -> None:
    root = make_test_dir(linktree)
    before = snapshot(root)
    archives = tmp_path / "archive"

    info = rundirs.archive_test_dir(linktree, archives, TARGET, RUN, "build")

    assert info.path == archives / TARGET / RUN / "build.tar.gz"
    assert info.sha256 == digest_of(info.path)
    assert info.size == info.path.stat().st_size
    assert info.files == 6
    assert [p.name for p in info.path.parent.iterdir()] == ["build.tar.gz"]  # no temp file left
    with tarfile.open(info.path) as tar:
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in tar.getnames())
        assert tar.getmember("./latest.log").issym()

    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build")
    assert list(linktree.iterdir()) == []

    assert rundirs.restore_test_dir(linktree, info.path, info.sha256, TARGET, RUN, "build") == 6
    assert snapshot(root) == before
    assert (root / "latest.log").is_symlink()
    assert os.readlink(root / "a" / "up") == "../c"
    assert (root / "c" / "same.log").stat().st_ino == (root / "megatest.log").stat().st_ino
    assert sorted(p.name for p in root.parent.iterdir()) == ["build"]  # no temp dir left


def test_one_item_is_archived_and_restored_on_its_own(linktree: Path, tmp_path: Path) -> None:
    root = make_test_dir(linktree)
    before = snapshot(root / "a" / "b")

    info = rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build", "a/b")
    assert info.path == tmp_path / "ar" / TARGET / RUN / "build" / "a" / "b.tar.gz"
    assert info.files == 2
    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build", "a/b")
    assert not (root / "a" / "b").exists()
    assert (root / "a" / "up").is_symlink()  # the rest of the test is untouched

    (root / "a" / "b").mkdir()  # an empty directory in the way is fine
    rundirs.restore_test_dir(linktree, info.path, info.sha256, TARGET, RUN, "build", "a/b")
    assert snapshot(root / "a" / "b") == before


def test_verification_sees_a_changed_file_or_link(linktree: Path, tmp_path: Path) -> None:
    # What archive_test_dir compares before renaming the archive into place.
    root = make_test_dir(linktree)
    info = rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")

    def listing() -> object:
        with info.path.open("rb") as archive:
            return rundirs._listing(archive)

    assert listing() == rundirs._manifest(root)
    write(root / "c" / "step.log", "item C\n", 0o664)  # same size, other content
    assert listing() != rundirs._manifest(root)
    write(root / "c" / "step.log", "item c\n", 0o664)
    (root / "latest.log").unlink()
    (root / "latest.log").symlink_to("c/step.log")
    assert listing() != rundirs._manifest(root)


def test_archive_refuses_a_missing_run_dir(linktree: Path, tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "never-ran")


def test_archive_refuses_a_run_dir_with_a_link_leading_out(
    linktree: Path, outside: Path, tmp_path: Path
) -> None:
    root = make_test_dir(linktree)
    (root / "tools").symlink_to(outside)
    with pytest.raises(RunDirError, match=r"symlink tools -> .* leads out"):
        rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")
    assert not (tmp_path / "ar").exists()  # refused before anything was written


def test_archive_that_cannot_be_written_is_one_line(linktree: Path, tmp_path: Path) -> None:
    make_test_dir(linktree)
    (tmp_path / "ar").write_text("a file where the archive directory should be")
    with pytest.raises(RunDirError, match=r"cannot archive .*build to .*build.tar.gz: ") as raised:
        rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")
    assert "\n" not in str(raised.value)


def test_archive_refuses_a_link_out_below_the_archive_root(
    linktree: Path, outside: Path, tmp_path: Path
) -> None:
    make_test_dir(linktree)
    (tmp_path / "ar").mkdir()
    (tmp_path / "ar" / "linux").symlink_to(outside)
    with pytest.raises(RunDirError, match="leads out of"):
        rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_restore_refuses_a_run_dir_that_is_not_empty(linktree: Path, tmp_path: Path) -> None:
    root = make_test_dir(linktree)
    info = rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")
    with pytest.raises(RunDirError, match="exists and is not an empty directory"):
        rundirs.restore_test_dir(linktree, info.path, info.sha256, TARGET, RUN, "build")
    assert (root / "megatest.log").read_text() == "top\n" * 1000


# -- damaged archives ---------------------------------------------------------------------


def test_checksum_mismatch_and_missing_archive_are_refused(linktree: Path, tmp_path: Path) -> None:
    make_test_dir(linktree)
    info = rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")
    rundirs.remove_test_dir(linktree, TARGET, RUN, "build")

    with pytest.raises(RunDirError, match=r"is damaged: sha256 .*, expected 0+$"):
        rundirs.restore_test_dir(linktree, info.path, "0" * 64, TARGET, RUN, "build")
    with pytest.raises(RunDirError, match=r"cannot read archive .*gone.tar.gz"):
        rundirs.verify_archive(tmp_path / "gone.tar.gz", info.sha256)
    assert list(linktree.iterdir()) == []


def test_corrupted_archive_is_refused_and_leaves_nothing(linktree: Path, tmp_path: Path) -> None:
    make_test_dir(linktree)
    info = rundirs.archive_test_dir(linktree, tmp_path / "ar", TARGET, RUN, "build")
    rundirs.remove_test_dir(linktree, TARGET, RUN, "build")
    data = bytearray(info.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.path.write_bytes(data)

    with pytest.raises(RunDirError, match="is damaged"):
        rundirs.verify_archive(info.path, info.sha256)
    # Even with a digest that matches the damage, the archive does not unpack.
    with pytest.raises(RunDirError, match="cannot restore") as raised:
        rundirs.restore_test_dir(linktree, info.path, digest_of(info.path), TARGET, RUN, "build")
    assert "\n" not in str(raised.value)
    assert list((linktree / TARGET / RUN).iterdir()) == []


# -- hostile archives ---------------------------------------------------------------------


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> tarfile.TarInfo:
    """A file member added to ``tar``; the member."""
    member = tarfile.TarInfo(name)
    member.size = len(data)
    tar.addfile(member, io.BytesIO(data))
    return member


def add_link(
    tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE
) -> tarfile.TarInfo:
    """A link member (symbolic unless ``kind`` says hard) added to ``tar``; the member."""
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, target
    tar.addfile(member)
    return member


def add_device(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    """A character device member added to ``tar``; the member."""
    member = tarfile.TarInfo(name)
    member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 3
    tar.addfile(member)
    return member


def write_through_a_symlink(tar: tarfile.TarFile, out: Path) -> None:
    add_link(tar, "./l", ".")
    add_file(tar, "./l/evil")


def symlink_after_a_member_under_it(tar: tarfile.TarFile, out: Path) -> None:
    add_file(tar, "./l/evil")
    add_link(tar, "./l", ".")


def symlink_chain_out(tar: tarfile.TarFile, out: Path) -> None:
    add_link(tar, "./m", "d/e/l/../../../../outside")
    add_link(tar, "./d/e/l", "../..")


def chain_out_by_order(tar: tarfile.TarFile, out: Path) -> None:
    add_link(tar, "./m", "d/e/l/..")
    add_link(tar, "./d/e/l", "../..")


HOSTILE: dict[str, Callable[[tarfile.TarFile, Path], object]] = {
    "dotdot": lambda tar, out: add_file(tar, "./a/../../../outside/evil"),
    "absolute": lambda tar, out: add_file(tar, str(out / "evil")),
    "symlink out": lambda tar, out: add_link(tar, "./evil", str(out)),
    "relative symlink out": lambda tar, out: add_link(tar, "./sub/evil", "../../../../outside"),
    "write through a symlink": write_through_a_symlink,
    "symlink after a member under it": symlink_after_a_member_under_it,
    "symlink chain out": symlink_chain_out,
    "chain out by order": chain_out_by_order,
    "hardlink out": lambda tar, out: add_link(
        tar, "./evil", str(out / "keep.txt"), tarfile.LNKTYPE
    ),
    "relative hardlink out": lambda tar, out: add_link(
        tar, "./evil", "../../../../outside/keep.txt", tarfile.LNKTYPE
    ),
    "device": lambda tar, out: add_device(tar, "./null"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_members_are_refused_and_nothing_is_written(
    kind: str, linktree: Path, outside: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "hostile.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_file(tar, "./fine.log")
        HOSTILE[kind](tar, outside)
    before = snapshot(outside)

    with pytest.raises(RunDirError, match=r"cannot restore|not restored") as raised:
        rundirs.restore_test_dir(linktree, archive, digest_of(archive), TARGET, RUN, "build")

    assert "\n" not in str(raised.value)
    assert snapshot(outside) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tar.gz", "lt", "outside"]
    assert list((linktree / TARGET / RUN).iterdir()) == []  # no run dir, no temp dir


def test_extraction_filter_keeps_modes_and_inner_links_but_refuses_escapes(tmp_path: Path) -> None:
    # The last line of defence, behind the member checks: tarfile's data filter with modes kept.
    def member(
        name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = ""
    ) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.linkname = kind, mode, link
        return info

    dest = str(tmp_path)
    assert rundirs._keep_modes(member("./a.log", mode=0o664), dest).mode == 0o664
    assert rundirs._keep_modes(member("./ro", mode=0o444), dest).mode == 0o444
    assert rundirs._keep_modes(member("./d", tarfile.DIRTYPE, 0o2750), dest).mode == 0o750
    inner = rundirs._keep_modes(member("./x/l", tarfile.SYMTYPE, link="../y"), dest)
    assert inner.linkname == "../y"
    for bad in [
        member("../x"),
        member("./l", tarfile.SYMTYPE, link="/etc"),
        member("./x/l", tarfile.SYMTYPE, link="../../y"),
        member("./h", tarfile.LNKTYPE, link="../y"),
        member("./null", tarfile.CHRTYPE),
    ]:
        with pytest.raises(tarfile.FilterError):
            rundirs._keep_modes(bad, dest)


# -- removing -----------------------------------------------------------------------------


def test_remove_deletes_links_not_what_they_point_to(linktree: Path, outside: Path) -> None:
    root = make_test_dir(linktree)
    (root / "tools").symlink_to(outside)
    (root / "a" / "keep").symlink_to(outside / "keep.txt")

    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build")

    assert not os.path.lexists(root)
    assert (outside / "keep.txt").read_text() == "precious"


def test_remove_refuses_a_run_dir_that_is_a_link_out(
    linktree: Path, outside: Path, tmp_path: Path
) -> None:
    (linktree / TARGET / RUN).mkdir(parents=True)
    (linktree / TARGET / RUN / "build").symlink_to(outside)
    info_dir = tmp_path / "ar"

    with pytest.raises(RunDirError, match="leads out of the linktree"):
        rundirs.remove_test_dir(linktree, TARGET, RUN, "build")
    with pytest.raises(RunDirError, match="leads out of the linktree"):
        rundirs.archive_test_dir(linktree, info_dir, TARGET, RUN, "build")
    with pytest.raises(RunDirError, match="leads out of the linktree"):
        rundirs.restore_test_dir(linktree, tmp_path / "x", "0", TARGET, RUN, "build")
    assert (outside / "keep.txt").read_text() == "precious"
    assert (linktree / TARGET / RUN / "build").is_symlink()


def test_remove_of_a_run_dir_linked_inside_removes_the_link(linktree: Path) -> None:
    elsewhere = make_test_dir(linktree, "elsewhere")
    (linktree / TARGET / RUN / "build").symlink_to(elsewhere)

    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build")

    assert not os.path.lexists(linktree / TARGET / RUN / "build")
    assert (elsewhere / "megatest.log").is_file()


def test_remove_takes_empty_parents_up_to_the_linktree(linktree: Path) -> None:
    make_test_dir(linktree, "build")
    make_test_dir(linktree, "check")

    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build")
    assert [p.name for p in (linktree / TARGET / RUN).iterdir()] == ["check"]

    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "check")
    assert linktree.is_dir()
    assert list(linktree.iterdir()) == []
    assert not rundirs.remove_test_dir(linktree, TARGET, RUN, "check")  # nothing left


@pytest.mark.parametrize(
    ("target", "runname", "test", "item"),
    [
        (TARGET, RUN, "..", ""),
        (TARGET, RUN, "a/b", ""),
        (TARGET, RUN, "build", "../../.."),
        (TARGET, RUN, "build", "a/../../x"),
        (TARGET, RUN, "build", "/etc"),
        ("/etc", RUN, "build", ""),
        ("linux/..", RUN, "build", ""),
        (TARGET, "..", "build", ""),
    ],
)
def test_unsafe_names_are_refused(
    target: str, runname: str, test: str, item: str, linktree: Path, tmp_path: Path
) -> None:
    make_test_dir(linktree)
    with pytest.raises(RunDirError):
        rundirs.remove_test_dir(linktree, target, runname, test, item)
    with pytest.raises(RunDirError):
        rundirs.archive_test_dir(linktree, tmp_path / "ar", target, runname, test, item)
    assert (linktree / TARGET / RUN / "build" / "megatest.log").is_file()
    assert not (tmp_path / "ar").exists()


# -- where archives go --------------------------------------------------------------------


def make_area(root: Path, config: str) -> Area:
    root.mkdir()
    (root / "megatest.config").write_text(textwrap.dedent(config).lstrip())
    return Area.load(root, env={"PATH": os.environ["PATH"], "USER": "ann"})


def test_archive_root_is_the_first_archive_disk_with_the_testsuite(tmp_path: Path) -> None:
    area = make_area(
        tmp_path / "suite",
        f"""
        [setup]
        testsuite regress

        [archive-disks]
        disk0 {tmp_path}/#{{getenv USER}}/adisk1
        disk1 /mfs/tmp/archive
        """,
    )
    assert rundirs.archive_root(area) == tmp_path / "ann" / "adisk1" / "regress"


def test_archive_root_relative_disk_and_default_testsuite(tmp_path: Path) -> None:
    area = make_area(tmp_path / "suite", "[archive-disks]\ndisk0 store/archives\n")
    assert rundirs.archive_root(area) == tmp_path / "suite" / "store" / "archives" / "suite"


def test_archive_root_defaults_to_the_area_state_dir(tmp_path: Path) -> None:
    area = make_area(tmp_path / "suite", "[fields]\nOS TEXT\n")
    assert rundirs.archive_root(area) == tmp_path / "suite" / ".mtpkt" / "archive"


# [disks]: a test's directory in the linktree is a link into a disk (launch.scm:1173-1240).


def on_disk(linktree: Path, disk: Path, test: str = "build") -> Path:
    """A test's run dir made on ``disk``, with its link in the linktree, as the agent makes it."""
    real = make_test_dir(disk, test)
    (linktree / TARGET / RUN).mkdir(parents=True, exist_ok=True)
    (linktree / TARGET / RUN / test).symlink_to(real)
    return real


def test_clean_of_a_test_on_a_disk_removes_its_directory_there_and_the_link(
    linktree: Path, tmp_path: Path, outside: Path
) -> None:
    """runs.scm:2243-2290 (runs:remove-test-directory): the real directory goes, then the link;
    an item goes through the link; the disk's emptied directories go, the disk stays."""
    disk = tmp_path / "disk"
    real = on_disk(linktree, disk)
    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build", "c", disks=[disk])
    assert not (real / "c").exists()
    assert (real / "a").is_dir()
    assert rundirs.remove_test_dir(linktree, TARGET, RUN, "build", "", disks=[disk])
    assert not os.path.lexists(linktree / TARGET / RUN / "build")
    assert not real.exists()
    assert disk.is_dir()
    assert not any(disk.iterdir())
    assert (outside / "keep.txt").read_text() == "precious"


def test_a_link_into_no_listed_disk_is_refused_and_left_alone(
    linktree: Path, tmp_path: Path
) -> None:
    """DESIGN (clean and archive stay inside the run's tree): without the disk in the list, the
    link leads out and nothing is removed, packed or followed."""
    disk = tmp_path / "disk"
    real = on_disk(linktree, disk)
    for call in (
        lambda: rundirs.remove_test_dir(linktree, TARGET, RUN, "build", disks=[tmp_path / "o"]),
        lambda: rundirs.remove_test_dir(linktree, TARGET, RUN, "build", "a"),
        lambda: rundirs.archive_test_dir(linktree, tmp_path / "arch", TARGET, RUN, "build"),
    ):
        with pytest.raises(RunDirError, match="leads out of the linktree"):
            call()
    assert (real / "megatest.log").is_file()


def test_archive_and_restore_of_a_test_on_a_disk(linktree: Path, tmp_path: Path) -> None:
    """The archive packs the directory the link leads to; removed, then restored, it comes back
    on the disk behind the same link when the link is there, whole."""
    disk = tmp_path / "disk"
    real = on_disk(linktree, disk)
    before = snapshot(real)
    archives = tmp_path / "arch"
    info = rundirs.archive_test_dir(linktree, archives, TARGET, RUN, "build", disks=[disk])
    assert info.files == 6
    for name in os.listdir(real):  # the disk's directory emptied, the link kept
        path = real / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    restored = rundirs.restore_test_dir(
        linktree, info.path, info.sha256, TARGET, RUN, "build", "", disks=[disk]
    )
    assert restored == 6
    assert (linktree / TARGET / RUN / "build").is_symlink()
    assert snapshot(real) == before


# -- removing archives (clean --archives) -------------------------------------------------


def test_remove_archive_deletes_the_file_and_the_directories_it_empties(
    linktree: Path, tmp_path: Path
) -> None:
    make_test_dir(linktree)
    root = tmp_path / "ar"
    build = rundirs.archive_test_dir(linktree, root, TARGET, RUN, "build")
    item = rundirs.archive_test_dir(linktree, root, TARGET, RUN, "build", "a/b")
    assert rundirs.remove_archive(root, item.path)
    assert not (root / TARGET / RUN / "build").exists()  # the item's directories went
    assert build.path.is_file()
    assert rundirs.remove_archive(root, build.path)
    assert not (root / "linux").exists()
    assert root.is_dir()  # the root itself stays
    assert not rundirs.remove_archive(root, build.path)  # gone already: nothing to do


def test_remove_archive_refuses_anything_but_an_archive_inside_the_root(
    tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "ar"
    (root / "x").mkdir(parents=True)
    stray = outside / "t.tar.gz"
    stray.write_text("not ours")
    (root / "x" / "link.tar.gz").symlink_to(stray)
    (root / "x" / "notes.txt").write_text("not an archive")
    (root / "x" / "dir.tar.gz").mkdir()
    for path, why in (
        (stray, "not inside the archive root"),
        (root / "x" / ".." / ".." / "outside" / "t.tar.gz", "not inside the archive root"),
        (root / "x" / "link.tar.gz", "not inside the archive root"),
        (root / "x" / "notes.txt", r"not an archive file \(\.tar\.gz\)"),
        (root / "x" / "dir.tar.gz", "not an archive file"),
    ):
        with pytest.raises(RunDirError, match=why) as raised:
            rundirs.remove_archive(root, path)
        assert "\n" not in str(raised.value)
    assert stray.read_text() == "not ours"
    assert (root / "x" / "notes.txt").is_file()
