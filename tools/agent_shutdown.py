"""How ``mtpkt agent`` ends on signals: the first drains the agent, the second stops it now.

The signal handler only counts; the main thread's loop acts (arq's ``handle_sig``),
so tests can call both directly. :mod:`tools.agent_batch` builds the batch
agent's variant on it.
"""

import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Final, Protocol, TextIO

__all__ = ["POLL", "Agent", "Shutdown"]

POLL: Final = 0.2
"""Seconds between the main thread's looks at signals and at the agent."""


class Agent(Protocol):
    """What :class:`Shutdown` needs of a host agent (:class:`agents.host.agent.HostAgent`)."""

    @property
    def running(self) -> Sequence[object]:
        """The test instances running now."""

    def drain(self) -> None:
        """Take no new tests, let the running ones finish, then stop."""

    def stop(self) -> None:
        """Kill the running tests and stop."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the agent has stopped; whether it has."""


class Shutdown:
    """Signals to an agent's end: the first drains it, the second stops it now.

    The signal handler (:meth:`handle_signal`) only counts; :meth:`step`, called
    from the main thread's loop (:meth:`run`), acts, in threads of its own since
    :meth:`Agent.drain` takes as long as the running tests do. Tests can call
    both directly.

    Args:
        agent: the started agent.
        out: where the one-line notices go.
    """

    def __init__(self, agent: Agent, out: TextIO) -> None:
        self.agent = agent
        self.out = out
        self.signals = 0
        """Signals received so far."""
        self._acted = 0
        self._threads: list[threading.Thread] = []

    def handle_signal(self, signum: int, frame: FrameType | None = None) -> None:
        """The handler for SIGTERM and SIGINT: only counts (acted on by :meth:`step`)."""
        self.signals += 1

    def install(self) -> None:
        """Make SIGTERM and SIGINT call :meth:`handle_signal` (main thread only)."""
        signal.signal(signal.SIGTERM, self.handle_signal)
        signal.signal(signal.SIGINT, self.handle_signal)

    def _call(self, method: str) -> None:
        thread = threading.Thread(target=getattr(self.agent, method), name=f"agent {method}")
        thread.start()
        self._threads.append(thread)

    def step(self) -> None:
        """Act on the signals that came since the last step."""
        while self._acted < self.signals:
            self._acted += 1
            if self._acted == 1:
                count = len(self.agent.running)
                tests = "test" if count == 1 else "tests"
                self._say(f"draining: finishing {count} running {tests}; signal again to stop now")
                self._call("drain")
            elif self._acted == 2:
                self._say("stopping now: killing the running tests")
                self._call("stop")
            else:
                self._say("already stopping: waiting for the killed tests to end")

    def run(self, poll: float = POLL, every: Callable[[], None] = lambda: None) -> None:
        """Wait until the agent has stopped, acting on signals meanwhile (and calling
        ``every`` at each look)."""
        while not self.agent.wait(poll):
            self.step()
            every()
        for thread in self._threads:
            thread.join()

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)
