"""What the benchmarks read of their processes and of the machine: ports, CPU, memory."""

import os
import socket
from pathlib import Path

__all__ = ["cpu_seconds", "free_port", "memory_kib"]


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


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            result[name] = int(value.split()[0])
    return result
