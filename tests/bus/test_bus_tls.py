"""bus sockets over TLS (tls+tcp on loopback), with certificates made in the test by trustme."""

import contextlib
from pathlib import Path

import pytest

from mtpkt.bus import (
    BusError,
    BusTimeout,
    Publisher,
    Replier,
    Requester,
    Subscriber,
    Tls,
    TlsError,
    handshake_error,
    refused,
    tls_address,
)
from tests.support.certs import Pki, make_pki

REFUSAL_WAIT = 1.0
"""Seconds a refused client waits for an answer that must not come."""


def echo(frame: bytes) -> bytes:
    return b"re:" + frame


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def home_tls(pki: Pki) -> Tls:
    """Mutual: the home demands a certificate signed by the CA."""
    return Tls.load(cert=pki.home.cert, key=pki.home.key, ca=pki.ca)


@pytest.fixture(scope="module")
def agent_tls(pki: Pki) -> Tls:
    return Tls.load(cert=pki.agent.cert, key=pki.agent.key, ca=pki.ca)


def serve(closing: contextlib.ExitStack, tls: Tls | None) -> Replier:
    replier = Replier("tcp://127.0.0.1:0", echo, workers=2, name="tls replier", tls=tls)
    closing.callback(replier.close)
    replier.start()
    return replier


def ask(closing: contextlib.ExitStack, address: str, tls: Tls | None, timeout: float) -> bytes:
    requester = Requester(address, timeout=timeout, tls=tls)
    closing.callback(requester.close)
    return requester.request(b"hello")


def test_a_trusted_client_is_answered(
    closing: contextlib.ExitStack, home_tls: Tls, agent_tls: Tls
) -> None:
    replier = serve(closing, home_tls)
    assert replier.address.startswith("tls+tcp://127.0.0.1:")
    assert ask(closing, replier.address, agent_tls, 5.0) == b"re:hello"
    # The plain form of the address is turned into tls+tcp:// by the TLS settings.
    plain = replier.address.removeprefix("tls+")
    assert ask(closing, plain, agent_tls, 5.0) == b"re:hello"
    assert handshake_error(replier.address, agent_tls) == ""
    assert not refused(replier.address, within=0.1, tls=agent_tls)


def test_tls_publisher_reaches_a_trusted_subscriber(
    closing: contextlib.ExitStack, home_tls: Tls, agent_tls: Tls
) -> None:
    publisher = Publisher("tcp://127.0.0.1:0", tls=home_tls)
    closing.callback(publisher.close)
    assert publisher.address.startswith("tls+tcp://")
    subscriber = Subscriber(publisher.address, tls=agent_tls)
    closing.callback(subscriber.close)
    got = None
    for _ in range(50):  # a subscriber connects in the background: publish until it hears
        publisher.publish(b"frame")
        got = subscriber.recv(0.1)
        if got is not None:
            break
    assert got == b"frame"


def _client(pki: Pki, which: str) -> Tls | None:
    match which:
        case "plain":
            return None
        case "untrusted certificate":  # signed by a CA the home does not trust
            return Tls.load(cert=pki.stranger.cert, key=pki.stranger.key, ca=pki.ca)
        case "no certificate":  # the home is mutual: it asks for one
            return Tls.load(ca=pki.ca)
        case "home not trusted":  # the client checks the home against another CA
            return Tls.load(cert=pki.agent.cert, key=pki.agent.key, ca=pki.other_ca)
    raise AssertionError(which)


@pytest.mark.parametrize(
    "which", ["plain", "untrusted certificate", "no certificate", "home not trusted"]
)
def test_a_client_the_handshake_fails_for_gets_no_answer(
    which: str, closing: contextlib.ExitStack, pki: Pki, home_tls: Tls
) -> None:
    replier = serve(closing, home_tls)
    client = _client(pki, which)
    address = replier.address.removeprefix("tls+") if client is None else replier.address
    with pytest.raises(BusTimeout, match="no reply from") as caught:
        ask(closing, address, client, REFUSAL_WAIT)
    if client is not None:
        assert "TLS handshake" in str(caught.value)
        assert handshake_error(replier.address, client)  # a blocking dial says why


def test_without_a_ca_the_home_takes_any_tls_client(
    closing: contextlib.ExitStack, pki: Pki
) -> None:
    replier = serve(closing, Tls.load(cert=pki.home.cert, key=pki.home.key))
    assert ask(closing, replier.address, Tls.load(ca=pki.ca), 5.0) == b"re:hello"


def test_tls_addresses_and_roles_are_checked(pki: Pki, home_tls: Tls, tmp_path: Path) -> None:
    assert tls_address("tcp://h:1", home_tls) == "tls+tcp://h:1"
    assert tls_address("tls+tcp://h:1", home_tls) == "tls+tcp://h:1"
    assert tls_address("ipc:///x", None) == "ipc:///x"
    with pytest.raises(TlsError, match="TLS is for tcp addresses only, not ipc://"):
        tls_address(f"ipc://{tmp_path}/x.ipc", home_tls)
    with pytest.raises(BusError, match="TLS is for tcp addresses only"):
        Replier(f"ipc://{tmp_path}/x.ipc", echo, tls=home_tls)
    with pytest.raises(BusError, match="takes TLS only"):
        Requester("tls+tcp://127.0.0.1:9", tls=None)
    with pytest.raises(BusError, match="needs a certificate"):
        Publisher("tcp://127.0.0.1:0", tls=Tls.load(ca=pki.ca))
    with pytest.raises(BusError, match="needs the CA"):
        Subscriber("tcp://127.0.0.1:9", tls=Tls.load(cert=pki.agent.cert, key=pki.agent.key))


def test_bad_files_are_one_clear_error_at_load(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    open_key = tmp_path / "open.key"
    open_key.write_bytes(pki.agent.key.read_bytes())
    open_key.chmod(0o644)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n")
    encrypted.chmod(0o600)
    cases = [
        ({"ca": tmp_path / "missing.crt"}, "missing.crt does not exist"),
        ({"ca": tmp_path}, "is a directory"),
        ({"ca": garbage}, "holds no PEM certificate"),
        ({"cert": pki.agent.cert}, "needs its key"),
        ({"cert": pki.agent.cert, "key": garbage}, "holds no PEM private key"),
        ({"cert": pki.agent.cert, "key": open_key}, "chmod 600"),
        ({"cert": pki.agent.cert, "key": encrypted}, "is encrypted"),
        ({"cert": pki.agent.cert, "key": pki.home.key}, "does not belong to the certificate"),
    ]
    for files, message in cases:
        with pytest.raises(TlsError, match=message) as caught:
            Tls.load(**files)
        assert "\n" not in str(caught.value)
    assert "PRIVATE KEY" not in repr(Tls.load(cert=pki.agent.cert, key=pki.agent.key))
