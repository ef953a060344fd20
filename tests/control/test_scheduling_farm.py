"""Megatest's scheduling keys seen from the command line: the launcher warning of ``send run
--wait``, ``[setup] deadtime`` as the home's grace for lost agents, ``[skip]`` in a real run."""

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.store.registry import GRACE_VAR
from tests.support.farm import FILES, TARGET, Farm, running_farm
from tests.support.procs import wait_for

EXTRA = """
    [setup]
    deadtime 600

    [jobtools]
    launcher remrun night
"""
AREA = {
    "megatest.config": textwrap.dedent(FILES["megatest.config"]) + textwrap.dedent(EXTRA),
    "runconfigs.config": "[default]\n",
    "tests/first/testconfig": """
        [ezsteps]
        hello echo hello
    """,
    "tests/second/testconfig": """
        [ezsteps]
        hello echo hello

        [skip]
        fileexists #{getenv MT_RUN_AREA_HOME}/skip.flag
    """,
}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, files=AREA) as farm:
        yield farm


@pytest.mark.timeout(180)
def test_send_run_wait_shows_the_launcher_warning_and_deadtime_is_the_grace(farm: Farm) -> None:
    """common.scm:2322-2353: ``[jobtools] launcher remrun`` is every test's launcher, which mtpkt
    cannot honour (it is neither local nor a batch system): ``send run --wait`` shows the
    run's one warning line naming it.
    db.scm:1594-1626: ``[setup] deadtime`` is how long a running test may go unheard of
    before it is DEAD; the home's grace for lost agents, when ``--agent-grace`` is not given.
    runs.scm:1788-1791, 1804-1806: ``[skip] fileexists`` ends a test COMPLETED/SKIP."""
    (farm.area / "skip.flag").write_text("")
    farm.start_home()
    grace = [(GRACE_VAR, "600.0")]
    assert wait_for(
        lambda: (
            farm.main_query("SELECT var, val FROM metadat WHERE var = ?", (GRACE_VAR,)) == grace
        ),
        30,
    )
    farm.start_agent("alpha", slots=2)
    done = farm.send("run", "-t", TARGET, "-r", "r1", "--wait")
    assert done.returncode == 0, done
    lines = done.stderr.splitlines()  # the id on stdout, the following on stderr
    warnings = [line for line in lines if "launcher 'remrun night'" in line]
    assert len(warnings) == 1, done.stderr
    config = farm.area / "megatest.config"
    assert warnings[0].startswith(f"warning: launcher 'remrun night' ({config}:13) for 2 "), lines
    assert "not honoured (neither local nor a batch system)" in warnings[0]
    # Right after what the home will do, before the progress: as the run starts.
    assert lines[0].startswith(f"run {TARGET}/r1: "), lines
    assert lines.index(warnings[0]) == 1
    assert farm.tests("r1")[("second", "")][:2] == ("COMPLETED", "SKIP"), farm.tests("r1")
    assert farm.tests("r1")[("first", "")][:2] == ("COMPLETED", "PASS")
