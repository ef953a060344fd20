"""TLS settings for tcp endpoints: certificate, key and CA, read and checked once.

Every frame is signed with the area's key whether or not TLS is on; TLS adds
what signatures cannot: nobody on the network reads the packets, and a host
without a certificate the home trusts cannot even connect (mutual TLS).

With TLS the transport is NNG's ``tls+tcp://``. :func:`tls_address` turns a
``tcp://`` address into that form; TLS over ``ipc://`` (or anything but tcp)
is refused, since it would protect nothing a file mode does not.

Roles:

* a listener (the home) needs its certificate and key; given a CA too, it
  demands of every peer a certificate signed by that CA (mutual TLS);
* a dialer (agent, ``mtpkt send``, ``mtpkt tail``) needs the CA that signed the
  listener's certificate, which must name the host dialed (DNS name or IP in
  its subjectAltName); its own certificate and key are needed when the
  listener is mutual.

Files are PEM (what ``openssl`` writes): the certificate file may hold the
chain after the certificate; the key must not be encrypted and, like the
area's secret, must not be open to group or others. A file that is missing,
unreadable, not PEM, or a key that does not belong to its certificate, is a
:class:`TlsError` at :meth:`Tls.load`, not a failed handshake later.
"""

import os
import ssl
import stat
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import attrs
import pynng

__all__ = ["Tls", "TlsError", "is_tls_address", "plain_address", "tls_address"]

_TLS_SCHEME: Final = "tls+"
_TCP_SCHEMES: Final = frozenset({"tcp", "tcp4", "tcp6"})

Role = Literal["listen", "dial"]


class TlsError(Exception):
    """TLS settings that cannot be used; ``str(error)`` is one line naming the file or address."""


def is_tls_address(address: str) -> bool:
    """Whether ``address`` is a ``tls+tcp://`` one."""
    return address.startswith(_TLS_SCHEME)


def plain_address(address: str) -> str:
    """``address`` without TLS: ``tls+tcp://h:p`` becomes ``tcp://h:p``; others are unchanged."""
    return address[len(_TLS_SCHEME) :] if is_tls_address(address) else address


def tls_address(address: str, tls: "Tls | None") -> str:
    """The address to use with ``tls``: ``tcp://h:p`` becomes ``tls+tcp://h:p`` when ``tls``
    is given; without TLS settings the address is returned as it is.

    Raises:
        TlsError: TLS settings for an address that is not tcp (``ipc://`` …).
    """
    if tls is None:
        return address
    scheme = urlsplit(plain_address(address)).scheme
    if scheme not in _TCP_SCHEMES:
        raise TlsError(f"TLS is for tcp addresses only, not {address}")
    return _TLS_SCHEME + plain_address(address)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise TlsError(f"the {what} file {path} does not exist") from None
    except IsADirectoryError:
        raise TlsError(f"the {what} file {path} is a directory") from None
    except OSError as exc:
        raise TlsError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TlsError(f"the {what} file {path} is not PEM text (binary DER?)") from None


def _read_certificate(path: Path, what: str) -> str:
    text = _read(path, what)
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise TlsError(f"the {what} file {path} holds no PEM certificate (BEGIN CERTIFICATE)")
    return text


def _read_key(path: Path) -> str:
    text = _read(path, "key")
    if "PRIVATE KEY-----" not in text:
        raise TlsError(f"the key file {path} holds no PEM private key (BEGIN … PRIVATE KEY)")
    if "ENCRYPTED" in text:
        raise TlsError(
            f"the key file {path} is encrypted: write it decrypted, mode 0600"
            f" (openssl pkey -in {path} -out NEWFILE)"
        )
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:  # as for the area's secret: a private key others can read is no secret
        raise TlsError(
            f"the key file {path} is open to group or others (mode {mode:04o}):"
            f" run `chmod 600 {path}`"
        )
    return text


def _check_pair(cert: Path, key: Path) -> None:
    """That the key belongs to the certificate: NNG would only find out at the first handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TlsError(
                f"the key in {key} does not belong to the certificate in {cert}"
            ) from None
        raise TlsError(f"the certificate {cert} or its key {key} cannot be read: {exc}") from None


@attrs.frozen(kw_only=True)
class Tls:
    """TLS settings of one process, in PEM; make them with :meth:`load`.

    The same settings serve every socket of the process: the server side of a
    listener, the client side of a dialer.
    """

    cert: str = ""
    """This side's certificate (and chain), or empty."""
    key: str = attrs.field(default="", repr=False)
    """The private key of :attr:`cert`, or empty."""
    ca: str = ""
    """The CA certificates the peer's certificate must be signed by, or empty."""

    @classmethod
    def load(
        cls, *, cert: Path | None = None, key: Path | None = None, ca: Path | None = None
    ) -> "Tls":
        """Read and check the files.

        Args:
            cert: this side's certificate (PEM; the chain may follow it).
            key: its private key (PEM, not encrypted, mode 0600); needed with ``cert``.
            ca: the CA certificate(s) that sign the peer's certificate (PEM).

        Raises:
            TlsError: a file is missing, unreadable or not usable, the key does not belong
                to the certificate, or one of ``cert`` and ``key`` comes without the other.
        """
        if (cert is None) != (key is None):
            raise TlsError("a TLS certificate needs its key, and a key its certificate")
        tls = cls(
            cert="" if cert is None else _read_certificate(cert, "certificate"),
            key="" if key is None else _read_key(key),
            ca="" if ca is None else _read_certificate(ca, "CA"),
        )
        if cert is not None and key is not None:
            _check_pair(cert, key)
        try:
            tls._config(pynng.TLSConfig.MODE_SERVER if tls.cert else pynng.TLSConfig.MODE_CLIENT)
        except pynng.NNGException as exc:
            files = ", ".join(str(path) for path in (cert, key, ca) if path is not None)
            raise TlsError(f"NNG cannot use the TLS files {files}: {exc}") from None
        return tls

    @property
    def mutual(self) -> bool:
        """Whether a listener with these settings demands a certificate of its peers."""
        return bool(self.ca)

    def check(self, role: Role) -> None:
        """That these settings can serve ``role``.

        Raises:
            TlsError: a listener without a certificate, or a dialer without a CA to check
                the listener's certificate with.
        """
        if role == "listen" and not self.cert:
            raise TlsError("a TLS listener needs a certificate and its key")
        if role == "dial" and not self.ca:
            raise TlsError("a TLS dialer needs the CA that signed the listener's certificate")

    def config(self, role: Role, address: str) -> Any:
        """The ``pynng.TLSConfig`` for a socket that listens on or dials ``address``.

        A listener with a CA requires a certificate of its peers (``AUTH_MODE_REQUIRED``);
        a dialer always verifies the listener's certificate against its CA, with the
        host of ``address`` as the name the certificate must carry.

        Raises:
            TlsError: the settings cannot serve ``role`` (see :meth:`check`).
        """
        self.check(role)
        if role == "listen":
            return self._config(pynng.TLSConfig.MODE_SERVER)
        server_name = urlsplit(plain_address(address)).hostname or ""
        return self._config(pynng.TLSConfig.MODE_CLIENT, server_name=server_name)

    def _config(self, mode: int, *, server_name: str = "") -> Any:
        auth = None
        if mode == pynng.TLSConfig.MODE_SERVER and self.ca:
            auth = pynng.TLSConfig.AUTH_MODE_REQUIRED
        return pynng.TLSConfig(
            mode,
            server_name=server_name or None,
            ca_string=self.ca or None,
            own_cert_string=self.cert or None,
            own_key_string=self.key or None,
            auth_mode=auth,
        )
