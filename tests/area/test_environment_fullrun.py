"""Megatest's own fullrun area: the steps of ``test_mt_vars`` that check the environment.

``tests/fullrun/tests/test_mt_vars/testconfig`` runs scripts that look at the
environment and at ``megatest.sh`` (launch.scm:719-723 writes it): CURRENT is
the target's runconfig value, ALT_VAR and BOGOUS (sections of other targets)
are not set, EMPTY_VAR and VARNOVAL are empty, VACKYVAR is what a comment of
runconfigs.config wrote (configf.scm:161-183 expands comments too), ``$USER``
in a runconfig value is replaced. Each step must exit 0 when mtpkt runs the
area (issue 17, acceptance 1).

Two copies of the area run here, with this host's runner (no home): Megatest's
own files as they are, and a copy where each ``#{scheme …}`` is replaced by the
value Megatest's Scheme gives it for this target, so the environment rules are
checked apart from mtpkt's Scheme evaluator.

The copies differ from the shared folder in one more way: ``test_mt_vars``'s
scripts get their execute bits back. The export in ``../shared`` holds them
without (mode 0444, while ``runfirst/main.sh`` has 0555), as it holds the
linked test as a plain file; Megatest runs ``currentisblah currentisblah.sh``
by a ``PATH`` search through ``.`` (launch.scm:134-135), which needs the bit,
and its release check expects ``test_mt_vars`` to PASS (results.logpro:30).

Nothing is written for the run beforehand: ``test_mt_vars``'s ``[items]``
(``NUMNUM [system cat …/the_ans]``) are made once ``runfirst``, which writes that
file, has run, as Megatest makes them (runs.scm:750-778, tests/area/test_deferred.py).
"""

import os
import re
from pathlib import Path

import pytest

from mtpkt.agents.area import Area, plan_run
from mtpkt.agents.host import Reporter
from mtpkt.pkts import State, Status, StepState
from mtpkt.pkts.status import StatusPacket, Step
from tests.area.test_fullrun import copy_of_fullrun
from tests.support.local import LocalRun

TARGET = "ubuntu/nfs/none"
RUNNAME = "r1"
ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}
ENVIRONMENT_STEPS = [
    "currentisblah", "bogousnotset", "altvarnotset", "empty_var", "vackyvar", "test-path",
    "varwithdollar", "emptyvars", "emptyvar_withspace", "emptyvar_megatest.sh",
]  # fmt: skip
"""test_mt_vars's steps that check the environment (the others list /tmp and /home)."""

SCHEME_VALUES = [
    (r'#\{scheme \(args:get-arg "-target"\)\}', TARGET),
    (r"#\{scheme \(\+ 5 6 7\)\}", "18"),
    (r'#\{scheme \(create-directory "(#\{[^}]*\}[^"]*)" #t\)\}', r"\1"),
    (r'#\{scheme \(case \(string->symbol \(conc \(getenv "datapath"\)\)\) \\\n[^}]*\}', "nbfake"),
]
"""Each ``#{scheme …}`` on the way, and what Megatest's Scheme makes of it for TARGET
(``create-directory`` returns its path; ``datapath`` is ``none``, which gives ``nbfake``)."""


def without_scheme(area: Path) -> None:
    """Replace the area's ``#{scheme …}`` uses outside comments by :data:`SCHEME_VALUES`."""
    for name in ("megatest.config", "runconfigs.config", "configs/mt_include_2.config"):
        path = area / name
        text = path.read_text()
        for pattern, value in SCHEME_VALUES:
            text = re.sub(pattern, value, text)
        path.write_text(text)
        lines = text.splitlines()
        left = [line for line in lines if "#{scheme" in line and not line.lstrip().startswith("#")]
        assert not left, f"{name}: {left}"
    (area / "tmp" / "mt_runs").mkdir(parents=True)  # what create-directory does (disk0)


def run_test_mt_vars(area_dir: Path) -> dict[str, list[Step]]:
    """Plan ``test_mt_vars`` (and ``runfirst``, which it waits on) and run them here.

    Returns:
        Item path → the end packets of that item's steps, in order.
    """
    for script in (area_dir / "tests" / "test_mt_vars").glob("*.sh"):
        script.chmod(0o755)  # lost by the export (see above)
    area = Area.load(area_dir, env=ENV)
    plan = plan_run(area, TARGET, RUNNAME, "test_mt_vars")
    packets: list[StatusPacket] = []
    results = LocalRun(plan, Reporter("here", packets.append)).run(timeout=240)
    runfirst = {ref for ref in results if ref.test == "runfirst"}
    assert {results[ref] for ref in runfirst} == {(State.COMPLETED, Status.PASS)}
    ends: dict[str, list[Step]] = {}
    for packet in packets:
        if isinstance(packet, Step) and packet.test == "test_mt_vars":
            if packet.state is StepState.END:
                ends.setdefault(packet.item, []).append(packet)
    assert sorted(ends) == ["1", "2", "3", "4", "5"]
    return ends


@pytest.fixture(scope="module")
def scheme_free_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Step]]:
    area = copy_of_fullrun(tmp_path_factory.mktemp("scheme-free"))
    without_scheme(area)
    return run_test_mt_vars(area)


@pytest.fixture(scope="module")
def fullrun_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Step]]:
    return run_test_mt_vars(copy_of_fullrun(tmp_path_factory.mktemp("as-is")))


def check_step(ends: dict[str, list[Step]], step: str) -> None:
    for item, steps in ends.items():
        by_name = {packet.step: packet for packet in steps}
        assert step in by_name, f"item {item}: {step} did not run (steps: {list(by_name)})"
        assert (by_name[step].status, by_name[step].exit_code) == (Status.PASS, 0), (item, step)


@pytest.mark.long
@pytest.mark.timeout(300)
@pytest.mark.parametrize("step", ENVIRONMENT_STEPS)
def test_every_environment_step_exits_0_with_scheme_values_written_in(
    scheme_free_run: dict[str, list[Step]], step: str
) -> None:
    """launch.scm:640-723 (the environment and megatest.sh), launch.scm:134-135 (`.` on PATH,
    so `currentisblah currentisblah.sh` runs the test's script), configf.scm:161-183."""
    check_step(scheme_free_run, step)


@pytest.mark.long
@pytest.mark.timeout(300)
@pytest.mark.parametrize("step", ENVIRONMENT_STEPS)
def test_every_environment_step_exits_0_in_fullrun_as_it_is(
    fullrun_run: dict[str, list[Step]], step: str
) -> None:
    """As above, on Megatest's files unchanged (issue 17, acceptance 1)."""
    check_step(fullrun_run, step)
