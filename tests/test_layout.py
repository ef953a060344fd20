"""The distribution's shape: import packages, typing markers, and the README's commands."""

import importlib
import re
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TOPS = ("pkts", "bus", "agents", "store", "tools")
"""The repository's folders that are installed as ``mtpkt.<name>``."""
PACKAGES = sorted(
    ".".join(("mtpkt", *init.parent.relative_to(ROOT).parts))
    for top in TOPS
    for init in (ROOT / top).rglob("__init__.py")
)
"""Every package of the source tree, by its installed name."""


@pytest.mark.parametrize("name", PACKAGES)
def test_package_imports_and_ships_py_typed(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").exists()


def test_pyproject_lists_every_package_under_mtpkt() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(setuptools["packages"]) == PACKAGES
    assert setuptools["package-dir"] == {f"mtpkt.{top}": top for top in TOPS}


def test_code_imports_mtpkt_by_its_one_installed_name() -> None:
    """``import pkts`` works in a checkout (its root is on sys.path) but not once installed."""
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(TOPS)})\b", re.MULTILINE)
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for folder in (*TOPS, "tests", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        for match in bare.finditer(path.read_text())
    ]
    assert not offenders


def readme_commands() -> list[str]:
    block = (ROOT / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    demo, tests = readme_commands()
    assert demo.endswith("mtpkt demo")
    assert "[test]" in tests
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci


def test_ci_runs_every_benchmark() -> None:
    assert ".ci/benchmarks-smoke" in (ROOT / ".ci" / "run").read_text()
    smoke = (ROOT / ".ci" / "benchmarks-smoke").read_text()
    for path in (ROOT / "benchmarks").glob("*.py"):
        assert f"[{path.name}]=" in smoke, f"{path.name}: no small size in .ci/benchmarks-smoke"


def test_changelog_has_an_unreleased_section() -> None:
    assert re.search(r"^## \[Unreleased\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)


def test_readme_tour_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = (ROOT / "README.md").read_text().split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == "run ubuntu/x86_64 nightly\n"


MODULE_LINES = 500
"""Most lines of a module of the shipped packages: past that, it is doing more than one job."""
COMMAND_LINES = 250
"""Most lines of a command module: a command parses its arguments and calls the packages."""


def test_modules_stay_small_and_commands_thin() -> None:
    too_long = [
        f"{path.relative_to(ROOT)}: {lines} lines (at most {limit})"
        for top in TOPS
        for path in sorted((ROOT / top).rglob("*.py"))
        for lines, limit in [
            (
                len(path.read_text().splitlines()),
                COMMAND_LINES if path.name.endswith("_cmd.py") else MODULE_LINES,
            )
        ]
        if lines > limit
    ]
    assert not too_long


def test_every_command_module_is_named_for_its_command() -> None:
    from mtpkt.tools.cli import COMMANDS

    modules = [command for command in COMMANDS if isinstance(command, types.ModuleType)]
    assert len(modules) == len(COMMANDS)
    assert [m.__name__ for m in modules if not m.__name__.endswith("_cmd")] == []
