"""Configs are read when a run is planned: a real home, agent and ``mtpkt send`` (issue 17).

megatest.config is read anew for every ``send run``, with the run's command
line for ``#{scheme (args:get-arg ...)}``: an edit takes effect at the next
run, and a broken file is refused (exit 4) naming its file and line while the
home goes on running. Megatest reads its configs afresh for each command
(``launch.scm`` ``launch:setup-body``, line 909), and evaluates ``#{scheme}``
with that command's arguments (``configf.scm`` lines 100 and 130).
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.farm import FILES as FARM_FILES
from tests.support.farm import TARGET, Farm, write_area

RUN_TARGET = 'RUN_TARGET #{scheme (args:get-arg "-target")}'
FILES = {
    "megatest.config": FARM_FILES["megatest.config"]
    + f"""
        [env-override]
        {RUN_TARGET}
    """,
    "runconfigs.config": FARM_FILES["runconfigs.config"],
    "tests/show/testconfig": """
        [ezsteps]
        show echo "$RUN_TARGET $GREETING ${EDITED:-unset}" > seen.txt
    """,
}


@contextlib.contextmanager
def started(root: Path, files: dict[str, str]) -> Iterator[Farm]:
    """A home and one agent of an area of ``files``; stopped at the end."""
    (root / "logs").mkdir()
    farm = Farm(write_area(root / "area", files), root / "logs")
    try:
        farm.start_home()
        farm.start_agent("a1", 1)
        yield farm
    finally:
        farm.stop_all()


def run_to_its_end(farm: Farm, runname: str) -> None:
    done = farm.send("run", "-t", TARGET, "-r", runname, "--wait")
    assert done.returncode == 0, (done.stderr, farm.log("home"), farm.log("a1"))


def seen(farm: Farm, runname: str) -> str:
    return (farm.area / "links" / TARGET / runname / "show" / "seen.txt").read_text().strip()


def test_an_edited_or_broken_megatest_config_counts_at_the_next_run(tmp_path: Path) -> None:
    with started(tmp_path, FILES) as farm:
        config = farm.area / "megatest.config"
        run_to_its_end(farm, "r1")
        assert seen(farm, "r1") == f"{TARGET} hello unset"  # -target of the run, not of home

        good = config.read_text()
        line = len(good.splitlines()) + 1
        config.write_text(good + "BROKEN #{scheme (car '())}\n")
        refused = farm.send("run", "-t", TARGET, "-r", "r2")
        assert refused.returncode == 4, refused
        assert f"{config}:{line}: #{{scheme}}: car of the empty list" in refused.stderr
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert farm.processes["home"].poll() is None  # the home goes on

        config.write_text(good + 'EDITED #{scheme (string-upcase "yes")}\n')
        run_to_its_end(farm, "r3")
        assert seen(farm, "r3") == f"{TARGET} hello YES"


def test_the_home_starts_unless_megatest_config_is_broken_without_a_run(tmp_path: Path) -> None:
    """Without a run, ``(args:get-arg "-target")`` is #f, as for a Megatest command given no
    ``-target``; code that only works in a run fails only the value holding it, which the
    home never reads, so the home starts. A value the home needs, or a syntax error, keeps
    it from starting, naming the line."""
    needs_a_run = 'RUN_TARGET #{scheme (string-append "t=" (args:get-arg "-target"))}'
    megatest_config = FILES["megatest.config"].replace(RUN_TARGET, needs_a_run)
    with started(tmp_path, {**FILES, "megatest.config": megatest_config}) as farm:
        run_to_its_end(farm, "r1")
        assert seen(farm, "r1") == f"t={TARGET} hello unset"
    config = farm.area / "megatest.config"
    good = config.read_text()
    for broken, why in [
        ("[setup]\ndbdir #{scheme (car '())}\n", "car of the empty list"),
        ("[setup\n", "section header without ']'"),
    ]:
        config.write_text(good + broken)
        refused = farm.command("home", "--area", str(farm.area), timeout=60)
        assert refused.returncode == 7, refused  # the area is wrong (mtpkt --help)
        line = len(good.splitlines()) + broken.count("\n")
        assert f"{config}:{line}: " in refused.stderr, refused.stderr
        assert why in refused.stderr, refused.stderr
