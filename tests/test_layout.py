"""The distribution's shape: import packages, typing markers, and the README's commands."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ["pkts", "pkts.control", "pkts.status", "bus", "agents", "store", "tools"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_imports_and_ships_py_typed(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").exists()


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


def test_changelog_has_an_unreleased_section() -> None:
    assert re.search(r"^## \[Unreleased\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)


def test_readme_tour_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = (ROOT / "README.md").read_text().split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == "run ubuntu/x86_64 nightly\n"
