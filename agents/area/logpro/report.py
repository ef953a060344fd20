"""What a judged log leaves behind: the ``.dat`` values file and the ``.html`` report.

Megatest reads ``<step>.dat`` after logpro (launch.scm:62-80) as a config file
and turns each of its sections into a row of test data (db.scm:3289-3360): a
``[rule-N]`` section per ``expect:value`` rule that measured something (keys
``operator``, ``section``, ``desc``, ``status``, ``expected``, ``measured``,
``type``, ``tolerance``, ``pass``, ``fail``; ``measured`` is the last
measurement, ``status`` OK when none failed, else FAIL) and ``[final]`` with
``exit-code``, ``exit-status`` and ``message``. Counting rules get no section:
they are in the report, not in test data.

The ``.html`` report is for people: the code, each rule with its count and the
first lines it claimed, each measurement. It is written next to the ``.dat``
(``step.html`` and ``step.dat``), both atomically.
"""

from __future__ import annotations

import html
from pathlib import Path

from mtpkt.agents.area.logpro.engine import Result
from mtpkt.agents.area.scheme.values import number_text
from mtpkt.pkts.text import one_line
from mtpkt.store.files import atomic_write

__all__ = ["dat_text", "html_text", "write_reports"]


def _value_text(value: float | None) -> str:
    return "n/a" if value is None else number_text(value)


def dat_text(result: Result) -> str:
    """The ``.dat`` values file of a judged log."""
    lines: list[str] = []
    for rule, measurements in result.values:
        if not measurements:
            continue
        failed = sum(1 for m in measurements if not m.passed)
        tolerant = rule.tolerance is not None
        lines += [
            f"[rule-{rule.number}]",
            "operator in",
            f"section {one_line(rule.section)}",
            f"desc {one_line(rule.message)}",
            f"status {'FAIL' if failed else 'OK'}",
            f"expected {number_text(rule.expected)}",
            f"measured {_value_text(measurements[-1].measured)}",
            f"type {'+/-' if tolerant else rule.op}",
            f"tolerance {number_text(rule.tolerance) if rule.tolerance is not None else rule.op}",
            f"pass {len(measurements) - failed}",
            f"fail {failed}",
            "",
        ]
    lines += [
        "[final]",
        f"exit-code {int(result.code)}",
        f"exit-status {result.code.name}",
        f"message {one_line(result.message)}",
    ]
    return "\n".join(lines) + "\n"


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in cells) + "</tr>"


def html_text(result: Result, title: str) -> str:
    """The ``.html`` report of a judged log (``title``: the rule file's name)."""
    parts = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(result.code.name)} ({int(result.code)})</h1>",
        f"<p>{html.escape(result.message)}; {result.lines} lines read.</p>",
        "<table border='1'>",
        _row(
            ["rule", "kind", "section", "expected", "counted", "result", "message", "lines"], "th"
        ),
    ]
    for found in result.expects:
        rule = found.rule
        shown = "\n".join(f"{number}: {text}" for number, text in found.samples)
        parts.append(
            _row(
                [
                    f"{rule.number} (line {rule.line})",
                    rule.kind,
                    rule.section,
                    f"{rule.op} {number_text(rule.count)}",
                    str(found.count),
                    found.code.name,
                    rule.message,
                    shown,
                ]
            )
        )
    parts += ["</table>", "<table border='1'>"]
    parts.append(_row(["rule", "section", "expected", "measured", "result", "message"], "th"))
    for value, measurements in result.values:
        limit = f"± {number_text(value.tolerance)}" if value.tolerance is not None else value.op
        for m in measurements:
            parts.append(
                _row(
                    [
                        f"{value.number} (log line {m.line})",
                        value.section,
                        f"{number_text(value.expected)} {limit}",
                        _value_text(m.measured),
                        "PASS" if m.passed else "FAIL",
                        value.message,
                    ]
                )
            )
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def write_reports(result: Result, html_path: Path, title: str) -> None:
    """Write ``html_path`` and the ``.dat`` beside it (the same name, suffix ``.dat``).

    Raises:
        OSError: a file cannot be written.
    """
    atomic_write(html_path, html_text(result, title).encode())
    atomic_write(html_path.with_suffix(".dat"), dat_text(result).encode())
