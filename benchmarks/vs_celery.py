"""mtpkt against Celery + Redis on the same trivial work, on this machine, in the same run.

Usage: python benchmarks/vs_celery.py [--tests 2000] [--runs 3] [--agents 8] [--slots 4]
                                      [--concurrency 8] [--keep] [--dir DIR]
                                      [--timeout 1800]

Each round runs the same ``--tests`` jobs twice, one peer after the other, each
job one ``bash`` process that echoes a line:

* Celery 5 + Redis (:mod:`celery_pool`): ``redis-server`` on 127.0.0.1 as broker
  and result backend, one worker of ``--concurrency`` prefork processes with
  task events on (``-E``) and ``task_acks_late``; the rate is jobs completed
  per second, from submitting the first job to holding the last result (16
  jobs first warm the pool up, unmeasured);
* mtpkt: ``mtpkt home`` and ``--agents`` agents of ``--slots`` slots, one test of
  ``--tests`` items whose one step is ``echo line``; the rate is tests per
  second from starting ``mtpkt send run --wait`` to its return. Also printed:
  ``benchmarks/dispatch.py``'s figure (first LAUNCHED to last COMPLETED, from
  the run's history) and the CPU per test of the home and the agents together,
  without their steps (the agents' own user+system time), and of the steps
  themselves (the agents' waited-for children).

Every peer is started afresh in each round, and every process is stopped at
the end, on Ctrl-C, on an error and after ``--timeout`` seconds in all. With
``--runs`` above 1 it prints the median of each figure and its spread.

Neither Celery nor Redis is an mtpkt dependency: without ``redis-server``
(``apt-get install redis-server``) or ``celery[redis]`` (``pip install
'celery[redis]'`` into the venv that runs this) it prints one line saying so and
exits 0.

Targets (issue 22): mtpkt at least twice Celery's rate, and at most 2.5 ms of
home and agent CPU per test. Exit 1 when one is missed.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Final

import attrs
from celery_pool import CeleryPool, Figures, missing
from dispatch import (
    DIR_HELP,
    RUNNAME,
    BenchError,
    Farm,
    Timeline,
    Usage,
    in_work_dir,
    make_area,
    run_db,
    send_run,
)

STEP: Final = "echo line"
TARGET_RATIO: Final = 2.0
TARGET_CPU_MS: Final = 2.5
WARM_UP: Final = 16


@attrs.frozen
class Options:
    tests: int
    runs: int
    agents: int
    slots: int
    concurrency: int
    timeout: float


@attrs.frozen
class MtpktFigures:
    """One measured mtpkt run."""

    tests: int
    wait_seconds: float
    """From starting ``mtpkt send run --wait`` to its return."""
    history_seconds: float
    """First LAUNCHED to last COMPLETED, committed (``dispatch.py``'s figure)."""
    home_cpu: float
    agents_cpu: float
    """The agents' own CPU seconds, their steps not counted."""
    steps_cpu: float

    @property
    def own_cpu(self) -> float:
        return self.home_cpu + self.agents_cpu

    @property
    def rate(self) -> float:
        return self.tests / self.wait_seconds


def run_celery(options: Options, work: Path, deadline: float) -> Figures:
    work.mkdir()
    pool = CeleryPool(work, options.concurrency)
    try:
        pool.start(deadline)
        pool.run(WARM_UP, timeout=max(1.0, deadline - time.monotonic()))
        return pool.run(options.tests, timeout=max(1.0, deadline - time.monotonic()))
    finally:
        pool.stop()


def run_mtpkt(options: Options, work: Path, deadline: float) -> MtpktFigures:
    area, logs = work / "area", work / "logs"
    logs.mkdir(parents=True)
    make_area(area, options.tests, options.tests, step=STEP)
    farm = Farm(area, logs)
    try:
        home = farm.start_home(deadline, durable=True)
        farm.start_agents(options.agents, options.slots, deadline)
        usage = Usage(home.pid, farm.agent_pids())
        usage.begin()
        wait = max(1.0, deadline - time.monotonic())
        took = send_run(farm, deadline, "--wait", "--wait-timeout", f"{wait:.0f}")
        spent = usage.since()
        timeline = Timeline.read(run_db(area / ".mtpkt" / "db", deadline))
    finally:
        farm.stop_all()
    launched = min(timeline.launched.values(), default=0.0)
    completed = [timeline.completed[key] for key in timeline.launched if key in timeline.completed]
    if len(completed) < options.tests:
        raise BenchError(f"{RUNNAME}: {len(completed):,} of {options.tests:,} completed")
    return MtpktFigures(
        options.tests, took, max(completed) - launched, spent["home"], spent["agents"],
        spent["steps"],
    )  # fmt: skip


def spread(values: list[float], form: str) -> str:
    """The median, and the lowest and highest when there are several values."""
    middle = format(statistics.median(values), form)
    if len(values) == 1:
        return middle
    return f"{middle} ({format(min(values), form)} to {format(max(values), form)})"


def measure(options: Options, work: Path) -> bool:
    deadline = time.monotonic() + options.timeout
    print(
        f"{options.tests:,} jobs of one `bash -c '{STEP}'` each, {options.runs} round(s);"
        f" celery: {options.concurrency} prefork workers, -E, acks_late, results in Redis;"
        f" mtpkt: {options.agents} agents x {options.slots} slots, one test of"
        f" {options.tests:,} items, send run --wait",
        flush=True,
    )
    celery: list[Figures] = []
    mtpkt: list[MtpktFigures] = []
    for round_ in range(1, options.runs + 1):
        celery.append(run_celery(options, work / f"celery{round_}", deadline))
        mtpkt.append(run_mtpkt(options, work / f"mtpkt{round_}", deadline))
        c, m = celery[-1], mtpkt[-1]
        print(
            f"round {round_}: celery {c.rate:,.0f} jobs/s; mtpkt {m.rate:,.0f} tests/s"
            f" (history {m.tests / m.history_seconds:,.0f}); ratio {m.rate / c.rate:.2f};"
            f" CPU per test: mtpkt {m.own_cpu / m.tests * 1000:.2f} ms + steps"
            f" {m.steps_cpu / m.tests * 1000:.2f} ms, celery {c.own_cpu / c.jobs * 1000:.2f} ms"
            f" + jobs {c.steps_cpu / c.jobs * 1000:.2f} ms",
            flush=True,
        )
    ratios = [m.rate / c.rate for m, c in zip(mtpkt, celery, strict=True)]
    cpu_ms = [m.own_cpu / m.tests * 1000 for m in mtpkt]
    label = "median of" if options.runs > 1 else "of"
    print(f"{label} {options.runs} round(s), lowest to highest in brackets:")
    print(f"  celery + redis: {spread([c.rate for c in celery], ',.0f')} jobs/s completed")
    print(f"  mtpkt send run --wait: {spread([m.rate for m in mtpkt], ',.0f')} tests/s")
    history = [m.tests / m.history_seconds for m in mtpkt]
    print(f"  mtpkt first LAUNCHED → last COMPLETED: {spread(history, ',.0f')} tests/s")
    print(f"  ratio mtpkt / celery: {spread(ratios, '.2f')}")
    steps_ms = [m.steps_cpu / m.tests * 1000 for m in mtpkt]
    home_ms = [m.home_cpu / m.tests * 1000 for m in mtpkt]
    print(f"  CPU per test, mtpkt: home + agents {spread(cpu_ms, '.2f')} ms", end=" ")
    print(f"(home {spread(home_ms, '.2f')} ms), steps {spread(steps_ms, '.2f')} ms")
    celery_ms = [c.own_cpu / c.jobs * 1000 for c in celery]
    jobs_ms = [c.steps_cpu / c.jobs * 1000 for c in celery]
    print(f"  CPU per job, celery: worker + pool + redis {spread(celery_ms, '.2f')} ms,", end=" ")
    print(f"jobs {spread(jobs_ms, '.2f')} ms")
    ratio_met = statistics.median(ratios) >= TARGET_RATIO
    cpu_met = statistics.median(cpu_ms) <= TARGET_CPU_MS
    verdict = {True: "met", False: "NOT met"}
    print(f"target mtpkt at {TARGET_RATIO:g}x celery's rate or more: {verdict[ratio_met]}")
    print(f"target home + agents CPU at most {TARGET_CPU_MS:g} ms per test: {verdict[cpu_met]}")
    return ratio_met and cpu_met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000, help="jobs for each peer (2000)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of both peers; medians (3)")
    parser.add_argument("--agents", type=int, default=8, help="mtpkt agent processes (8)")
    parser.add_argument("--slots", type=int, default=4, help="slots per mtpkt agent (4)")
    parser.add_argument("--concurrency", type=int, default=8, help="celery prefork workers (8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--dir", type=Path, help=DIR_HELP)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds in all (1800)")
    args = parser.parse_args()
    if min(args.tests, args.runs, args.agents, args.slots, args.concurrency) < 1:
        parser.error("every count must be at least 1")
    absent = missing()
    if absent is not None:
        print(f"skipped: the comparison needs {absent}")
        return 0
    options = Options(
        args.tests, args.runs, args.agents, args.slots, args.concurrency, args.timeout
    )
    return in_work_dir(
        "mtpkt-vs-celery-",
        lambda work: measure(options, work),
        options.timeout,
        keep=args.keep,
        parent=args.dir,
    )


if __name__ == "__main__":
    sys.exit(main())
