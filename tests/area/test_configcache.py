"""A run's resolved configs (mtpkt.agents.area.configcache): what is kept, and what changed.

Megatest keeps its resolved configs in the run's directory as well:
``.megatest.cfg-<version>-<hash>`` and ``.runconfigs.cfg-…`` (launch.scm:884-907,
written at :1006-1015, ``[system]`` values run, configf.scm:242-245) and each
test's ``.testconfig`` (launch.scm:743-748); runconfigs.config is read with the
sections ``default`` and the target only (launch.scm:917, :998). It reads them
back instead of the files; mtpkt reads the files for every run and compares
(the seed roadmap's STALE).
"""

import os
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, plan_run
from mtpkt.agents.area.configcache import (
    Change,
    changes,
    decode,
    describe,
    encode,
    resolve,
)
from tests.support.farm import FILES as FARM_FILES
from tests.support.farm import write_area

TARGET = "linux/x86"
ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}
FILES = {
    "megatest.config": FARM_FILES["megatest.config"]
    + """
        [env-override]
        HERE [system basename $PWD]
    """,
    "runconfigs.config": """
        [default]
        GREETING hello
        SHOUT #{scheme (string-upcase "hi")}

        [linux/x86]
        SPEED fast

        [linux/arm]
        SPEED slow
    """,
    "tests/build/testconfig": """
        [ezsteps]
        compile echo compiling #{rget GREETING}
        link    echo linked
    """,
    "tests/unit/testconfig": """
        [ezsteps]
        check echo $A

        [requirements]
        waiton build

        [items]
        A [system echo 1 2]
    """,
    "tests/other/testconfig": """
        [ezsteps]
        other echo other
    """,
}


def area_of(root: Path, files: dict[str, str] = FILES) -> Area:
    home = write_area(root, files)
    return Area.load(home, env={**ENV, "MT_RUN_AREA_HOME": str(home)})


def edit(area: Area, name: str, old: str, new: str) -> None:
    path = area.home / name
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new))


def test_the_configs_are_kept_as_the_run_resolves_them(tmp_path: Path) -> None:
    """#{…} expanded, [system] values kept as their command (their output is not the
    config: see the next tests; a testconfig's items are made late too, configf.scm:384-411,
    runs.scm:750-778, Megatest writes a test's .testconfig once it launches, launch.scm:743-748),
    runconfigs.config with [default] and the target's section only
    (launch.scm:917, :998); a testconfig of every test the plan read, prerequisites too."""
    area = area_of(tmp_path / "area")
    configs = resolve(plan_run(area, TARGET, "r1", "unit/%").configs)
    assert list(configs) == [
        "megatest.config",
        "runconfigs.config",
        "tests/build/testconfig",
        "tests/unit/testconfig",
    ]
    assert configs["megatest.config"]["env-override"] == {"HERE": "[system basename $PWD]"}
    assert configs["runconfigs.config"] == {
        "default": {"GREETING": "hello", "SHOUT": "HI"},
        "linux/x86": {"SPEED": "fast"},
    }
    assert configs["tests/build/testconfig"]["ezsteps"]["compile"] == "echo compiling hello"
    # made when the test comes up to run (runs.scm:750-778), so kept as written here
    assert configs["tests/unit/testconfig"]["items"] == {"A": "[system echo 1 2]"}


def test_items_from_a_file_the_run_writes_are_no_change(tmp_path: Path) -> None:
    """A ``[system cat …]`` item value reads a file a prerequisite writes (fullrun's
    test_mt_vars): the file appearing between two plans of the run is not a change."""
    area = area_of(tmp_path / "area")
    edit(area, "tests/unit/testconfig", "[system echo 1 2]", "[system cat $MT_RUN_AREA_HOME/n]")
    before = resolve(plan_run(area, TARGET, "r1").configs)
    (area.home / "n").write_text("1 2\n")
    assert changes(before, resolve(plan_run(area, TARGET, "r1").configs)) == []


def test_the_same_configs_change_nothing(tmp_path: Path) -> None:
    area = area_of(tmp_path / "area")
    first = resolve(plan_run(area, TARGET, "r1").configs)
    assert changes(first, resolve(plan_run(area, TARGET, "r1").configs)) == []


def test_each_changed_value_is_named_by_config_section_and_key(tmp_path: Path) -> None:
    area = area_of(tmp_path / "area")
    before = resolve(plan_run(area, TARGET, "r1").configs)
    edit(area, "runconfigs.config", "SPEED fast", "SPEED faster")
    edit(area, "runconfigs.config", "GREETING hello", "GREETING howdy")  # build's rget too
    edit(area, "tests/unit/testconfig", "echo 1 2", "echo 1 2 3")
    edit(area, "tests/other/testconfig", "other echo other\n", "")
    after = resolve(plan_run(area, TARGET, "r1").configs)
    assert changes(before, after) == [
        Change("runconfigs.config", "default", "GREETING"),
        Change("runconfigs.config", "linux/x86", "SPEED"),
        Change("tests/build/testconfig", "ezsteps", "compile"),
        Change("tests/other/testconfig", "ezsteps", "other"),  # removed
        Change("tests/unit/testconfig", "items", "A"),
    ]


def test_steps_in_another_order_are_a_change(tmp_path: Path) -> None:
    """Steps run in the order written (an [ezsteps] section is an ordered list)."""
    area = area_of(tmp_path / "area")
    before = resolve(plan_run(area, TARGET, "r1", "build").configs)
    edit(
        area,
        "tests/build/testconfig",
        "compile echo compiling #{rget GREETING}\nlink    echo linked",
        "link    echo linked\ncompile echo compiling #{rget GREETING}",
    )
    after = resolve(plan_run(area, TARGET, "r1", "build").configs)
    assert changes(before, after) == [Change("tests/build/testconfig", "ezsteps", "(order)")]


def test_what_the_run_does_not_read_is_no_change(tmp_path: Path) -> None:
    """Another target's section of runconfigs.config, and a test the cache has no
    testconfig of (new to the run), change nothing."""
    area = area_of(tmp_path / "area")
    before = resolve(plan_run(area, TARGET, "r1", "build").configs)
    edit(area, "runconfigs.config", "SPEED slow", "SPEED slower")
    after = resolve(plan_run(area, TARGET, "r1", "%").configs)
    assert "tests/other/testconfig" in after
    assert changes(before, after) == []


def test_a_system_value_is_kept_as_its_command_never_run(tmp_path: Path) -> None:
    """The run fails where it needs the value (a step's [system] runs at the agent);
    keeping the configs runs nothing."""
    failing = "[ezsteps]\nother echo\n[extra]\nX [system exit 7]\n"
    files = {**FILES, "tests/other/testconfig": failing}
    area = area_of(tmp_path / "area", files)
    configs = resolve(plan_run(area, TARGET, "r1", "other").configs)
    assert configs["tests/other/testconfig"]["extra"]["X"] == "[system exit 7]"


def test_what_a_system_command_prints_is_no_change_its_command_is(tmp_path: Path) -> None:
    """fullrun's ``DEADVAR [system ls]`` (megatest.config:134) lists the area, to which each
    run adds: its output changing between two plans of a run is not a config change
    (Megatest, which has no STALE, keeps those tests' verdicts); editing the command is."""
    area = area_of(tmp_path / "area")
    edit(area, "megatest.config", "HERE [system basename $PWD]", "HERE [system ls]")
    before = resolve(plan_run(area, TARGET, "r1").configs)
    (area.home / "written-by-a-run").mkdir()
    assert changes(before, resolve(plan_run(area, TARGET, "r1").configs)) == []
    edit(area, "megatest.config", "HERE [system ls]", "HERE [system ls -a]")
    after = resolve(plan_run(area, TARGET, "r1").configs)
    assert changes(before, after) == [Change("megatest.config", "env-override", "HERE")]


def test_the_cache_file_reads_back_as_written_and_only_for_its_run(tmp_path: Path) -> None:
    area = area_of(tmp_path / "area")
    configs = resolve(plan_run(area, TARGET, "r1").configs)
    data = encode(TARGET, "r1", configs)
    back = decode(data, TARGET, "r1")
    assert back == configs
    assert [list(sections) for sections in back.values()] == [
        list(sections) for sections in configs.values()
    ]  # in the order written
    with pytest.raises(ValueError, match="not the cache of run linux/x86/r2"):
        decode(data, TARGET, "r2")
    for bad in (b"", b"[]", b'{"format": 2}', b'{"format": 1, "target": "linux/x86"}'):
        with pytest.raises(ValueError):  # noqa: PT011 - each its own reason
            decode(bad, TARGET, "r1")
    shaped = b'{"format":1,"target":"linux/x86","runname":"r1","configs":{"a":{"s":{"k":1}}}}'
    with pytest.raises(ValueError, match="not sections of text values"):
        decode(shaped, TARGET, "r1")


def test_the_comment_names_the_first_changes_and_counts_the_rest() -> None:
    found = [
        Change("runconfigs.config", "linux/x86", "SPEED"),
        Change("runconfigs.config", "default", "GREETING"),
        Change("tests/unit/testconfig", "items", "A"),
    ]
    assert describe(found) == (
        "configs changed: runconfigs.config [linux/x86] SPEED, [default] GREETING;"
        " tests/unit/testconfig [items] A"
    )
    many = [Change("megatest.config", "setup", f"K{n}") for n in range(9)]
    assert describe(many).endswith("[setup] K5 and 3 more")
