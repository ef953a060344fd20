"""The host agent's pull loop: asks the home for tasks, takes them at most once, acks them.

The agent's control path is a loop of :class:`pkts.link.Pull` requests to the
home (every ``pull_interval``, and at once when a test ends); the home answers
with a :class:`pkts.link.Receipt` and the agent's :class:`pkts.link.Task`
packets it has not yet acknowledged. For each task the loop

1. records the task id durably in :class:`~mtpkt.agents.host.seen.SeenTasks`
   first, and acts only if the id is new, so a task is executed at most once,
   across restarts (DESIGN guarantee 2);
2. acknowledges the id in its next pull, whether it was new or not;
3. hands the task to the :class:`~mtpkt.agents.host.slots.SlotTable`: a ``run``
   waits there for a slot and runs in a thread of its own, a ``kill`` stops it.

While the agent's disk fails (its spool holds status packets it cannot
write, see :class:`~mtpkt.bus.Spool`) it takes no new tests: its pulls offer no
free slot, and a run task that comes anyway is neither recorded nor
acknowledged, so the home sends it again once the disk is fixed. The tests
running go on; their status is held in memory and written as soon as the
disk takes it. A task that cannot be recorded in ``seen.db`` (the same disk)
is not acknowledged and not carried out: it comes again (exactly once).

A pull's ``running`` lists every run task taken and not yet ended, waiting
ones included. While draining, a new run task is neither recorded nor
acknowledged: it stays with the home, for another agent. Once the slot table
is closed (the agent stops) no task is recorded: the home sends them again to
the agent's next start.

The home may be down or restart at any time: pulls time out, the problem is
logged once, and the loop keeps trying; NNG reconnects by itself. A home
whose answers are signed with another key is not retried for ever: after
:data:`BAD_KEY_ANSWERS` of them in a row the loop stops, says why in
:attr:`PullLoop.failure`, and has the agent drained.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Final

import apsw

from mtpkt import pkts
from mtpkt.agents.area import TestRef
from mtpkt.agents.host.seen import SeenTasks
from mtpkt.agents.host.slots import JOIN_TIMEOUT, SlotTable
from mtpkt.bus import BusError, Requester, Spool, Tls
from mtpkt.pkts import Action
from mtpkt.pkts.link import Pull, Receipt, Task
from mtpkt.pkts.text import one_line
from mtpkt.pkts.trouble import Trouble

__all__ = ["BAD_KEY_ANSWERS", "PULL_BACKOFF_MAX", "PULL_TIMEOUT", "PullLoop"]

_log = logging.getLogger(__name__)

PULL_TIMEOUT: Final = 2.0
"""Seconds a pull waits for the home's answer (a home that is down looks like a timeout)."""
PULL_BACKOFF_MAX: Final = 5.0
"""Longest wait between pulls after failures (it doubles from ``pull_interval``)."""
GATHER: Final = 0.02
"""Seconds a busy agent waits, once a test has ended, for others to end before it pulls.

Short tests end one after the other; a pull for each freed slot costs the agent and the
home a round trip each, CPU that the tests then lack. Waiting this long lets one pull
ask for the tasks of every slot freed meanwhile. An agent is busy when its last pull
was answered less than :data:`GATHER_WITHIN` seconds ago; an idle one pulls at once."""
GATHER_WITHIN: Final = 0.1
BAD_KEY_ANSWERS: Final = 3
"""Answers in a row from the home whose MAC does not verify before the agent stops.

Such a home signs with another key than the agent's (another area's home at that
address, or the agent was given another area's key, or the area's secret was
made anew). The agent reads its key once, at start, so retrying cannot help:
it drains and stops with one line, for its operator (or supervisor) to start it
again with the right key. One bad answer alone could be corruption; a few in a
row are not.
"""


class PullLoop:
    """Pulls a host agent's tasks from the home, in a thread of its own.

    Args:
        agent: the agent's name: the origin of its pulls.
        home: the home's request address.
        key: the area's secret; pulls are signed and answers verified with it.
        slots: the agent's slot table: what runs, what is free, where tasks go.
        seen: where task ids are recorded before they are carried out.
        spool: the agent's status spool (while it cannot write, no test is taken).
        interval: seconds between pulls.
        wake: set to pull at once (a slot is free, the agent drains).
        on_give_up: called, in a thread of its own, when the home's answers keep
            failing to verify; it drains the agent (and joins this loop's thread).
        tls: dial the home with TLS.

    Raises:
        BusError: the home's address is malformed.
    """

    def __init__(
        self,
        *,
        agent: str,
        home: str,
        key: bytes,
        slots: SlotTable,
        seen: SeenTasks,
        spool: Spool,
        interval: float,
        wake: threading.Event,
        on_give_up: Callable[[], None],
        tls: Tls | None = None,
    ) -> None:
        self.agent = agent
        self.home = home
        self._key = key
        self._slots = slots
        self._seen = seen
        self._spool = spool
        self._interval = interval
        self._wake = wake
        self._on_give_up = on_give_up
        self._requester = Requester(home, timeout=PULL_TIMEOUT, tls=tls)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._acks: tuple[bytes, ...] = ()  # only the pull thread touches it
        self._bad_key_answers = 0  # only the pull thread touches it
        self._last_answer = -math.inf  # monotonic time of the last answer (the pull thread's)
        self.failure: str | None = None
        self.answered = 0
        """Pulls the home answered."""
        """Why the loop gave up (the home's answers do not verify), or None."""
        self._trouble = Trouble(f"agent {agent}: pull from {home}", _log)
        self._record_trouble = Trouble(f"agent {agent}: recording tasks", _log, logging.ERROR)
        self._disk_trouble = Trouble(f"agent {agent}", _log, logging.ERROR)

    def start(self) -> None:
        """Start pulling, from a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name=f"agent {self.agent} pulls")
        self._thread.daemon = True
        self._thread.start()

    def drain(self) -> None:
        """Take no new run task from now on, and tell the home at once."""
        self._draining.set()
        self._wake.set()

    def stop(self) -> None:
        """Stop pulling: a pull in flight is cut short; waits for the thread a while."""
        self._stop.set()
        self._wake.set()
        self._requester.close()  # cuts a pull in flight short
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT)
            if self._thread.is_alive():
                _log.warning("agent %s: pull thread still running after stop", self.agent)

    # -- the loop (its own thread) ------------------------------------------------------

    def _loop(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                ok = self._pull()
            except Exception:
                # The loop is the agent's lifeline (kills, acks): an unexpected error in one
                # round is logged with its traceback and the next round tries again.
                _log.exception("agent %s: pull round failed", self.agent)
                ok = False
            if ok:
                delay = self._interval
            else:
                delay = min(PULL_BACKOFF_MAX, max(self._interval, delay * 2))
            woken = self._wake.wait(delay)
            if woken and self._busy() and not self._draining.is_set():
                self._stop.wait(GATHER)  # cut short by stop()

    def _busy(self) -> bool:
        """Whether the last pull was answered less than :data:`GATHER_WITHIN` ago."""
        return time.monotonic() - self._last_answer < GATHER_WITHIN

    def _make_pull(self) -> Pull:
        draining = self._draining.is_set()
        full = self._disk_failing()
        running, free = self._slots.tasks_and_free()
        return Pull(
            origin=self.agent,
            slots=self._slots.slots,
            free=0 if draining or full else free,
            acks=self._acks,
            running=running,
            draining=draining,
        )

    def _pull(self) -> bool:
        """One pull and its tasks; whether the home answered it."""
        try:
            reply = self._requester.request(pkts.encode(self._make_pull(), self._key))
        except BusError as exc:
            if not self._stop.is_set():  # a pull cut short by stop() is no problem
                self._trouble.report(str(exc))
            return False
        tasks = self._read_reply(reply)
        if isinstance(tasks, str):
            self._trouble.report(tasks)
            if self._bad_key_answers >= BAD_KEY_ANSWERS:
                self._give_up(f"{tasks}: is the key the area's?")
            return False
        self._trouble.clear()
        self.answered += 1
        self._last_answer = time.monotonic()
        self._acks = tuple(dict.fromkeys(self._take(tasks)))
        return True

    def _read_reply(self, reply: bytes) -> list[Task] | str:
        """The tasks of the home's answer, or a one-line problem."""
        try:
            packets = pkts.decode_batch(reply, self._key)
        except pkts.BadMac as exc:
            self._bad_key_answers += 1
            return f"the answers from {self.home} do not verify ({exc})"
        except pkts.PacketError as exc:
            return f"bad answer from {self.home}: {exc}"
        self._bad_key_answers = 0
        if not packets or not isinstance(packets[0], Receipt):
            return f"the answer from {self.home} does not start with a receipt"
        if packets[0].error:
            return f"home at {self.home} refused the pull: {packets[0].error}"
        tasks = [packet for packet in packets[1:] if isinstance(packet, Task)]
        if len(tasks) != len(packets) - 1:
            others = sorted({p.kind for p in packets[1:] if not isinstance(p, Task)})
            _log.warning("agent %s: ignored %s packets in a pull's answer", self.agent, others)
        return tasks

    def _give_up(self, why: str) -> None:
        """Stop pulling, and have the agent drained from a thread of its own."""
        if self.failure is not None:
            return
        self.failure = why
        _log.error("agent %s stops: %s", self.agent, why)
        self._stop.set()
        threading.Thread(target=self._on_give_up, name=f"agent {self.agent} gives up").start()

    def _disk_failing(self) -> bool:
        """Whether the spool holds status packets it cannot write (logged when it changes)."""
        if self._spool.held:
            self._disk_trouble.report("takes no new tests while its spool cannot be written")
            return True
        self._disk_trouble.clear()
        return False

    # -- taking tasks -------------------------------------------------------------------

    def _take(self, tasks: list[Task]) -> list[bytes]:
        """Record a pull's new tasks (in one durable write) and carry them out; the ids to
        acknowledge."""
        slots = self._slots
        with slots.lock:
            if slots.closed:
                return []  # not recorded: the home sends them again to the next start
            taken, acks = self._choose(tasks)
            if not taken:
                return acks
            try:
                new = self._seen.add_many(
                    [(task.id, ref if task.action is Action.RUN else None) for task, ref in taken]
                )
            except apsw.Error as exc:
                self._record_trouble.report(f"cannot record tasks: {one_line(exc)}")
                return acks  # the others are not acked, nor carried out: they come again
            self._record_trouble.clear()
            for task, ref in taken:
                acks.append(task.id)
                if task.id not in new:
                    _log.debug(
                        "agent %s: task %s seen before, not run again", self.agent, task.id.hex()
                    )
                    continue
                match task.action:
                    case Action.RUN:
                        slots.accept(task, ref)
                    case Action.KILL:
                        slots.kill(task, ref)
        return acks

    def _choose(self, tasks: list[Task]) -> tuple[list[tuple[Task, TestRef]], list[bytes]]:
        """The tasks to take now, and the ids of those left that can be acknowledged already.

        A run task is left while draining (the home gives it to another agent) or while
        the disk fails (the home sends it again); one recorded before is acknowledged.
        """
        taken: list[tuple[Task, TestRef]] = []
        acks: list[bytes] = []
        closed = self._draining.is_set() or self._disk_failing()
        for task in tasks:
            if task.action is Action.RUN and closed:
                if task.id in self._seen:
                    acks.append(task.id)
                continue
            taken.append((task, TestRef(task.target, task.runname, task.test, task.item)))
        return taken, acks
