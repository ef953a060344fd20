"""A test's run directory made when it starts: on the best ``[disks]`` disk, linked from the
linktree.

Megatest chooses the disk when it launches a test (launch.scm:1421, ``get-best-disk``)
and makes ``<disk>/<target>/<runname>/<test>`` with a link to it at
``<linktree>/<target>/<runname>/<test>`` (launch.scm:1155-1240); item
directories are made inside it, through the link. So does this module, in the
agent that runs the test, just before its files are copied in.

One difference: Megatest chooses again at every launch and points the link at
the new choice (launch.scm:1219-1231), which can hide the items already run on
the other disk. Here a test's link, once made, is kept: the test's later items
go to the same disk. A test directory that is already a real directory in the
linktree (made before ``[disks]`` was set) is used as it is.
"""

import os
from pathlib import Path

from mtpkt.agents.area.job import TestJob
from mtpkt.agents.area.paths import PathError, inside, inside_any

__all__ = ["prepare"]


def prepare(job: TestJob) -> None:
    """Make the job's run directory, with ``[disks]`` on a disk behind a link.

    Raises:
        ConfigError: no disk of ``[disks]`` can take it (Megatest's error at launch).
        PathError: the test's directory is a link leading out of the run tree and disks.
        OSError: a directory or the link cannot be made.
    """
    disks = job.disks
    if disks is not None:
        link = job.test_dir
        if not os.path.lexists(link):
            disk = disks.best()
            real = Path(disk.path) / job.ref.target / job.ref.runname / job.ref.test
            real.mkdir(parents=True, exist_ok=True)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                link.symlink_to(real, target_is_directory=True)
            except FileExistsError:
                pass  # another item of the test got there first: its link serves
        if link.is_symlink() and not (inside(link.parent, link) or inside_any(disks.roots(), link)):
            raise PathError(f"run directory {link} leads out of the run tree and its disks")
    job.rundir.mkdir(parents=True, exist_ok=True)
