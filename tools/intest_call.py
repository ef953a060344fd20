"""A ``megatest`` call to the agent running the test: sent until answered, with one id.

The agent's endpoint and the test's token come from the step's environment
(``MTPKT_ENDPOINT``, ``MTPKT_TOKEN``: :mod:`mtpkt.agents.host.endpoint`). A
call gets a random id and is sent again, with the same id, while the agent
does not answer (it restarts, or is busy) for up to ``MTPKT_CALL_TIMEOUT``
seconds (default :data:`CALL_TIMEOUT`): the agent records a call once
whatever the number of tries, so it is never lost and never doubled.
"""

import os
import time
from collections.abc import Mapping
from typing import Any, Final

import msgpack

from mtpkt.pkts.codec import MAX_PACKET_SIZE

__all__ = ["CALL_TIMEOUT", "MAX_CALL", "TRY_TIMEOUT", "CallFailed", "call"]

CALL_TIMEOUT: Final = 300.0
"""Seconds a call is tried at most, unless ``MTPKT_CALL_TIMEOUT`` says otherwise."""
MAX_CALL: Final = MAX_PACKET_SIZE
"""Largest call the agent takes (its test data included): below the frames NNG lets through."""
TRY_TIMEOUT: Final = 5.0
"""Seconds one try waits for the answer before the call is sent again."""


class CallFailed(Exception):
    """The call was not done: the message is one line, ``code`` the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _timeout(env: Mapping[str, str]) -> float:
    text = env.get("MTPKT_CALL_TIMEOUT", "")
    try:
        return float(text) if text else CALL_TIMEOUT
    except ValueError:
        raise CallFailed(f"MTPKT_CALL_TIMEOUT={text!r} is not a number of seconds") from None


def call(parts: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Send one call with ``parts`` to the test's agent and wait until it is recorded.

    Raises:
        CallFailed: not inside a test run by an mtpkt agent (code 5, as Megatest
            without ``MT_CMDINFO``), the agent refused the call, or no answer within
            the call's timeout.
    """
    from mtpkt.bus import BusError, BusTimeout, Requester

    env = os.environ if env is None else env
    address, token = env.get("MTPKT_ENDPOINT", ""), env.get("MTPKT_TOKEN", "")
    if not address or not token:
        raise CallFailed(
            "MTPKT_ENDPOINT or MTPKT_TOKEN is not set: megatest must be called inside a test"
            " run by an mtpkt agent",
            5,
        )
    timeout = _timeout(env)
    frame = bytes(msgpack.packb({"token": token, "id": os.urandom(16), "parts": dict(parts)}))
    if len(frame) > MAX_CALL:
        raise CallFailed(f"the call is {len(frame)} bytes, more than the agent takes ({MAX_CALL})")
    deadline = time.monotonic() + timeout
    try:
        requester = Requester(address, timeout=TRY_TIMEOUT)
    except BusError as exc:
        raise CallFailed(f"MTPKT_ENDPOINT={address!r}: {exc}") from None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallFailed(
                    f"no answer from the agent at {address} within {timeout:g}s:"
                    " the call may or may not be recorded"
                )
            try:
                reply = requester.request(frame, timeout=min(TRY_TIMEOUT, left))
                break
            except BusTimeout:
                continue  # the same frame, the same id: recorded once however often it comes
            except BusError:
                time.sleep(min(0.2, max(0.0, left)))
    finally:
        requester.close()
    _check(reply)


def _check(reply: bytes) -> None:
    try:
        answer = msgpack.unpackb(reply, raw=False)
        ok, error = bool(answer["ok"]), str(answer["error"])
    except (ValueError, TypeError, KeyError, msgpack.UnpackException):
        raise CallFailed("the agent's answer cannot be read") from None
    if not ok:
        raise CallFailed(error)
