"""``mtpkt completion bash|zsh``: the printed script, loaded into the real shell, completes
commands, ``send``'s kinds and options (issue 21)."""

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_mtpkt
from tests.support.components import need

pytestmark = pytest.mark.timeout(60)

KINDS = ["run", "kill", "rerunclean", "clean", "archive"]

BASH = r"""
source "$1"
shift
# As bash calls a completion function: the words, the word completed, the one before it.
complete_words() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
  _shtab_mtpkt mtpkt "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}"
}
complete_words "$@"
"""

ZSH = r"""
# An interactive zsh on a pseudo-terminal: each line typed with a TAB, then run by a
# function mtpkt that prints its arguments; what the TAB made of the line is printed.
zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z "PROMPT='READY> '; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D;\
 mtpkt() { print -r -- \"<<\$*>>\" }"
zpty -r z out '*READY> *'
zpty -r z out '*READY> *'
shift
for words in "$@"; do
  zpty -n -w z "$words"$'\t\n'
  zpty -r z out '*<<*>>*READY> *'
  print -r -- "${${out##*<<}%%>>*}"
done
zpty -d z
"""


def script(shell: str, tmp_path: Path) -> Path:
    """The script ``mtpkt completion SHELL`` prints, saved as its install lines say."""
    printed = run_mtpkt("completion", shell)
    assert printed.returncode == 0, printed.stderr
    path = tmp_path / shell / ("_mtpkt" if shell == "zsh" else "mtpkt")
    path.parent.mkdir()
    path.write_text(printed.stdout)
    return path


def bash_completes(path: Path, *words: str) -> list[str]:
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH, "bash", str(path), "mtpkt", *words],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stderr == ""
    return done.stdout.split()


def test_bash_completes_commands_kinds_options_and_choices(tmp_path: Path) -> None:
    path = script("bash", tmp_path)
    assert bash_completes(path, "se") == ["send"]
    assert bash_completes(path, "send", "") == KINDS
    assert bash_completes(path, "home", "--lo") == ["--log-file"]
    assert bash_completes(path, "log", "--fo") == ["--follow"]
    assert bash_completes(path, "completion", "") == ["bash", "zsh"]
    (tmp_path / "suites").mkdir()
    assert bash_completes(path, "tests", "--area", str(tmp_path / "su")) == [
        str(tmp_path / "suites")
    ]


def test_zsh_completes_commands_kinds_and_options(tmp_path: Path) -> None:
    need({"zsh": "zsh"})  # installed as CI does on a fresh machine
    path = script("zsh", tmp_path)
    typed = ["mtpkt se", "mtpkt send ru", "mtpkt send k", "mtpkt send ar", "mtpkt home --lo"]
    done = subprocess.run(
        ["zsh", "-f", "-c", ZSH, "zsh", str(path.parent), *typed],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines() == [
        "send", "send run", "send kill", "send archive", "home --log-file"
    ]  # fmt: skip


def test_an_unknown_shell_is_one_line() -> None:
    refused = run_mtpkt("completion", "fish")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "invalid choice: 'fish'" in refused.stderr


def test_the_install_lines_are_in_the_help() -> None:
    shown = run_mtpkt("completion", "--help")
    assert shown.returncode == 0
    text = shown.stdout
    assert "mtpkt completion bash > ~/.local/share/bash-completion/completions/mtpkt" in text
    assert "fpath=(~/.zfunc $fpath)" in text
