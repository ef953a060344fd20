"""``mtpkt send`` under random command lines, run in this process against one real home.

Whatever the arguments (unknown flags, unicode, very long strings, odd
characters, testpatts with ``..``, ``/``, ``%``, absolute paths, empty
values), send ends with a documented exit code and at most one line on
stderr: never a traceback.
"""

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mtpkt.tools.cli import main
from mtpkt.tools.exitcodes import ExitCode
from tests.support.farm import TARGET, Farm, make_area
from tests.support.frames import SUMMARY

EXAMPLES = 200
VALUED = [
    "-t", "-r", "--target", "--runname", "--testpatt", "--host", "--timeout", "--wait-timeout",
    "--rerun", "--grace", "--key-file", "--area", "--publish",
]  # fmt: skip
"""Flags of send that take a value. ``--wait`` and ``--home`` are left out: a wait follows
the run, and a home elsewhere is waited for (both are tested on their own elsewhere)."""
SWITCHES = [
    "--rerun-all", "--preclean", "--keep-records", "--remove", "--restore", "--json", "-x", "--",
    "-", "--testpatt=", "-tlinux", "-h",
]  # fmt: skip
"""Flags without a value, some that send does not have, and odd tokens."""
ODD = [
    "", " ", "..", "../..", "/", "/etc", "/etc/passwd", "%", "%/..", "../%", "a/../../b", "~",
    ",", ",,", "~%", "%,~build", "build/%", "linux", "linux/x86/extra", TARGET, "nightly",
    "-1", "0", "nan", "inf", "1e309", "FAIL,ABORT", "fail", "x" * 5000, "ü/ß", "名前", "\t",
    "a\nb", "--", "-t", "\x7f", "\u202e", "\ufffd",
]  # fmt: skip
value = st.one_of(
    st.sampled_from(ODD),
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30),
)


def _argv(kind: str, where: list[str], pairs: list[tuple[str, str]], rest: list[str]) -> list[str]:
    return [*([kind] if kind else []), *where, *(word for pair in pairs for word in pair), *rest]


command_line = st.builds(
    _argv,
    st.sampled_from(["run", "kill", "rerunclean", "clean", "archive", "", "RUN", "shell"]),
    st.sampled_from([["-t", TARGET, "-r", "nightly"]] * 4 + [["-t", TARGET], []]),
    st.lists(st.tuples(st.sampled_from(VALUED), value), max_size=4),
    st.lists(st.sampled_from(SWITCHES) | value, max_size=2),
)
CODES: collections.Counter[int] = collections.Counter()
"""Exit codes seen, for the summary."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One home for every example; ``mtpkt send`` finds it through MT_RUN_AREA_HOME."""
    root = tmp_path_factory.mktemp("send-args")
    (root / "logs").mkdir()
    farm = Farm(make_area(root / "area"), root / "logs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MT_RUN_AREA_HOME", str(farm.area))
        patch.chdir(farm.area)
        try:
            farm.start_home()
            yield farm.area
        finally:
            codes = ", ".join(f"{count} x {code}" for code, count in sorted(CODES.items()))
            SUMMARY.append(f"mtpkt send: {CODES.total()} random command lines; exit codes {codes}")
            farm.stop_all()
            assert "Traceback" not in farm.log("home"), farm.log("home")


def send(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["send", *argv])
    except SystemExit as exc:  # argparse's own exits: --help, and nothing else
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(120)
@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=command_line)
@example(argv=["run", "-t", TARGET, "-r", "nightly", "a\nb"])  # echoed: two lines, once
@example(argv=["kill", "-t", TARGET, "-r", "night\nly", "--testpatt", "/etc/%"])
def test_any_command_line_ends_with_a_documented_code_and_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = send(argv, capsys)
    CODES[code] += 1
    assert code in set(ExitCode), (argv, code, err)
    assert "Traceback" not in err + out, argv
    if code == ExitCode.OK:
        if "-h" not in argv and "--help" not in argv:
            assert len(bytes.fromhex(out.split()[0])) == 16, (argv, out)
        return
    assert err.endswith("\n"), (argv, err)
    assert err.count("\n") == 1, (argv, err)  # one line, whatever the arguments held
    assert err.startswith("mtpkt send"), (argv, err)
