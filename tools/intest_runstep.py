"""``megatest -runstep NAME [-logpro RULES] "command"``: run a command as a step, judge its log.

As megatest.scm:1949-1991: the command (its words joined by spaces) runs in
the current directory with its output in ``NAME.log``; with ``-logpro`` the
log is judged by the rule file (:mod:`mtpkt.agents.area.logpro`), which writes
``NAME.html`` (then the test's log) and ``NAME_logpro.log``, and logpro's code
replaces the command's. The step's status is that code's (launch.scm:198-206:
0 PASS, 1 FAIL, 2 WARN, 3 CHECK, 4 WAIVED, 5 ABORT, 6 SKIP), or, without
logpro, PASS for 0 and FAIL otherwise.

Unlike Megatest, which runs ``(command) 2>&1 > NAME.log`` (in bash that sends
the command's stderr to the caller's output, not the log), both outputs go
into the log.
"""

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_step"]


def run_step(
    name: str, words: Sequence[str], logpro: str | None
) -> tuple[int, dict[str, Any], str]:
    """Run the step's command, then logpro when given.

    Returns:
        The step's code, its end (the ``step`` part of a call, without comment), and
        the logpro report to set as the test's log (``""`` without logpro).
    """
    from mtpkt import pkts

    logfile = f"{name}.log"
    command = " ".join(words)
    bash = shutil.which("bash") or "/bin/bash"
    try:
        with open(logfile, "wb") as log:
            code = subprocess.run(
                [bash, "-c", command], stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False
            ).returncode
    except OSError as exc:
        print(f"megatest: -runstep {name}: {exc.strerror}", file=sys.stderr)
        code = 1
    if code < 0:  # killed by a signal: as a shell reports it
        code = 128 - code
    html = ""
    if logpro is not None:
        code, html = _logpro(name, logpro, logfile), f"{name}.html"
        status = _LOGPRO[code] if 0 <= code < len(_LOGPRO) else pkts.Status.FAIL
    else:
        status = pkts.Status.PASS if code == 0 else pkts.Status.FAIL
    end = {
        "name": name,
        "state": "end",
        "status": str(status),
        "exit_code": code,
        "logfile": logfile,
    }
    return code, end, html


_LOGPRO = ("PASS", "FAIL", "WARN", "CHECK", "WAIVED", "ABORT", "SKIP")
"""Step statuses by logpro code (launch.scm:198-206)."""


def _logpro(name: str, rules_file: str, logfile: str) -> int:
    """Judge the step's log by the rule file; logpro's code (1 when the rules cannot be read)."""
    from mtpkt.agents.area.logpro import judge, load_rules
    from mtpkt.agents.area.logpro.report import write_reports
    from mtpkt.agents.area.scheme import SchemeError

    out = Path(f"{name}_logpro.log")
    try:
        rules = load_rules(Path(rules_file))
        with open(logfile, encoding="utf-8", errors="replace", newline="") as log:
            result = judge(rules, (line.rstrip("\r\n") for line in log))
        write_reports(result, Path(f"{name}.html"), rules_file)
    except (SchemeError, OSError) as exc:
        text = str(exc) if isinstance(exc, SchemeError) else f"{rules_file}: {exc.strerror}"
        out.write_text(f"{text}\n")
        print(f"megatest: -runstep {name} -logpro: {text}", file=sys.stderr)
        return 1
    out.write_text(f"{result.message}\n")
    return int(result.code)
