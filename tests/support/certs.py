"""Throwaway certificates for the TLS tests, made with trustme: a CA the home trusts, and
another CA nobody trusts, with PEM files written where the CLI can be pointed at them."""

from pathlib import Path

import attrs
import trustme

__all__ = ["Pair", "Pki", "make_pki"]


@attrs.frozen
class Pair:
    """A certificate file and its key file (mode 0600, as mtpkt requires)."""

    cert: Path
    key: Path


@attrs.frozen
class Pki:
    """Files of one test's certificates."""

    ca: Path
    """The CA that signed ``home`` and ``agent``."""
    other_ca: Path
    """A CA that signed only ``stranger``."""
    home: Pair
    """Made out to 127.0.0.1 and localhost, signed by ``ca``."""
    agent: Pair
    """An agent's, signed by ``ca``."""
    stranger: Pair
    """Made out to the same names as ``home`` and ``agent``, signed by ``other_ca``."""


def _write(cert: trustme.LeafCert, directory: Path, name: str) -> Pair:
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    cert.cert_chain_pems[0].write_to_path(str(pair.cert))
    cert.private_key_pem.write_to_path(str(pair.key))
    pair.key.chmod(0o600)
    return pair


def make_pki(directory: Path) -> Pki:
    """Make the CAs and certificates, writing their PEM files into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    other.cert_pem.write_to_path(str(directory / "other-ca.crt"))
    names = ("127.0.0.1", "localhost", "agent1")
    return Pki(
        ca=directory / "ca.crt",
        other_ca=directory / "other-ca.crt",
        home=_write(ca.issue_cert("127.0.0.1", "localhost"), directory, "home"),
        agent=_write(ca.issue_cert("agent1"), directory, "agent"),
        stranger=_write(other.issue_cert(*names), directory, "stranger"),
    )
