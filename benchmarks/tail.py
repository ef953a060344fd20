"""What ``mtpkt tail`` costs while it follows a 10,000-test run: CPU, memory, lag.

Usage: python benchmarks/tail.py [--tests 10000] [--agents 8] [--slots 3]
                                 [--items-per-test 100] [--keep] [--timeout 900]

Builds the same area as ``benchmarks/dispatch.py`` (trivial one-step tests
with items), starts ``mtpkt home`` and the agents on ``tcp://127.0.0.1``,
then two followers of the run, both from the command line:

* ``mtpkt tail -r bench --until-done`` in its live view, on a pseudo-terminal
  of 120 x 40 cells whose output this script reads and counts;
* ``mtpkt tail -r bench --until-done --json`` into a pipe, read and counted.

Then ``mtpkt send run``. Measured, for each follower: CPU time (user +
system, from its rusage when it exits), peak memory (its maxrss), how many
bytes it wrote, and how long after the run's last commit it exited (how far
behind it was). The live view must also have shown every packet's effect:
its last screen says ``10000/10000``.

Every process it starts is stopped at the end, on Ctrl-C, on an error and
after ``--timeout`` seconds in all.
"""

import argparse
import fcntl
import os
import pty
import re
import resource
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Final

import apsw
import attrs
from dispatch import RUNNAME, BenchError, Farm, in_work_dir, make_area, run_db, send_run

COLUMNS: Final = 120
LINES: Final = 40


@attrs.define
class Follower:
    """One ``mtpkt tail`` process, its output drained by a thread."""

    name: str
    process: "subprocess.Popen[bytes]"
    output: int
    """The file descriptor its output is read from."""
    written: int = 0
    last: bytes = b""
    ended: float = 0.0
    usage: "resource.struct_rusage | None" = None
    status: int = 0
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        self._reader = threading.Thread(target=self._read, name=self.name, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.output, 65536)
            except OSError:  # the pty's other side closed
                break
            if not chunk:
                break
            self.written += len(chunk)
            self.last = (self.last + chunk)[-20000:]

    def wait(self, deadline: float) -> None:
        """Reap it (its rusage is the figure), bounded by ``deadline``."""
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.ended, self.status, self.usage = time.time(), status, usage
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not end")
            time.sleep(0.02)
        if self._reader is not None:
            self._reader.join(timeout=5)
        os.close(self.output)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_live(farm: Farm) -> Follower:
    """The live view, on a pseudo-terminal of COLUMNS x LINES."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {**farm.env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mtpkt.tools", "tail", "-r", RUNNAME, "--until-done"],
        cwd=farm.area,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    return Follower("live view", process, master)


def start_json(farm: Farm) -> Follower:
    process = subprocess.Popen(
        [sys.executable, "-m", "mtpkt.tools", "tail", "-r", RUNNAME, "--until-done", "--json"],
        cwd=farm.area,
        env=farm.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert process.stdout is not None
    return Follower("--json", process, os.dup(process.stdout.fileno()))


@attrs.frozen
class Commits:
    """The run's history: first and last commit (the home's clock), packets in all."""

    first: float
    last: float
    packets: int

    @classmethod
    def read(cls, path: Path) -> "Commits":
        db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            sql = "SELECT min(received), max(received), count(*) FROM history"
            row = db.execute(sql).fetchone()
            if row is None or row[0] is None:
                raise BenchError(f"{path} holds no history")
            first, last, count = row
        finally:
            db.close()
        return cls(float(first), float(last), int(count))


def measure(args: argparse.Namespace, work: Path) -> bool:
    deadline = time.monotonic() + args.timeout
    area, logs = work / "area", work / "logs"
    logs.mkdir()
    make_area(area, args.tests, args.items_per_test)
    print(f"{args.tests:,} instances, {args.agents} agents x {args.slots} slots; area {area}")
    farm = Farm(area, logs)
    followers: list[Follower] = []
    try:
        farm.start_home(deadline, durable=True)
        farm.start_agents(args.agents, args.slots, deadline)
        followers = [start_live(farm), start_json(farm)]
        for follower in followers:
            follower.start_reading()
        time.sleep(1.0)  # both are following before the run begins
        took = send_run(farm, deadline)
        print(f"mtpkt send run: receipt after {took:.2f} s")
        for follower in followers:
            follower.wait(deadline)
        return report(args, followers, Commits.read(run_db(area / ".mtpkt" / "db", deadline)))
    finally:
        for follower in followers:
            follower.stop()
        farm.stop_all()


def report(args: argparse.Namespace, followers: list[Follower], commits: Commits) -> bool:
    packets, seconds = commits.packets, commits.last - commits.first
    print(f"the run: {packets:,} status packets committed in {seconds:.1f} s")
    ok = True
    for follower in followers:
        usage = follower.usage
        assert usage is not None
        cpu = usage.ru_utime + usage.ru_stime
        print(
            f"{follower.name}: CPU {cpu:.2f} s ({cpu / packets * 1e6:.0f} µs per packet,"
            f" {cpu / max(seconds, 1e-9):.0%} of a core while the run lasted),"
            f" peak memory {usage.ru_maxrss / 1024:.1f} MiB, {follower.written / 1e6:.1f} MB"
            f" written, exit {follower.process.returncode},"
            f" ended {follower.ended - commits.last:.2f} s after the last commit"
        )
        if follower.process.returncode != 0:
            ok = False
            print(f"  {follower.name} exited with {follower.process.returncode}", file=sys.stderr)
    screen = re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", followers[0].last).decode(errors="replace")
    done = f"{args.tests}/{args.tests}"
    if done not in screen:
        ok = False
        print(f"the live view's last screen does not show {done}", file=sys.stderr)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000, help="test instances (10000)")
    parser.add_argument("--agents", type=int, default=8, help="mtpkt agent processes (8)")
    parser.add_argument("--slots", type=int, default=3, help="slots per agent (3)")
    parser.add_argument("--items-per-test", type=int, default=100, help="items of each test (100)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--timeout", type=float, default=900, help="seconds in all (900)")
    args = parser.parse_args()
    if min(args.tests, args.agents, args.slots, args.items_per_test) < 1:
        parser.error("every count must be at least 1")
    return in_work_dir(
        "mtpkt-tail-", lambda work: measure(args, work), args.timeout, keep=args.keep
    )


if __name__ == "__main__":
    sys.exit(main())
