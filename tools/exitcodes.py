"""Named exit codes of the ``mtpkt`` command (documented in the README)."""

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What an ``mtpkt`` process's exit status means."""

    OK = 0
    """Did what was asked."""
    ERROR = 1
    """Could not do what was asked; one line on stderr says why."""
    USAGE = 2
    """The command line itself was wrong (unknown command, bad flag)."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT)."""
