"""A Celery 5 + Redis pool on this machine, doing the work of a trivial test: the peer that
``benchmarks/vs_celery.py`` measures mtpkt against.

Neither Celery nor Redis is a dependency of mtpkt. To run the comparison::

    apt-get install redis-server               # the redis-server command
    .venv/bin/pip install 'celery[redis]'      # into the venv that runs the benchmark

:func:`missing` names whichever is absent. The pool is one ``redis-server`` on
127.0.0.1 (a free port, nothing saved to disk) as broker and result backend,
and one ``celery worker`` with ``--concurrency`` prefork processes and task
events on (``-E``); tasks are acknowledged late (``task_acks_late``). Each job
is one ``bash -c 'echo line'`` process, as a test whose one step is
``echo line``. Celery is imported by name at run time, so the benchmarks type-check
where it is not installed.
"""

import importlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Final

import attrs
from dispatch import BenchError
from procstat import cpu_seconds, free_port

__all__ = ["CeleryPool", "Figures", "missing"]

JOBS_MODULE: Final = "bench_jobs"
"""The module the workers import (written into the work directory): the app and its task."""

_JOBS: Final = '''\
"""The Celery app of benchmarks/vs_celery.py: one task, one bash process that echoes a line."""
import os
import subprocess

from celery import Celery

app = Celery("bench_jobs", broker=os.environ["BENCH_REDIS"], backend=os.environ["BENCH_REDIS"])
app.conf.update(
    task_acks_late=True,
    worker_send_task_events=True,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)


@app.task
def step():
    done = subprocess.run(["bash", "-c", "echo line"], capture_output=True, check=True)
    return done.stdout.decode()
'''


def missing() -> str | None:
    """What is missing to run Celery here, and how to install it; None if nothing is."""
    absent = []
    if shutil.which("redis-server") is None:
        absent.append("redis-server (apt-get install redis-server)")
    if importlib.util.find_spec("celery") is None or importlib.util.find_spec("redis") is None:
        absent.append(f"celery[redis] ({sys.executable} -m pip install 'celery[redis]')")
    return " and ".join(absent) or None


def children(pid: int) -> list[int]:
    """The process ids of the direct children of ``pid`` (Linux 3.5+), [] once it is gone."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(word) for word in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@attrs.frozen
class Figures:
    """One measured batch of Celery jobs."""

    jobs: int
    seconds: float
    """From submitting the first job to holding the last result."""
    own_cpu: float
    """CPU seconds of the worker, its pool processes and redis-server (not the bash jobs)."""
    steps_cpu: float
    """CPU seconds of the bash processes themselves."""

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


@attrs.define
class CeleryPool:
    """redis-server and one ``celery worker``, started in ``work`` and stopped by :meth:`stop`."""

    work: Path
    concurrency: int
    processes: dict[str, "subprocess.Popen[bytes]"] = attrs.Factory(dict)
    app: Any = None

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.work / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                args,
                cwd=self.work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the benchmark only; it stops them
            )

    def _wait_log(self, name: str, line: str, deadline: float) -> None:
        log = self.work / f"{name}.log"
        while line not in log.read_text(errors="replace"):
            if self.processes[name].poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise BenchError(f"{name} exited: {' | '.join(tail)}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not ready in time (see {log})")
            time.sleep(0.05)

    def start(self, deadline: float) -> None:
        """Start redis-server, then the worker; return once the worker says it is ready."""
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        self._start(
            "redis",
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.work)],
            dict(os.environ),
        )  # fmt: skip
        self._wait_log("redis", "Ready to accept connections", deadline)
        (self.work / f"{JOBS_MODULE}.py").write_text(textwrap.dedent(_JOBS))
        env = {**os.environ, "BENCH_REDIS": url, "PYTHONPATH": str(self.work)}
        self._start(
            "worker",
            [sys.executable, "-m", "celery", "-A", JOBS_MODULE, "worker", "-P", "prefork",
             "--concurrency", str(self.concurrency), "-E", "--loglevel", "INFO",
             "--hostname", f"bench{port}@%h"],
            env,
        )  # fmt: skip
        self._wait_log("worker", " ready.", deadline)
        os.environ["BENCH_REDIS"] = url  # the app below reads it, as the workers did
        sys.path.insert(0, str(self.work))
        sys.modules.pop(JOBS_MODULE, None)  # a new pool each round: a new port, a new app
        try:
            self.app = importlib.import_module(JOBS_MODULE)
        finally:
            sys.path.remove(str(self.work))

    def _cpu(self) -> tuple[float, float]:
        """(worker + pool + redis CPU seconds, the pool's waited-for children's)."""
        worker, redis = self.processes["worker"].pid, self.processes["redis"].pid
        pool = children(worker)
        own = cpu_seconds(worker) + cpu_seconds(redis) + sum(cpu_seconds(pid) for pid in pool)
        return own, sum(cpu_seconds(pid, children=True) for pid in pool)

    def run(self, jobs: int, timeout: float) -> Figures:
        """Submit ``jobs`` jobs and wait for every result."""
        step = self.app.step
        own_before, steps_before = self._cpu()
        began = time.monotonic()
        try:
            results = [step.delay() for _ in range(jobs)]
            result_set = importlib.import_module("celery.result").ResultSet(results)
            values = result_set.get(timeout=timeout)
        except Exception as exc:  # kombu's, redis's and celery's own: one line, not a traceback
            raise BenchError(f"celery: {type(exc).__name__}: {exc}") from None
        took = time.monotonic() - began
        own_after, steps_after = self._cpu()
        wrong = sum(1 for value in values if value != "line\n")
        if len(values) != jobs or wrong:
            raise BenchError(f"celery: {len(values)} results of {jobs}, {wrong} not 'line'")
        result_set.forget()  # the results leave Redis: the next batch starts from the same state
        return Figures(jobs, took, own_after - own_before, steps_after - steps_before)

    def stop(self) -> None:
        """The worker (warm shutdown, then SIGKILL), its pool processes, then redis; bounded."""
        if self.app is not None:
            self.app.app.close()
        worker = self.processes.get("worker")
        pool = children(worker.pid) if worker is not None else []
        for name in ("worker", "redis"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for pid in pool:  # what a killed worker left behind: only its own pool processes
            try:
                if worker is not None and os.getpgid(pid) == worker.pid:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
