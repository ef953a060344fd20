"""The agent's local endpoint: calls from its tests' processes (``megatest -step`` …), exactly once.

Each agent listens on an ``ipc://`` socket under its state directory (under
``/tmp`` when that path would be too long for a socket, :func:`address_for`),
and writes ``bin/megatest`` there: a shim that runs the ``megatest`` command
(:mod:`mtpkt.tools.megatest_cmd`) with the agent's own Python. Every test
instance gets a random token (:meth:`Endpoint.admit`); its steps find the
shim, the address and the token in their environment
(:func:`~mtpkt.agents.area.environment.in_test_variables`). The token is the
authentication and says which test a call is for; it dies with the test.

Exactly once: the caller gives each call an id and sends it again while no
answer comes. The agent turns a call into packets through the test's
:class:`~mtpkt.agents.host.report.Reporter` and stores them in the spool in
ONE transaction with the call's id and answer (:meth:`Spool.put_many` with
``call=``), and only then answers; a call whose id the spool knows gets the
stored answer again and reports nothing (also after the agent restarted). A
call that fails (a bad word, another test's token …) records nothing, gets
``ok: false`` and one line, and the agent carries on.

Frames are msgpack maps: the request ``{"token", "id", "parts"}`` (parts:
:mod:`~mtpkt.agents.host.intest`), the answer ``{"ok", "error"}``.
"""

import hashlib
import logging
import os
import secrets
import shlex
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgpack

from mtpkt import pkts
from mtpkt.agents.area.environment import in_test_variables
from mtpkt.agents.area.job import TestRef
from mtpkt.agents.host import intest
from mtpkt.agents.host.report import Reporter
from mtpkt.bus import Replier, Spool
from mtpkt.pkts.status import StatusPacket
from mtpkt.pkts.text import one_line
from mtpkt.store.files import atomic_write

__all__ = ["MAX_CALL", "MAX_IPC_PATH", "Endpoint", "address_for", "answer"]

_log = logging.getLogger(__name__)

MAX_IPC_PATH: Final = 100
"""Longest socket path used: Linux's ``sun_path`` holds 107 bytes and a NUL."""
MAX_CALL: Final = pkts.MAX_PACKET_SIZE
"""Largest call read (test data of ``-load-test-data`` included); the command checks it too."""
SHIM: Final = "bin/megatest"
"""The ``megatest`` shim, under the state directory."""


def address_for(state_dir: Path) -> str:
    """The endpoint's address: ``ipc://<state_dir>/calls.ipc``, or a short path under ``/tmp``
    named after the state directory when that one is too long for a socket."""
    path = str(Path(state_dir).absolute() / "calls.ipc")
    if len(path.encode()) > MAX_IPC_PATH:
        digest = hashlib.sha256(path.encode()).hexdigest()[:20]
        path = f"/tmp/mtpkt-{digest}.ipc"
    return f"ipc://{path}"


def answer(error: str = "") -> bytes:
    """An answer frame: ok when ``error`` is empty, else the line the caller prints."""
    return bytes(msgpack.packb({"ok": not error, "error": error}))


def _write_shim(state_dir: Path) -> Path:
    """Write ``bin/megatest``: the command, run by this Python."""
    path = Path(state_dir).absolute() / SHIM
    path.parent.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(sys.executable)
    text = f'#!/bin/sh\nexec {python} -m mtpkt.tools.megatest_cmd "$@"\n'
    atomic_write(path, text.encode())
    os.chmod(path, 0o755)
    return path


class Endpoint:
    """Serves the calls of the tests this agent runs.

    Args:
        state_dir: the agent's state directory (its socket and shim go there).
        spool: the agent's spool: packets and answered call ids.
        reporter: the agent's reporter (into ``spool``).
        agent: the agent's name, for logs.

    Raises:
        bus.BusError: the socket cannot be listened on.
        OSError: the shim cannot be written.
    """

    def __init__(self, state_dir: Path, spool: Spool, reporter: Reporter, *, agent: str) -> None:
        self.megatest = _write_shim(state_dir)
        """The ``megatest`` shim steps call (``MT_MEGATEST``)."""
        self._spool = spool
        self._reporter = reporter
        self._agent = agent
        self._tests: dict[str, intest.InTest] = {}
        self._tests_lock = threading.Lock()
        self._call_lock = threading.Lock()  # one call at a time: a retry waits for its first try
        self._replier = Replier(
            address_for(state_dir), self._handle, workers=2, name=f"agent {agent} calls"
        )
        self.address = self._replier.address
        """Where the endpoint listens."""

    def start(self) -> None:
        """Serve calls."""
        self._replier.start()

    def close(self) -> None:
        """Stop serving (later calls do nothing)."""
        self._replier.close()
        path = self.address.removeprefix("ipc://")
        if path.startswith("/tmp/"):
            try:
                os.unlink(path)
            except OSError:
                pass

    # -- tests ----------------------------------------------------------------------------

    def admit(
        self, ref: TestRef, process: Any, base: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]:
        """Give a test a token; its steps' variables (over ``base``, the job's environment).

        Args:
            ref: the test instance.
            process: its :class:`~mtpkt.agents.host.runner.TestProcess`, or None until
                :meth:`bind` gives it (calls meanwhile are refused).
            base: the job's environment (its ``PATH`` is extended).

        Returns:
            The token, and the variables to add to the steps' environment.
        """
        token = secrets.token_urlsafe(24)
        with self._tests_lock:
            self._tests[token] = intest.InTest(ref, process)
        variables = in_test_variables(
            base, megatest=str(self.megatest), endpoint=self.address, token=token
        )
        return token, variables

    def bind(self, token: str, process: Any) -> None:
        """Give an admitted test its process."""
        with self._tests_lock:
            self._tests[token].process = process

    def dismiss(self, token: str) -> None:
        """The test ended: calls with its token are refused from now on."""
        with self._tests_lock:
            self._tests.pop(token, None)

    # -- calls ----------------------------------------------------------------------------

    def _handle(self, frame: bytes) -> bytes | None:
        if len(frame) > MAX_CALL:
            return answer(f"call of {len(frame)} bytes is larger than {MAX_CALL}")
        try:
            request = msgpack.unpackb(frame, raw=False)
            token, call_id, parts = request["token"], request["id"], request["parts"]
            if not (isinstance(token, str) and isinstance(call_id, bytes)):
                raise TypeError("token or id of the wrong type")
            if not isinstance(parts, dict):
                raise TypeError("parts is not a map")
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            return answer(f"malformed call: {one_line(exc)}")
        with self._call_lock:
            return self._call(token, call_id, parts)

    def _call(self, token: str, call_id: bytes, parts: dict[str, Any]) -> bytes | None:
        known = self._spool.answer(call_id)
        if known is not None:  # a retry: answer again, report nothing
            return self._durable(call_id, known[0], known[1])
        with self._tests_lock:
            test = self._tests.get(token)
        if test is None or test.process is None:
            return answer("MTPKT_TOKEN is not the token of a test running on this agent")
        reply = answer()

        def seal(packets: list[StatusPacket]) -> None:
            self._spool.put_many(packets, call=(call_id, reply))

        try:
            checked = intest.check(test, parts)
            with self._reporter.together(seal):
                remember = intest.report(test, checked, self._reporter)
        except intest.CallError as exc:
            return answer(str(exc))
        except (ValueError, TypeError, KeyError, AttributeError, pkts.PacketError) as exc:
            # Malformed parts, a packet too large for the spool, one that cannot be encoded.
            return answer(f"call refused: {one_line(exc)}")
        remember()
        known = self._spool.answer(call_id)
        return None if known is None else self._durable(call_id, *known)

    def _durable(self, call_id: bytes, reply: bytes, durable: bool) -> bytes | None:
        """The answer once the call is on disk; None (no answer: the caller retries) while the
        spool's disk fails."""
        if durable or self._spool.flush():
            return reply
        _log.warning(
            "agent %s: call %s held: not answered until the spool is written",
            self._agent,
            call_id.hex(),
        )
        return None
