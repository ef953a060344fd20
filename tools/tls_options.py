"""``--tls-cert``, ``--tls-key`` and ``--tls-ca``: one definition for the home and for the
commands that dial it (``agent``, ``send``, ``tail``).

The home with a certificate and key listens on ``tls+tcp://`` only (the tcp
address given is turned into that, and ``home.json`` records it); with a CA as
well it takes only peers whose certificate that CA signed (mutual TLS). A
dialer needs the CA that signed the home's certificate, and its own
certificate when the home is mutual. Commands that only read the databases
(``runs``, ``tests``, ``agents``, ``report``) never dial the home and take
none of these.

Plain tcp stays as it was; every frame is signed with the area's key either way.
"""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.bus.tls import Tls

__all__ = [
    "add_tls_options",
    "check_handshake",
    "dial_tls",
    "handshake_problem",
    "listen_tls",
    "tls_endpoint",
]

_HELP = {
    "listen": {
        "cert": "the home's certificate (PEM), made out to the host name or IP agents dial;"
        " with --tls-key the home takes TLS only (tls+tcp://)",
        "key": "the private key of --tls-cert (PEM, not encrypted, mode 0600)",
        "ca": "mutual TLS: take only peers whose certificate this CA signed (PEM)",
    },
    "dial": {
        "cert": "this host's certificate (PEM), for a home that asks for one (mutual TLS)",
        "key": "the private key of --tls-cert (PEM, not encrypted, mode 0600)",
        "ca": "the CA (PEM) that signed the home's certificate: dial the home with TLS"
        " (needed when its address is tls+tcp://)",
    },
}


def add_tls_options(parser: argparse.ArgumentParser, *, role: Literal["listen", "dial"]) -> None:
    """Add the three options, in a group of their own, with the help of ``role``."""
    group = parser.add_argument_group("TLS (tcp only; see docs/user-guide.md)")
    for name in ("cert", "key", "ca"):
        group.add_argument(
            f"--tls-{name}", type=Path, metavar="FILE", default=None, help=_HELP[role][name]
        )


def _load(args: argparse.Namespace, role: Literal["listen", "dial"]) -> "Tls | None":
    """The TLS settings the options give (None: no option given); USAGE errors for the rest."""
    from mtpkt.bus.tls import Tls, TlsError

    cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
    if cert is None and key is None and ca is None:
        return None
    if (cert is None) != (key is None):
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise CliError(f"{given} needs {missing}", ExitCode.USAGE)
    if role == "listen" and cert is None:
        raise CliError(
            "--tls-ca on the home needs --tls-cert and --tls-key: the home's own certificate",
            ExitCode.USAGE,
        )
    if role == "dial" and ca is None:
        raise CliError(
            "--tls-cert and --tls-key need --tls-ca: the CA that signed the home's certificate",
            ExitCode.USAGE,
        )
    try:
        return Tls.load(cert=cert, key=key, ca=ca)
    except TlsError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def listen_tls(args: argparse.Namespace, *addresses: str | None) -> "Tls | None":
    """The home's TLS settings, checked against the addresses it is told to listen on.

    Raises:
        CliError: USAGE for a bad combination or a bad file.
    """
    from mtpkt.bus.tls import TlsError, is_tls_address, tls_address

    tls = _load(args, "listen")
    for address in filter(None, addresses):
        if tls is None and is_tls_address(address):
            raise CliError(f"{address} needs --tls-cert and --tls-key", ExitCode.USAGE)
        try:
            tls_address(address, tls)
        except TlsError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
    return tls


def dial_tls(args: argparse.Namespace) -> "Tls | None":
    """The TLS settings to dial the home with (None: plain tcp).

    Raises:
        CliError: USAGE for a bad combination or a bad file.
    """
    return _load(args, "dial")


def tls_endpoint(address: str, tls: "Tls | None") -> str:
    """The address to dial with ``tls``: with TLS a ``tcp://`` address becomes
    ``tls+tcp://``; without, a ``tls+tcp://`` one (as a home with TLS records in
    ``home.json``) is a USAGE error that says which options are missing."""
    from mtpkt.bus.tls import TlsError, is_tls_address, tls_address

    if tls is None and is_tls_address(address):
        raise CliError(
            f"the home at {address} takes TLS only: pass --tls-ca FILE"
            " (and --tls-cert/--tls-key if it asks for a certificate)",
            ExitCode.USAGE,
        )
    try:
        return tls_address(address, tls)
    except TlsError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def handshake_problem(address: str, tls: "Tls") -> str:
    """One line on why the TLS handshake with the home fails, or ``""`` if it does not."""
    from urllib.parse import urlsplit

    from mtpkt.bus import handshake_error

    why = handshake_error(address, tls)
    if not why:
        return ""
    host = urlsplit(address).hostname
    return (
        f"the TLS handshake with the home at {address} failed ({why}): is its certificate"
        f" signed by the --tls-ca CA and made out to {host}, and, if it asks for one,"
        " is --tls-cert signed by the CA it trusts?"
    )


def check_handshake(address: str, tls: "Tls | None") -> None:
    """Fail at once (UNREACHABLE) if the TLS handshake with ``address`` fails: a dialer that
    does not block only ever sees no answer."""
    if tls is not None and (problem := handshake_problem(address, tls)):
        raise CliError(problem, ExitCode.UNREACHABLE)
