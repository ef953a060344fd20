"""The environment a step sees, from a small area of its own, against Megatest's launch.scm.

Megatest builds a test's environment in layers, later ones winning (launch.scm:457-723,
runs.scm:53-137); each test here names the lines it checks.
"""

import base64
import os
import sysconfig
import zlib
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, ConfigError, Instance, plan_run
from mtpkt.agents.area.environment import BLACKLISTVARS, LazyEnvironment, env_files
from mtpkt.agents.host import Reporter
from mtpkt.pkts import State, Status
from tests.support.farm import write_area
from tests.support.local import LocalRun

TARGET = "linux/x86"
ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/ann",
    "USER": "ann",
    "OVERRIDDEN": "from-the-agent",
    "AGENT_ONLY": "agent",
}
SCRIPTS = Path(sysconfig.get_path("scripts"))

FILES = {
    "megatest.config": """
        [fields]
        PLATFORM TEXT
        CPU TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/lt

        [env-override]
        OVERRIDDEN from-env-override
        EARLY early
        CPU cpu-from-env-override
        MT_RUNNAME not-the-runname
        HERE [system pwd]
        EMPTY_VAR
        SPACED a  b
        !HIDDEN never-exported
    """,
    "runconfigs.config": """
        [default]
        OVERRIDDEN from-runconfigs
        FROM_RC rc-$EARLY
        !SECRET hidden-value
        TOMMY [system pwd]
        VARNOVAL

        [linux/x86]
        TARGETVAR t-$PLATFORM
        SECRETCOPY #{rget SECRET}
        BANGCOPY #{rget !SECRET}
        NOTHING #{rget NOSUCH}
    """,
    "tests/t/testconfig": """
        [ezsteps]
        hello hello.sh

        [items]
        ITEMVAR a b
        OVERRIDDEN from-item

        [pre-launch-env-overrides]
        PLEO pleo
        FROM_RC from-pre-launch-env-overrides

        [pre-launch-env-vars]
        PLEV plev
        ITEMVAR from-pre-launch-env-vars

        [requirements]
        runtimelim 1m 30s
    """,
    "tests/r/testconfig": """
        [setup]
        runscript main.sh
    """,
}


@pytest.fixture
def area_dir(tmp_path: Path) -> Path:
    return write_area(tmp_path / "suite", FILES)


def load(area_dir: Path, **env: str) -> Area:
    return Area.load(area_dir, env={**ENV, **env})


def instance(area: Area, test: str = "t", item: str = "a/from-item") -> Instance:
    plan = plan_run(area, TARGET, "nightly", test)
    return next(i for i in plan.tests[test].instances if i.ref.item == item)


def test_layers_win_in_megatests_order(area_dir: Path) -> None:
    """launch.scm: runconfig values (640-652) over the agent's; [env-override] again (714,
    runs.scm:113) over runconfigs and the target's keys; MT_RUNNAME after it (runs.scm:117);
    item variables over everything (718); then [pre-launch-env-vars] (745)."""
    env = instance(load(area_dir)).job.env

    assert env["AGENT_ONLY"] == "agent"
    assert env["OVERRIDDEN"] == "from-item"  # item beats env-override beats runconfigs
    assert env["CPU"] == "cpu-from-env-override"  # env-override beats the key value
    assert env["PLATFORM"] == "linux"
    assert env["MT_RUNNAME"] == "nightly"  # set again after env-override
    assert env["FROM_RC"] == "rc-early"  # runconfigs see env-override as read, and beat
    assert env["PLEO"] == "pleo"  # [pre-launch-env-overrides], which lose to runconfigs
    assert env["TARGETVAR"] == "t-linux"
    assert env["ITEMVAR"] == "from-pre-launch-env-vars"  # read again last, by the test
    assert env["PLEV"] == "plev"
    assert env["EMPTY_VAR"] == ""
    assert env["VARNOVAL"] == ""
    assert env["SPACED"] == "a  b"


def test_env_override_system_values_reach_steps(area_dir: Path) -> None:
    """configf.scm:383-418: a `[system cmd]` value is the command's output, computed as the
    file is read, with the area as working directory (find-and-read-config enters it,
    configf.scm:478-482); it is not set while reading but reaches the test through the
    [env-override] alist (launch.scm:1460, 714). Runconfig values, [system] ones too, are
    computed in the area (launch.scm:633-652)."""
    env = instance(load(area_dir)).job.env
    assert env["HERE"] == str(area_dir)
    assert env["TOMMY"] == str(area_dir)


def test_env_override_that_cannot_be_computed_is_refused_with_its_line(area_dir: Path) -> None:
    """Every [env-override] value reaches the test (launch.scm:714): one that cannot be
    computed stops the plan, naming its line, instead of leaving the variable out."""
    config = area_dir / "megatest.config"
    config.write_text(config.read_text() + "BROKEN [system exit 7]\n")
    with pytest.raises(ConfigError, match=r"megatest\.config:\d+: \[system exit 7\] exited with 7"):
        plan_run(load(area_dir), TARGET, "nightly", "t")


def test_a_testconfigs_environment_error_stops_the_plan_though_instances_build_theirs_late(
    area_dir: Path,
) -> None:
    """An instance's environment is built when first read (an agent plans every item of a
    test and runs a few), but a testconfig value that cannot be computed still stops the
    plan, naming its line, as [env-override]'s do (launch.scm:745)."""
    planned = instance(load(area_dir))
    assert isinstance(planned.job.env, LazyEnvironment)
    assert planned.job.env["PLEV"] == "plev"
    assert dict(planned.job.env) == planned.job.env  # a Mapping, equal to its dict
    testconfig = area_dir / "tests" / "t" / "testconfig"
    testconfig.write_text(testconfig.read_text() + "\n[pre-launch-env-vars]\nBAD [system exit 3]\n")
    with pytest.raises(ConfigError, match=r"testconfig:\d+: \[system exit 3\] exited with 3"):
        plan_run(load(area_dir), TARGET, "nightly", "t")


def test_bang_vars_are_not_exported_but_rget_reads_them(area_dir: Path) -> None:
    """The seed roadmap's !VARS: kept out of the environment (and so out of megatest.sh),
    readable as #{rget VAR}; #{rget !VAR} names the key itself, as configf.scm:115 and
    common.scm:965-970 do."""
    area = load(area_dir)
    env = instance(area).job.env
    assert "!SECRET" not in env
    assert "SECRET" not in env
    assert "!HIDDEN" not in env
    assert "HIDDEN" not in env
    assert env["SECRETCOPY"] == env["BANGCOPY"] == "hidden-value"
    assert env["NOTHING"] == ""
    runconfig = area.runconfig(TARGET, "nightly")
    assert runconfig.get("SECRET") == runconfig.get("!SECRET") == "hidden-value"
    assert runconfig.get("!OVERRIDDEN") is None  # #{rget !VAR} is the exact key
    assert not any(key.startswith("!") for key in runconfig.exported(ENV, area_dir))


def test_a_plain_var_in_a_section_comes_before_its_bang_twin(tmp_path: Path) -> None:
    """#{rget V} looks in the target's section, then [default] (common.scm:965-970); in a
    section with both V and !V, the exported V is the one read."""
    root = write_area(
        tmp_path / "a",
        {
            "megatest.config": "[fields]\nOS TEXT\n",
            "runconfigs.config": "[default]\nV default\n[linux]\n!V bang\n[other]\n!W b\nW w\n",
        },
    )
    area = Area.load(root, env=ENV)
    assert area.runconfig("linux").get("V") == "bang"  # the target's section comes first
    assert area.runconfig("other").get("W") == "w"


def test_mt_variables_have_megatests_values(area_dir: Path) -> None:
    """launch.scm:688-706 (and runs.scm:53-137): MT_TEST_RUN_DIR, MT_TEST_NAME,
    MT_ITEM_INFO (`(conc itemdat)`), MT_ITEMPATH, MT_RUNNAME, MT_MEGATEST, MT_TARGET,
    MT_LINKTREE, MT_TESTSUITENAME (common.scm:655-661: the area's directory name here),
    MT_RUN_AREA_HOME; the directory of MT_MEGATEST last on PATH."""
    test = instance(load(area_dir))
    env = test.job.env
    linktree = area_dir / "lt"
    assert env["MT_TEST_RUN_DIR"] == str(test.job.rundir)
    assert test.job.rundir == linktree / TARGET / "nightly" / "t" / "a" / "from-item"
    assert env["MT_TEST_NAME"] == "t"
    assert env["MT_ITEM_INFO"] == "((ITEMVAR a) (OVERRIDDEN from-item))"
    assert env["MT_ITEMPATH"] == "a/from-item"
    assert env["MT_TARGET"] == TARGET
    assert env["MT_LINKTREE"] == str(linktree)
    assert env["MT_TESTSUITENAME"] == "suite"
    assert env["MT_RUN_AREA_HOME"] == str(area_dir)
    assert env["MT_RUNPATH"] == str(linktree / TARGET / "nightly")
    # The megatest command of this installation (the next step installs it there).
    assert env["MT_MEGATEST"] == str(SCRIPTS / "megatest")
    assert env["PATH"] == f"/usr/bin:/bin:{SCRIPTS}"
    plain = instance(load(area_dir), "r", "").job.env
    assert plain["MT_ITEM_INFO"] == "()"
    assert plain["MT_ITEMPATH"] == ""


@pytest.mark.parametrize(
    ("setup", "env", "name"),
    [
        ("area-name first\ntestsuite second\n", {"MT_TESTSUITE_NAME": "third"}, "first"),
        ("testsuite second\n", {"MT_TESTSUITE_NAME": "third"}, "second"),
        ("", {"MT_TESTSUITE_NAME": "third"}, "third"),
        ("", {}, "suite"),
    ],
)
def test_testsuite_name_as_megatest_finds_it(
    area_dir: Path, setup: str, env: dict[str, str], name: str
) -> None:
    """common.scm:655-661: [setup] area-name, testsuite, $MT_TESTSUITE_NAME, the area's name."""
    config = area_dir / "megatest.config"
    config.write_text(config.read_text().replace("[setup]\n", f"[setup]\n{setup}"))
    assert instance(load(area_dir, **env)).job.env["MT_TESTSUITENAME"] == name


def test_setup_executable_is_the_megatest_steps_call(area_dir: Path) -> None:
    """launch.scm:1375, 1405-1406, 700, 706: [setup] executable is MT_MEGATEST, and its
    directory goes last on PATH."""
    config = area_dir / "megatest.config"
    config.write_text(config.read_text().replace("[setup]\n", "[setup]\nexecutable /opt/mt/mt\n"))
    env = instance(load(area_dir)).job.env
    assert env["MT_MEGATEST"] == "/opt/mt/mt"
    assert env["PATH"] == "/usr/bin:/bin:/opt/mt"


def test_cmdinfo_is_megatests_association_list_encoded_as_megatest_does(area_dir: Path) -> None:
    """launch.scm:1431-1463: base64 of the raw-DEFLATE-compressed `write` of the command
    data; common.scm:456-466 reads it back. What mtpkt does not have is #f."""
    test = instance(load(area_dir))
    text = zlib.decompress(base64.b64decode(test.job.env["MT_CMDINFO"]), -15).decode()
    overrides = (
        '("OVERRIDDEN" "from-env-override") ("EARLY" "early") ("CPU" "cpu-from-env-override") '
        f'("MT_RUNNAME" "not-the-runname") ("HERE" "{area_dir}") ("EMPTY_VAR" "") '
        '("SPACED" "a  b")'
    )
    assert text == (
        f'((testpath "{area_dir}/tests/t") (homehost #f) (serverurl #f) (areaname "suite") '
        f'(toppath "{area_dir}") (work-area "{test.job.rundir}") (test-name "t") '
        "(runscript #f) (run-id #f) (test-id #f) "
        '(itemdat (("ITEMVAR" "a") ("OVERRIDDEN" "from-item"))) '
        f'(megatest "{SCRIPTS}/megatest") (ezsteps #t) (subrun #f) (target "linux/x86") '
        f"(contour #f) (runtlim 90) (env-ovrd ({overrides})) (set-vars #f) "
        f'(runname "nightly") (mt-bindir-path "{SCRIPTS}"))'
    )


def test_megatest_sh_and_csh_quote_and_hide_as_megatest_does() -> None:
    """common.scm:1747-1789: a value with a character outside [a-zA-Z0-9_-:,./%$] is put in
    double quotes, nothing escaped; blacklisted names and names with such a character are
    written commented out, and in megatest.sh names with ':' too; "" stays bare."""
    env = {
        "PLAIN": "/usr/bin:/bin",
        "DOLLAR": "$HOME/x,y%z",
        "SPACE": "a b",
        "QUOTE": 'say "hi"',
        "EMPTY": "",
        "HOME": "/home/ann",
        "MY.VAR": "x",
        "A:B": "y",
        "BAD!": "z",
    }
    sh, csh = env_files(env, BLACKLISTVARS)
    assert sh.splitlines() == [
        "export PLAIN=/usr/bin:/bin",
        "export DOLLAR=$HOME/x,y%z",
        'export SPACE="a b"',
        'export QUOTE="say "hi""',
        "export EMPTY=",
        "# export HOME=/home/ann",
        "export MY.VAR=x",
        "# export A:B=y",
        "# export BAD!=z",
    ]
    assert csh.splitlines() == [
        "setenv PLAIN /usr/bin:/bin",
        "setenv DOLLAR $HOME/x,y%z",
        'setenv SPACE "a b"',
        'setenv QUOTE "say "hi""',
        "setenv EMPTY ",
        "# setenv HOME /home/ann",
        "setenv MY.VAR x",
        "setenv A:B y",
        "# setenv BAD! z",
    ]


def test_blacklistvars_replaces_the_default_list(area_dir: Path) -> None:
    """launch.scm:719-723: [setup] blacklistvars is the whole list of hidden variables."""
    assert instance(load(area_dir)).job.blacklistvars == BLACKLISTVARS
    config = area_dir / "megatest.config"
    config.write_text(config.read_text().replace("[setup]\n", "[setup]\nblacklistvars PROMPT\n"))
    assert instance(load(area_dir)).job.blacklistvars == ("PROMPT",)


def test_only_ezsteps_get_dot_on_path(area_dir: Path) -> None:
    """launch.scm:134-135 adds "." to PATH around each ezstep only; a runscript runs by its
    full path (launch.scm:491-500, 279-280)."""
    assert [step.ezstep for step in instance(load(area_dir)).job.steps] == [True]
    (script,) = instance(load(area_dir), "r", "").job.steps
    assert (script.command, script.ezstep) == ("main.sh", False)
    assert not instance(load(area_dir)).job.env["PATH"].endswith(":.")  # the runner adds it


@pytest.mark.timeout(60)
def test_a_run_writes_megatest_sh_and_its_ezsteps_find_their_scripts(area_dir: Path) -> None:
    """`hello hello.sh` runs the test's own script, found through "." on PATH
    (launch.scm:134-135); megatest.sh in the run directory holds the environment the steps
    see (launch.scm:719-723), ready to be sourced."""
    script = area_dir / "tests" / "t" / "hello.sh"
    script.write_text(
        "#!/bin/bash\n"
        'echo "hello from $(basename "$PWD") PATH=$PATH"\n'
        "env -i bash -c 'source ./megatest.sh && echo \"$OVERRIDDEN $SPACED $MT_TEST_NAME\"'\n"
    )
    script.chmod(0o755)
    area = load(area_dir, PATH=os.environ["PATH"])
    plan = plan_run(area, TARGET, "nightly", "t")
    results = LocalRun(plan, Reporter("here", lambda _packet: None)).run(timeout=50)
    assert set(results.values()) == {(State.COMPLETED, Status.PASS)}
    rundir = next(i for i in plan.tests["t"].instances if i.ref.item == "b/from-item").job.rundir
    first, second = (rundir / "hello.log").read_text().splitlines()
    assert first == f"hello from from-item PATH={os.environ['PATH']}:{SCRIPTS}:."
    assert second == "from-item a  b t"
    sh = (rundir / "megatest.sh").read_text().splitlines()
    assert "export OVERRIDDEN=from-item" in sh
    assert 'export SPACED="a  b"' in sh
    assert "# export HOME=/home/ann" in sh
    assert f"export MT_TEST_RUN_DIR={rundir}" in sh
    names = {line.split("=", 1)[0].split()[-1] for line in sh}
    assert not names & {"SECRET", "!SECRET", "HIDDEN", "!HIDDEN"}
    assert {"SECRETCOPY", "VARNOVAL", "EMPTY_VAR", "MT_CMDINFO"} <= names
    assert "setenv ITEMVAR from-pre-launch-env-vars" in (rundir / "megatest.csh").read_text()
