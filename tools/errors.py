"""The one error type commands raise to stop with a clear line."""

from tools.exitcodes import ExitCode

__all__ = ["CliError", "one_line"]


def one_line(text: str) -> str:
    """``text`` with its line breaks and other control characters written as escapes (``\\n``).

    Error lines echo what the user typed; an argument holding a newline must not
    make two lines of one error (scripts read the last line of stderr).
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class CliError(Exception):
    """Stops a command: ``str(error)`` is printed as one line; :attr:`code` is the exit status."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code
