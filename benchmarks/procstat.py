"""What the benchmarks read of their processes and of the machine: ports, CPU, memory."""

import os
import socket
from pathlib import Path

__all__ = ["cpu_seconds", "free_port", "helpers_of", "memory_kib"]


def free_port() -> int:
    """A tcp port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User plus system CPU time of a process (or of its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def helpers_of(pid: int, mark: str) -> list[int]:
    """The live children of ``pid`` whose command line holds ``mark`` (e.g. an agent's
    guard, whose CPU is the agent's work but reaches its ``cutime`` only when it exits)."""
    found = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if mark.encode() in command:
            found.append(int(child))
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            result[name] = int(value.split()[0])
    return result
