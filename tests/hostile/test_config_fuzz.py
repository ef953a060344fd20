"""The Megatest config reader under generated areas of several files that include each other.

Lines are drawn from the syntax itself: sections, ``key value`` lines,
continuations, ``[include …]`` of files that include back (loops), of missing
files and of paths out of the area, ``#{getenv …}``, ``#{get …}``, ``#{rget …}``,
``#{scheme …}``, and ``#{shell …}`` / ``[system …]`` with a few fixed, harmless
commands only (generated text never holds ``#``, ``[``, ``{`` or ``$``, so it
cannot make a command of its own). The reader returns a config or raises its
one error with a line; reading every value does the same; nothing hangs.
"""

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtpkt.agents.area.config import Config, ConfigError, read_config
from tests.support.frames import SUMMARY

EXAMPLES = 300
FILES = ["megatest.config", "a.config", "sub/b.config"]
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/ann", "INC": "a.config", "LOOP": "megatest.config"}
COMMANDS = ["echo hi", "true", "exit 3", "printf %s x", "echo", "false"]
"""The only commands a generated file may run (through ``#{shell}`` and ``[system]``)."""

plain = st.text(
    st.characters(exclude_characters="#[]{}$\\\n\r\x00", exclude_categories=["Cs"]), max_size=12
)
name = st.sampled_from(["setup", "fields", "default", "a", "b", "x/y", "", "include", "%"]) | plain
expansion = st.one_of(
    st.builds("#{{getenv {}}}".format, st.sampled_from([*ENV, "NOPE", ""])),
    st.builds("#{{get {} {}}}".format, name, name),
    st.builds("#{{rget {}}}".format, name),
    st.builds("#{{shell {}}}".format, st.sampled_from(COMMANDS)),
    st.just("#{scheme (+ 1 2)}"),
    st.sampled_from(["$HOME", "${HOME}", "#{", "}", "#{getenv", "#{nosuch x}", "#{}"]),
)
value = st.lists(plain | expansion, max_size=4).map(" ".join)
include = st.sampled_from(
    [
        *FILES, "../megatest.config", "missing.config", "/nonexistent/x.config", "sub",
        "#{getenv INC}", "#{getenv LOOP}", "#{getenv NOPE}", "", "sub/../a.config",
    ]
).map("[include {}]".format)  # fmt: skip
line = st.one_of(
    name.map("[{}]".format),
    include,
    st.builds("{} {}".format, name.filter(bool), value),
    st.builds("{} [system {}]".format, name.filter(bool), st.sampled_from(COMMANDS)),
    value.map("  {}".format),  # an indented continuation
    value.map("{} \\".format),  # a backslash continuation
    st.sampled_from(["# a comment #{shell echo no}", "", "[", "]", "[setup", "key"]),
)
area = st.fixed_dictionaries({file: st.lists(line, max_size=12).map("\n".join) for file in FILES})
TRIED = [0]
T = TypeVar("T")


def outcome(call: Callable[[], T]) -> T | str:
    """What ``call`` returns, or the line of the ConfigError it raises (checked to be one)."""
    try:
        return call()
    except ConfigError as exc:
        error = str(exc)
    assert error
    assert "\n" not in error
    return error


def read_all(config: Config) -> None:
    """Every value computed: a string, or a ConfigError of one line."""
    for section in config.sections:
        for key in config.keys(section):
            assert isinstance(outcome(lambda: config.get(section, key, env=ENV)), str)  # noqa: B023


@pytest.mark.timeout(120)
@settings(max_examples=EXAMPLES)
@given(area)
def test_generated_areas_read_or_fail_in_one_line(files: dict[str, str]) -> None:
    TRIED[0] += 1
    if TRIED[0] == EXAMPLES:
        SUMMARY.append(f"config reader: {EXAMPLES} generated areas of {len(FILES)} files each")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "area"
        for file, text in files.items():
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            (root / file).write_text(text + "\n")
        read = outcome(lambda: read_config(root / "megatest.config", env=ENV))
        if not isinstance(read, str):
            read_all(read[0])
