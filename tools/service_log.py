"""Where the log of a long-lived command (``mtpkt home``, ``mtpkt agent``) goes.

By default it goes to stderr, for a terminal or a service manager's journal.
With ``--log-file PATH`` the same lines are appended to PATH instead. The file
is watched (:class:`logging.handlers.WatchedFileHandler`): when logrotate moves
it away and creates a new one, the next line goes to the new file, so neither
``copytruncate`` nor a signal is needed (``copytruncate`` works as well, the
file being opened for appending).
"""

import argparse
import logging
import logging.handlers
from pathlib import Path

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode

__all__ = ["add_log_file", "log_format", "setup_logging"]


def add_log_file(parser: "argparse._ActionsContainer") -> None:
    """``--log-file PATH``."""
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append the log to PATH instead of stderr (same lines; a file logrotate moves"
        " away is reopened by name)",
    )


def log_format(role: str) -> str:
    """The format of every log line of ``role`` (``home``, ``agent``), on stderr or in a file."""
    return f"%(asctime)s {role} %(levelname)s %(message)s"


def setup_logging(role: str, path: Path | None) -> None:
    """Send the process's log at INFO and above to stderr, or appended to ``path``.

    Raises:
        CliError: the file cannot be opened for appending (``ERROR``, naming it).
    """
    if path is None:
        logging.basicConfig(level=logging.INFO, format=log_format(role))
        return
    try:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise CliError(
            f"cannot write the log file {path}: {exc.strerror}", ExitCode.ERROR
        ) from None
    handler.setFormatter(logging.Formatter(log_format(role)))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
