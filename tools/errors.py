"""The one error type commands raise to stop with a clear line."""

from mtpkt.tools.exitcodes import ExitCode

__all__ = ["CliError"]


class CliError(Exception):
    """Stops a command: ``str(error)`` is printed as one line; :attr:`code` is the exit status."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code
