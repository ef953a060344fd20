"""Named exit codes of the ``mtpkt`` command (``mtpkt --help`` lists them)."""

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What an ``mtpkt`` process's exit status means."""

    OK = 0
    """Did what was asked."""
    ERROR = 1
    """Could not do what was asked; one line on stderr says why."""
    USAGE = 2
    """The command line itself was wrong (unknown command, bad flag, bad value)."""
    TESTS_FAILED = 3
    """``send --wait``, ``tail --until-done``: every test settled, and some ended FAIL, ABORT,
    DEAD, KILLED …"""
    REFUSED = 4
    """The home answered and refused the request; the line gives its reason."""
    UNREACHABLE = 5
    """No answer from the home in time (it is not running, or not at that address), or the
    TLS handshake with it failed."""
    BAD_REPLY = 6
    """The home's answer could not be verified or read (most often: another area's key)."""
    BAD_AREA = 7
    """The area or its ``.mtpkt/`` is missing or wrong: no megatest.config, no secret, no
    home address, a key others can read, a config error."""
    WAIT_TIMEOUT = 8
    """``send --wait --wait-timeout S``: the tests had not all settled after S seconds."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT)."""
