"""How each batch system's commands are formed and read (agents/batch/systems.py, docs/batch.md).

LSF, PBS/Torque and HTCondor cannot run here: their commands are checked as text. Slurm's
are checked against the local cluster too (marked ``long``)."""

import shlex
from pathlib import Path

import pytest

from mtpkt.agents.area.launchers import BATCH_SUBMITTERS
from mtpkt.agents.batch.systems import (
    GONE,
    SYSTEMS,
    BatchError,
    Condor,
    Lsf,
    Pbs,
    Slurm,
    system_of,
)
from tests.support.slurm import Slurm as Cluster

COMMAND = ["/usr/bin/python3", "-m", "mtpkt.tools", "agent", "--batch", "--name", "batch-x"]
LOG = Path("/area/.mtpkt/agents/batch-x/job.log")


def test_every_submitter_the_area_reader_knows_has_its_system() -> None:
    assert {system.submitter for system in SYSTEMS} == BATCH_SUBMITTERS
    assert system_of(["exec", "/opt/slurm/bin/sbatch", "-p", "x"]) == SYSTEMS[0]
    assert isinstance(system_of(["bsub", "-q", "normal"]), Lsf)
    assert isinstance(system_of(["qsub"]), Pbs)
    assert isinstance(system_of(["condor_submit"]), Condor)
    assert system_of(["nbfake"]) is None
    assert system_of([]) is None


def test_slurm_keeps_the_launchers_words_and_wraps_the_agent() -> None:
    """launch.scm:1474-1475: the launcher is a prefix, its words kept as written."""
    sub = Slurm().submission(["sbatch", "-p", "second", "--time=10"], "batch-x", LOG, COMMAND)
    assert sub.argv[:9] == ("sbatch", "--job-name", "batch-x", "--output", str(LOG),
                            "--open-mode", "append", "--parsable", "-p")  # fmt: skip
    assert sub.argv[9:12] == ("second", "--time=10", "--wrap")
    assert shlex.split(sub.argv[12]) == ["exec", *COMMAND]
    assert Slurm().job_id("4711\n") == "4711"
    assert Slurm().job_id("4711;cluster2\n") == "4711"
    with pytest.raises(BatchError, match="no job id"):
        Slurm().job_id("Submitted nothing")


def test_slurm_gives_a_launchers_script_the_command_as_its_arguments(tmp_path: Path) -> None:
    """Megatest appends its command to the launcher (launch.scm:1475): a wrapper script that
    sbatch runs gets it as arguments."""
    script = tmp_path / "wrapper.sh"
    script.write_text('#!/bin/sh\nexec "$@"\n')
    sub = Slurm().submission(["sbatch", "-p", "x", str(script)], "batch-x", LOG, COMMAND)
    assert sub.argv[-len(COMMAND) - 1 :] == (str(script), *COMMAND)
    assert "--wrap" not in sub.argv


def test_lsf_pbs_and_condor_commands() -> None:
    lsf = Lsf().submission(["bsub", "-q", "normal"], "batch-x", LOG, COMMAND)
    assert lsf.argv == ("bsub", "-q", "normal", "-J", "batch-x", "-o", str(LOG), *COMMAND)
    assert Lsf().job_id("Job <1234> is submitted to queue <normal>.\n") == "1234"
    assert Lsf().cancel_argv(["1", "2"]) == ["bkill", "1", "2"]
    pbs = Pbs().submission(["qsub", "-q", "batch"], "batch-x", LOG, COMMAND)
    assert pbs.argv == ("qsub", "-q", "batch", "-N", "batch-x", "-o", str(LOG), "-j", "oe")
    assert pbs.stdin.splitlines()[1] == "exec " + shlex.join(COMMAND)
    assert Pbs().job_id("1234.pbsserver\n") == "1234.pbsserver"
    condor = Condor().submission(["condor_submit"], "batch-x", LOG, COMMAND)
    assert condor.argv == ("condor_submit", "-terse")
    assert f"executable = {COMMAND[0]}" in condor.stdin.splitlines()
    assert "arguments = \"'-m' 'mtpkt.tools' 'agent'" in condor.stdin
    assert condor.stdin.rstrip().endswith("queue")
    assert Condor().job_id("1234.0 - 1234.0\n") == "1234"


def test_a_submitter_that_is_not_installed_says_so_in_one_line() -> None:
    with pytest.raises(BatchError) as raised:
        Slurm().submit(["/nonexistent/sbatch"], "batch-x", LOG, COMMAND)
    assert str(raised.value) == "/nonexistent/sbatch: command not found"


@pytest.mark.long
def test_slurm_states_of_jobs_it_ran_and_forgot(slurm: Cluster) -> None:
    system = Slurm()
    job = slurm.sbatch(wrap="sleep 30")
    slurm.wait_state(job, {"RUNNING"})
    assert system.states([job, "999999"]) == {
        job: system.states([job])[job],
        "999999": GONE,
    }
    assert system.states([job])[job].state == "RUNNING"
    assert system.states(["999999"]) == {"999999": GONE}
    system.cancel([job])
    slurm.wait_state(job, {"CANCELLED"})
    ended = system.states([job])[job]
    assert (ended.state, ended.ended, ended.queued) == ("CANCELLED", True, False)
    system.cancel([job])  # cancelling a job that is over is no error
    assert system.find("no-such-job-name") is None
