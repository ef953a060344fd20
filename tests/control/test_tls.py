"""A home with mutual TLS, from the CLI: only agents and commands with a trusted certificate
reach it; a trusted agent runs a real run, which ``send --wait`` and ``tail`` follow over TLS."""

import json
from pathlib import Path

import pytest

from mtpkt.tools.cli import main
from tests.support.certs import Pair, Pki, make_pki
from tests.support.farm import TARGET, Farm
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(120)


def tls_args(ca: Path, pair: Pair | None = None) -> list[str]:
    own = [] if pair is None else ["--tls-cert", str(pair.cert), "--tls-key", str(pair.key)]
    return ["--tls-ca", str(ca), *own]


def known_agents(farm: Farm) -> set[str]:
    return {str(name) for (name,) in farm.main_query("SELECT name FROM agents")}


def test_a_mutual_tls_home_serves_only_trusted_peers(farm: Farm, tmp_path: Path) -> None:
    pki: Pki = make_pki(tmp_path / "pki")
    farm.start_home(
        "--tls-cert", str(pki.home.cert), "--tls-key", str(pki.home.key), "--tls-ca", str(pki.ca)
    )
    recorded = json.loads((farm.area / ".mtpkt/home.json").read_text())
    assert recorded["listen"].startswith("tls+tcp://127.0.0.1:"), recorded
    assert recorded["publish"].startswith("tls+tcp://127.0.0.1:"), recorded
    plain_home = recorded["listen"].removeprefix("tls+")

    # Neither a plain-tcp agent nor one with a certificate of another CA gets in.
    farm.start_agent("plain", extra=["--home", plain_home])
    farm.start_agent("stranger", extra=tls_args(pki.ca, pki.stranger))
    farm.start_agent("trusted", extra=tls_args(pki.ca, pki.agent))

    no_tls = farm.send("run", "-t", TARGET, "-r", "r1", "--testpatt", "build")
    assert no_tls.returncode == 2, no_tls
    assert "takes TLS only: pass --tls-ca" in no_tls.stderr, no_tls.stderr
    untrusted = farm.send("run", "-t", TARGET, "-r", "r1", *tls_args(pki.ca, pki.stranger))
    assert untrusted.returncode == 5, untrusted
    assert "TLS handshake with the home at tls+tcp://" in untrusted.stderr, untrusted.stderr
    assert len(untrusted.stderr.strip().splitlines()) == 1, untrusted.stderr

    trusted = tls_args(pki.ca, pki.agent)
    sent = farm.send(
        "run", "-t", TARGET, "-r", "r1", "--testpatt", "build,unit", "--wait", *trusted
    )
    assert sent.returncode == 0, sent
    assert "4 tests: 4 PASS" in sent.stderr, sent.stderr
    tests = farm.tests("r1")
    assert {(state, status) for state, status, _ in tests.values()} == {("COMPLETED", "PASS")}
    ran = {host for (test, item), (_, _, host) in tests.items() if (test, item) != ("unit", "")}
    assert ran == {"trusted"}, tests  # the toplevel of unit's items runs nowhere itself
    followed = farm.command("tail", "-r", "r1", "--plain", "--until-done", *trusted, timeout=60)
    assert followed.returncode == 0, followed
    assert "build  PASS on trusted" in followed.stdout, followed.stdout

    assert wait_for(lambda: "no reply from tcp://" in farm.log("plain"), 20), farm.log("plain")
    assert "TLS handshake with the home" in farm.log("stranger"), farm.log("stranger")
    assert wait_for(lambda: "no reply from tls+tcp://" in farm.log("stranger"), 20)
    assert known_agents(farm) == {"trusted"}


def test_tls_options_that_cannot_work_are_usage_errors(
    farm: Farm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = make_pki(tmp_path / "pki")
    key_file = tmp_path / "secret"
    key_file.write_bytes(bytes(range(32)))
    key_file.chmod(0o600)
    cert, key, ca = (str(path) for path in (pki.home.cert, pki.home.key, pki.ca))
    area = ["--area", str(farm.area)]
    dial = [*area, "--key-file", str(key_file), "--home", "tcp://127.0.0.1:9"]
    send = ["send", "run", "-t", TARGET, "-r", "r1", *dial]
    cases = [
        (["home", *area, "--tls-cert", cert], "--tls-cert needs --tls-key"),
        (["home", *area, "--tls-ca", ca], "--tls-ca on the home needs --tls-cert and --tls-key"),
        (
            ["home", *area, "--tls-cert", cert, "--tls-key", key, "--listen", "ipc:///x.ipc"],
            "TLS is for tcp addresses only, not ipc:///x.ipc",
        ),
        (["home", *area, "--listen", "tls+tcp://127.0.0.1:0"], "needs --tls-cert and --tls-key"),
        ([*send, "--tls-cert", cert, "--tls-key", key], "need --tls-ca"),
        ([*send, "--tls-ca", str(tmp_path / "nope.crt")], "nope.crt does not exist"),
        ([*send, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", str(pki.agent.key)], "belong"),
        (
            ["agent", *area, "--key-file", str(key_file), "--home", "tls+tcp://127.0.0.1:9"],
            "TLS only",
        ),
        (["tail", *dial, "--tls-key", key], "--tls-key needs --tls-cert"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
    for command in ("home", "agent", "tail", "send run"):
        with pytest.raises(SystemExit):
            main([*command.split(), "--help"])
        assert "--tls-ca FILE" in capsys.readouterr().out, command
