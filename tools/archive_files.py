"""The archive files a clean left without records: found on disk, for ``mtpkt archives``.

``send clean`` without ``--archives`` keeps the tests' archive files, but when it removes
their records (and with the run's last test, the run's database) nothing records them any
more. They are still the user's: this finds them under the area's archive root, whose layout
is ``<target>/<runname>/<test>[/<item>].tar.gz`` (:func:`mtpkt.agents.rundirs.archive_root`),
so that they are listed, with what their path says, until someone deletes them.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from mtpkt.agents.area.testpatt import glob

if TYPE_CHECKING:
    from mtpkt.agents.area import Area
    from mtpkt.store import ArchiveListRow

__all__ = ["MAX_FILES", "unrecorded"]

MAX_FILES: Final = 100_000
"""Files looked at under the archive root at most (a bound on a huge or wrong tree)."""
_SUFFIX: Final = ".tar.gz"


def unrecorded(
    area: "Area", recorded: Iterable[str], target: str | None, runname: str | None
) -> list[tuple[tuple[str, str], "ArchiveListRow"]]:
    """The archive files under the area's archive root that no run's records name, as
    ``((target, runname), row)`` with an empty state, status and run directory and the file's
    time, sorted by path; ``target`` and ``runname`` (``%`` patterns) narrow them."""
    from mtpkt.agents.area import AreaError
    from mtpkt.agents.rundirs import archive_root
    from mtpkt.store import ArchiveListRow

    try:
        root = archive_root(area)
    except AreaError:
        return []  # the area's config says where, and cannot: the recorded ones are listed
    known = set(recorded)
    keys = len(area.fields)
    wanted = [glob(pattern) if pattern else None for pattern in (target, runname)]
    found: list[tuple[tuple[str, str], ArchiveListRow]] = []
    for count, path in enumerate(sorted(root.rglob(f"*{_SUFFIX}")) if root.is_dir() else ()):
        if count >= MAX_FILES:
            break
        parts = path.relative_to(root).parts
        if str(path) in known or len(parts) < keys + 2 or not path.is_file():
            continue
        run = ("/".join(parts[:keys]), parts[keys])
        pairs = zip(wanted, run, strict=True)
        if any(regex and not regex.fullmatch(word) for regex, word in pairs):
            continue
        test, *item = parts[keys + 1 :]
        item_path = "/".join(item).removesuffix(_SUFFIX)
        testname = test if item else test.removesuffix(_SUFFIX)
        stat = path.stat()
        found.append(
            (run, ArchiveListRow(
                testname=testname, item_path=item_path, state="", status="", rundir="",
                path=str(path), size=stat.st_size, files=0, archived_at=stat.st_mtime,
            ))
        )  # fmt: skip
    return found
