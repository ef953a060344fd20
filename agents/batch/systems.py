"""Batch systems: how a test's job is submitted, looked at and cancelled, command by command.

A Megatest launcher is a command prefix (``[jobtools] launcher sbatch -p long``):
Megatest runs it with its own command after it (launch.scm:1481-1482). mtpkt
keeps that meaning. The launcher's first word names the batch system
(:func:`system_of`); its other words are the user's own options, passed as
they are; mtpkt adds a job name and an output file, and the command the job
runs (an ``mtpkt agent --batch``). Each system's exact commands are in its
class, and in docs/batch.md:

* Slurm: ``sbatch WORDS --job-name N --output LOG --open-mode append --parsable --wrap CMD``
  (or, when the launcher's last word is a script, ``sbatch WORDS… SCRIPT CMD…``: the script
  gets the command as its arguments, as in Megatest); ``squeue -h -t all -j IDS -o
  %i|%T|%r``; ``scancel IDS``.
* LSF: ``bsub WORDS -J N -o LOG CMD``; ``bjobs -noheader -a -o "jobid stat exit_reason" IDS``
  (a job it no longer knows is over); ``bkill IDS``.
* PBS/Torque: ``qsub WORDS -N N -o LOG -j oe`` with a script ``exec CMD`` on stdin;
  ``qstat IDS`` (Torque lists a finished job as ``C`` for a while, PBS Pro as ``F`` with
  job history on; a job it no longer knows is over); ``qdel IDS``.
* HTCondor: ``condor_submit WORDS -terse`` with a submit description on stdin;
  ``condor_q IDS -af:j JobStatus HoldReason`` then ``condor_history`` for those gone;
  ``condor_rm IDS``.

Nothing here waits long: every command runs with a timeout and its failure
comes back as :class:`BatchError` with the command's own error line.
"""

import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Final

import attrs

__all__ = [
    "SYSTEMS",
    "BatchError",
    "BatchSystem",
    "BatchTimeout",
    "Condor",
    "JobState",
    "Lsf",
    "Pbs",
    "Slurm",
    "Submission",
    "system_of",
]

COMMAND_TIMEOUT: Final = 30.0
"""Seconds a batch system's command may take before it counts as failed."""


class BatchError(Exception):
    """A batch system's command failed; the message is its error line."""


class BatchTimeout(BatchError):
    """A batch system's command did not answer in time: what it was asked may be done."""


@attrs.frozen
class JobState:
    """What a batch system says of a job."""

    state: str
    """Its own word: ``PENDING``, ``RUNNING``, ``CANCELLED`` (Slurm), ``PEND`` (LSF) …;
    ``GONE`` when the system no longer knows the job."""
    queued: bool = False
    """Waiting to start."""
    ended: bool = False
    """Over: nothing of it runs any more (or it is forgotten)."""
    reason: str = ""
    """The system's reason, where it gives one (``TimeLimit``, ``NodeDown`` …)."""

    def describe(self) -> str:
        """``CANCELLED``, or ``TIMEOUT (TimeLimit)``."""
        shown = self.reason if self.reason and self.reason not in ("None", "-") else ""
        return f"{self.state} ({shown})" if shown else self.state


GONE: Final = JobState("GONE", ended=True, reason="no longer known to the batch system")


@attrs.frozen
class Submission:
    """The command that submits one job, and what it reads on stdin."""

    argv: tuple[str, ...]
    stdin: str = ""


def _run(argv: Sequence[str], stdin: str = "", *, partial: bool = False) -> str:
    """Run a batch command; its stdout.

    Args:
        partial: its stdout even when it fails (a query that names a job the system has
            forgotten fails, and still lists the others).

    Raises:
        BatchError: it is not installed, could not run, or failed (its error line).
        BatchTimeout: it did not answer in time.
    """
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise BatchError(f"{argv[0]}: command not found") from None
    except PermissionError:
        raise BatchError(f"{argv[0]}: permission denied") from None
    except OSError as exc:
        raise BatchError(f"{argv[0]}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise BatchTimeout(f"{argv[0]}: no answer within {COMMAND_TIMEOUT:g}s") from None
    if done.returncode != 0 and not (partial and done.stdout.strip()):
        line = _error_line(done.stderr + "\n" + done.stdout) or f"exit status {done.returncode}"
        name = os.path.basename(argv[0])
        raise BatchError(line if line.startswith(f"{name}:") else f"{name}: {line}")
    return done.stdout


def _error_line(text: str) -> str:
    """The line that says what went wrong: the first naming an error, else the first."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[0]


class BatchSystem:
    """One batch system's commands. Subclasses say how each is formed and read."""

    name: ClassVar[str]
    """Short name, the prefix of a recorded job (``slurm:4711``)."""
    submitter: ClassVar[str]
    """The launcher's first word that names this system (``sbatch``)."""

    def submission(
        self, words: Sequence[str], name: str, log: Path, command: Sequence[str]
    ) -> Submission:
        """The command that submits ``command`` as job ``name`` writing ``log``, given the
        launcher's words (its first one the submitter, as the user wrote it)."""
        raise NotImplementedError

    def job_id(self, stdout: str) -> str:
        """The job id in the submitter's output.

        Raises:
            BatchError: there is none.
        """
        raise NotImplementedError

    def states(self, ids: Sequence[str]) -> dict[str, JobState]:
        """The state of each job; :data:`GONE` for those the system no longer knows.

        Raises:
            BatchError: the system could not be asked.
        """
        raise NotImplementedError

    def cancel_argv(self, ids: Sequence[str]) -> list[str]:
        """The command that cancels jobs."""
        raise NotImplementedError

    def find(self, name: str) -> str | None:
        """The id of the job named ``name``, when the system can tell (a home restarted
        between a submission and its record); None when it cannot or there is none.

        Raises:
            BatchError: the system could not be asked.
        """
        return None

    def submit(self, words: Sequence[str], name: str, log: Path, command: Sequence[str]) -> str:
        """Submit a job; its id.

        Raises:
            BatchError: the submission failed or was refused (the system's own line).
        """
        submission = self.submission(words, name, log, command)
        return self.job_id(_run(submission.argv, submission.stdin))

    def cancel(self, ids: Sequence[str]) -> None:
        """Cancel jobs (those already over are no error).

        Raises:
            BatchError: the system refused.
        """
        if ids:
            try:
                _run(self.cancel_argv(ids))
            except BatchError as exc:
                if not _ALREADY_OVER.search(str(exc)):
                    raise


_ALREADY_OVER: Final = re.compile(
    r"already (finished|completed|done)|invalid job id|unknown job|no such job|not found|"
    r"job has finished",
    re.IGNORECASE,
)


def _is_script(word: str) -> bool:
    """A launcher's last word that is a script it runs (an existing file, not an option)."""
    return not word.startswith("-") and os.path.isfile(word)


class Slurm(BatchSystem):
    """Slurm: ``sbatch``, ``squeue``, ``scancel``."""

    name = "slurm"
    submitter = "sbatch"
    ENDED: ClassVar[frozenset[str]] = frozenset(
        {
            "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
            "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
        }
    )  # fmt: skip
    QUEUED: ClassVar[frozenset[str]] = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD"})

    def submission(
        self, words: Sequence[str], name: str, log: Path, command: Sequence[str]
    ) -> Submission:
        ours = ["--job-name", name, "--output", str(log), "--open-mode", "append", "--parsable"]
        first, rest = words[0], list(words[1:])
        if rest and _is_script(rest[-1]):
            return Submission((first, *ours, *rest, *command))
        return Submission((first, *ours, *rest, "--wrap", shlex.join(["exec", *command])))

    def job_id(self, stdout: str) -> str:
        found = re.match(r"\s*(\d+)", stdout)
        if found is None:
            raise BatchError(f"sbatch said no job id: {stdout.strip()[:200]!r}")
        return found.group(1)

    def states(self, ids: Sequence[str]) -> dict[str, JobState]:
        argv = ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"]
        try:
            out = _run(argv)
        except BatchError as exc:
            if "Invalid job id" not in str(exc):
                raise
            out = ""  # every one of them is forgotten
        found: dict[str, JobState] = {}
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 3 or parts[0] not in ids:
                continue
            state = parts[1].split()[0] if parts[1] else "UNKNOWN"
            found[parts[0]] = JobState(
                state, queued=state in self.QUEUED, ended=state in self.ENDED, reason=parts[2]
            )
        return {job: found.get(job, GONE) for job in ids}

    def cancel_argv(self, ids: Sequence[str]) -> list[str]:
        return ["scancel", *ids]

    def find(self, name: str) -> str | None:
        out = _run(["squeue", "-h", "-t", "all", "-n", name, "-o", "%i"])
        ids = [word for word in out.split() if word.isdigit()]
        return max(ids, key=int) if ids else None  # the newest


class Lsf(BatchSystem):
    """LSF: ``bsub``, ``bjobs``, ``bkill``."""

    name = "lsf"
    submitter = "bsub"

    def submission(
        self, words: Sequence[str], name: str, log: Path, command: Sequence[str]
    ) -> Submission:
        return Submission((*words, "-J", name, "-o", str(log), *command))

    def job_id(self, stdout: str) -> str:
        found = re.search(r"Job <(\d+)>", stdout)
        if found is None:
            raise BatchError(f"bsub said no job id: {stdout.strip()[:200]!r}")
        return found.group(1)

    def states(self, ids: Sequence[str]) -> dict[str, JobState]:
        out = _run(["bjobs", "-noheader", "-a", "-o", "jobid stat exit_reason", *ids], partial=True)
        found: dict[str, JobState] = {}
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[0] in ids:
                state = parts[1]
                found[parts[0]] = JobState(
                    state,
                    queued=state in ("PEND", "PSUSP"),
                    ended=state in ("DONE", "EXIT", "ZOMBI"),
                    reason=parts[2].strip() if len(parts) > 2 else "",
                )
        return {job: found.get(job, GONE) for job in ids}

    def cancel_argv(self, ids: Sequence[str]) -> list[str]:
        return ["bkill", *ids]


class Pbs(BatchSystem):
    """PBS Pro and Torque: ``qsub``, ``qstat``, ``qdel``."""

    name = "pbs"
    submitter = "qsub"

    def submission(
        self, words: Sequence[str], name: str, log: Path, command: Sequence[str]
    ) -> Submission:
        script = f"#!/bin/sh\nexec {shlex.join(command)}\n"
        return Submission((*words, "-N", name[:200], "-o", str(log), "-j", "oe"), script)

    def job_id(self, stdout: str) -> str:
        line = stdout.strip().splitlines()[0] if stdout.strip() else ""
        if not line:
            raise BatchError("qsub said no job id")
        return line.split()[0]

    def states(self, ids: Sequence[str]) -> dict[str, JobState]:
        try:
            out = _run(["qstat", *ids], partial=True)
        except BatchError as exc:  # every one of them unknown: over and forgotten
            if not re.search(r"unknown job|job has finished", str(exc), re.IGNORECASE):
                raise
            out = ""
        found: dict[str, JobState] = {}
        short = {job.split(".")[0]: job for job in ids}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[0].split(".")[0] in short:
                state = parts[4]
                found[short[parts[0].split(".")[0]]] = JobState(
                    state, queued=state in ("Q", "H", "W", "T"), ended=state in ("C", "F")
                )
        return {job: found.get(job, GONE) for job in ids}

    def cancel_argv(self, ids: Sequence[str]) -> list[str]:
        return ["qdel", *ids]


class Condor(BatchSystem):
    """HTCondor: ``condor_submit``, ``condor_q``/``condor_history``, ``condor_rm``."""

    name = "condor"
    submitter = "condor_submit"
    STATUS: ClassVar[dict[str, str]] = {
        "1": "IDLE", "2": "RUNNING", "3": "REMOVED", "4": "COMPLETED",
        "5": "HELD", "6": "TRANSFERRING", "7": "SUSPENDED",
    }  # fmt: skip

    def submission(
        self, words: Sequence[str], name: str, log: Path, command: Sequence[str]
    ) -> Submission:
        description = "\n".join(
            [
                "universe = vanilla",
                f"executable = {command[0]}",
                f"arguments = {_condor_arguments(command[1:])}",
                f"output = {log}",
                f"error = {log}",
                "getenv = true",
                f"batch_name = {name}",
                "queue",
                "",
            ]
        )
        return Submission((*words, "-terse"), description)

    def job_id(self, stdout: str) -> str:
        found = re.match(r"\s*(\d+)\.\d+", stdout)
        if found is None:
            raise BatchError(f"condor_submit said no job id: {stdout.strip()[:200]!r}")
        return found.group(1)

    def states(self, ids: Sequence[str]) -> dict[str, JobState]:
        found = self._read(_run(["condor_q", *ids, "-af:j", "JobStatus", "HoldReason"]), ids)
        missing = [job for job in ids if job not in found]
        if missing:
            history = ["condor_history", *missing, "-af:j", "JobStatus", "HoldReason"]
            found.update(self._read(_run(history), missing))
        return {job: found.get(job, GONE) for job in ids}

    def _read(self, out: str, ids: Sequence[str]) -> dict[str, JobState]:
        found: dict[str, JobState] = {}
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[0].split(".")[0] in ids:
                state = self.STATUS.get(parts[1], parts[1])
                found[parts[0].split(".")[0]] = JobState(
                    state,
                    queued=state in ("IDLE", "HELD"),
                    ended=state in ("REMOVED", "COMPLETED"),
                    reason=parts[2].strip() if len(parts) > 2 else "",
                )
        return found

    def cancel_argv(self, ids: Sequence[str]) -> list[str]:
        return ["condor_rm", *ids]


def _condor_arguments(words: Iterable[str]) -> str:
    """Arguments in HTCondor's new syntax: double-quoted, each word in single quotes."""
    quoted = ("'" + word.replace("'", "''").replace('"', '""') + "'" for word in words)
    return '"' + " ".join(quoted) + '"'


SYSTEMS: Final[tuple[BatchSystem, ...]] = (Slurm(), Lsf(), Pbs(), Condor())
"""Every batch system mtpkt submits to."""


def system_of(words: Sequence[str]) -> BatchSystem | None:
    """The batch system a launcher's words submit to (by its first word's base name,
    ``exec`` before it passed over); None for a launcher that is no batch system."""
    words = list(words)
    while words and words[0] == "exec":
        words = words[1:]
    if not words:
        return None
    first = os.path.basename(words[0])
    return next((system for system in SYSTEMS if system.submitter == first), None)
