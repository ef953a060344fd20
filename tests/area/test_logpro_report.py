"""logpro's files and command: the ``.dat`` values Megatest loads (db.scm:3289-3360,
launch.scm:62-80), the ``.html`` report, and ``mtpkt logpro RULES [REPORT] < LOG``."""

import subprocess
from pathlib import Path
from typing import Final

from mtpkt.agents.area.config import read_config
from mtpkt.agents.area.logpro import Code, judge, read_rules
from mtpkt.agents.area.logpro.report import dat_text, html_text, write_reports
from tests.support.cli import clean_env, mtpkt_argv

RULES: Final = """
(expect:error in "LogFileBody" = 0 "Any error" #/ERROR/)
(expect:value in "LogFileBody" 1.9 0.1 "Output voltage" #/volts: ([\\d.]+)/)
(expect:value in "LogFileBody" 1.9 > "Time voltage" #/out: (\\d+)\\s+(\\d+)/ match: 2)
(expect:value in "LogFileBody" 5 1 "never measured" #/nothing/)
"""


def test_dat_is_the_config_megatest_reads(tmp_path: Path) -> None:
    """db.scm:3289-3310: a [rule-N] per measured value rule and [final]; Megatest reads
    it with read-config, so mtpkt's config reader must read it back."""
    result = judge(read_rules(RULES, "t.logpro"), ["volts: 1.85", "out: 1 3", "<ERROR>"])
    assert result.code is Code.FAIL
    path = tmp_path / "step.dat"
    path.write_text(dat_text(result))
    config, _ = read_config(path, env={}, allow_commands=False)
    sections = {
        name: {k: str(e.value) for k, e in keys.items()} for name, keys in config.sections.items()
    }
    assert sorted(sections) == ["final", "rule-2", "rule-3"]
    assert sections["rule-2"] == {
        "operator": "in", "section": "LogFileBody", "desc": "Output voltage", "status": "OK",
        "expected": "1.9", "measured": "1.85", "type": "+/-", "tolerance": "0.1", "pass": "1",
        "fail": "0",
    }  # fmt: skip
    assert sections["rule-3"]["type"] == ">"
    assert sections["rule-3"]["measured"] == "3.0"
    assert sections["final"]["exit-code"] == "1"
    assert sections["final"]["exit-status"] == "FAIL"
    assert sections["final"]["message"].startswith("FAIL: Any error")


def test_html_escapes_the_log(tmp_path: Path) -> None:
    result = judge(read_rules(RULES, "t.logpro"), ["<ERROR> & <script>"])
    page = html_text(result, "t.logpro")
    assert "&lt;script&gt;" in page
    assert "<script>" not in page
    write_reports(result, tmp_path / "step.html", "t.logpro")
    assert (tmp_path / "step.html").read_text() == page
    assert (tmp_path / "step.dat").read_text() == dat_text(result)


def _logpro(*args: str, log: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        mtpkt_argv("logpro", *args), input=log, capture_output=True, text=True, timeout=60,
        env=clean_env(), check=False,
    )  # fmt: skip


def test_command_exits_with_logpros_code(tmp_path: Path) -> None:
    """``mtpkt logpro RULES REPORT < LOG`` as launch.scm:172 runs logpro."""
    rules = tmp_path / "step.logpro"
    rules.write_text('(expect:warning in "LogFileBody" = 0 "Any warning" #/WARN/)\n')
    passed = _logpro(str(rules), str(tmp_path / "step.html"), log="fine\n")
    assert (passed.returncode, passed.stdout) == (0, "PASS\n")
    assert (tmp_path / "step.dat").exists()
    warned = _logpro(str(rules), log="fine\nWARN: low disk\r\n")
    assert warned.returncode == int(Code.WARN)
    assert warned.stdout.startswith("WARN: Any warning")


def test_command_refuses_bad_rules_in_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "bad.logpro"
    rules.write_text(';; fine\n(expect:error in "LogFileBody" = 0 "e" #/(/)\n')
    result = _logpro(str(rules), log="x\n")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"{rules}:2:" in result.stderr
