"""The Megatest config reader: syntax, expansions, errors with file and line, properties."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtpkt.agents.area.config import (
    Config,
    ConfigError,
    Deferred,
    Entry,
    format_config,
    read_config,
)
from mtpkt.agents.area.scheme import RunArgs, SchemeContext

ENV = {"PATH": os.environ["PATH"], "HOME": "/home/ann", "USER": "ann"}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read(path: Path, **kwargs: object) -> Config:
    config, _ = read_config(path, env=kwargs.pop("env", ENV), **kwargs)  # type: ignore[arg-type]
    return config


def test_sections_keys_and_values(tmp_path: Path) -> None:
    config = read(
        write(
            tmp_path,
            "a.config",
            "top before any section\n"
            "[fields]\nsysname TEXT\n  # indented comment\n\n"
            "[setup]\nlinktree   /x/y z  \nempty\nempty2   \n"
            "[setup]\nmax 4\nlinktree /again\n",
        )
    )
    assert config.get("default", "top") == "before any section"
    assert config.keys("setup") == ["empty", "empty2", "max", "linktree"]
    assert config.get("setup", "linktree") == "/again"  # later wins, and moves to the end
    assert config.get("setup", "empty") == ""
    assert config.get("setup", "empty2") == ""
    assert config.get("setup", "missing", "dflt") == "dflt"
    entry = config.entry("setup", "max")
    assert entry is not None
    assert (entry.value, entry.origin.line) == ("4", 11)


def test_backslash_joins_lines_and_indent_continues_values(tmp_path: Path) -> None:
    config = read(
        write(
            tmp_path,
            "a.config",
            "[x]\nlist a b \\\n   c d\ndesc first\n  second\n    indented\n  third\nafter value\n",
        )
    )
    assert config.get("x", "list") == "a b    c d"
    assert config.get("x", "desc") == "first\nsecond\n  indented\nthird"
    assert config.get("x", "after") == "value"
    assert config.entry("x", "after").origin.line == 8  # type: ignore[union-attr]


def test_includes_relative_to_the_including_file_with_getenv(tmp_path: Path) -> None:
    write(tmp_path, "configs/nfs.config", "[setup]\nfrom_include yes\n[other]\nk v\n")
    main = write(
        tmp_path,
        "main.config",
        "[setup]\n[include configs/#{getenv FS}.config]\nafter include\n"
        "[include configs/#{getenv MISSING}.config]\n",
    )
    config = read(main, env={**ENV, "FS": "nfs"})
    assert config.get("setup", "from_include") == "yes"
    assert config.get("other", "k") == "v"
    assert config.get("setup", "after") == "include"  # back in the includer's section
    assert any("not found, skipped" in note for note in config.notes)
    assert config.entry("other", "k").origin.path.endswith("configs/nfs.config")  # type: ignore[union-attr]


def test_get_getenv_rget_shell_system_expansions(tmp_path: Path) -> None:
    config = read(
        write(
            tmp_path,
            "runconfigs.config",
            "[default]\nBASE /data\nVAR default-value\n"
            "[ubuntu/x86]\nVAR target-value\n"
            "[default]\n"
            "A #{get default BASE}/sub\n"
            "B #{getenv USER}-#{getenv NOPE}\n"
            "C #{rget VAR}\n"
            "D #{shell printf 'one\\ntwo\\n'}\n"
            "E #{system exit 3}\n"
            "F #{get default #{getenv KEY}}\n",
        ),
        env={**ENV, "KEY": "BASE"},
        target="ubuntu/x86",
    )
    assert config.get("default", "A") == "/data/sub"
    assert config.get("default", "B") == "ann-"
    assert config.get("default", "C") == "target-value"
    assert config.get("default", "D") == "one two"
    assert config.get("default", "E") == "3"
    assert config.get("default", "F") == "/data"  # the inner #{...} first
    assert any("NOPE is not set" in note for note in config.notes)


def test_env_sections_expand_dollar_vars_and_set_the_environment(tmp_path: Path) -> None:
    config, env = read_config(
        write(
            tmp_path,
            "r.config",
            "[default]\nROOT /r\nSUB $ROOT/sub\nBRACED ${ROOT}x\nUNSET $NOPE/x\n!HIDDEN secret\n"
            "[plain]\nLITERAL $ROOT\nUSE #{getenv SUB}\n",
        ),
        env=ENV,
        env_section=lambda section: section == "default",
    )
    assert config.get("default", "SUB") == "/r/sub"
    assert config.get("default", "BRACED") == "/rx"
    assert config.get("default", "UNSET") == "/x"
    assert config.get("plain", "LITERAL") == "$ROOT"  # not an environment section
    assert config.get("plain", "USE") == "/r/sub"
    assert env["SUB"] == "/r/sub"
    assert "!HIDDEN" not in env


def test_wildcard_sections_apply_to_matching_sections_in_order(tmp_path: Path) -> None:
    config = read(
        write(
            tmp_path,
            "r.config",
            "[ubuntu/nfs/none]\nA explicit\nB explicit\n"
            "[ubuntu/%/none]\nA wildcard\n"
            "[ubuntu/nfs/none]\nB later\n"
            "[/^cent.*/]\nC regex\n",
        ),
        sections=("centos/x/y",),
    )
    assert config.get("ubuntu/nfs/none", "A") == "wildcard"
    assert config.get("ubuntu/nfs/none", "B") == "later"
    assert config.get("centos/x/y", "C") == "regex"
    assert not config.has("ubuntu/%/none")


def test_system_values_are_deferred_until_read(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = read(write(tmp_path, "t.config", f"[items]\nX [system touch {marker}; echo a b]\n"))
    entry = config.entry("items", "X")
    assert entry is not None
    assert entry.value == Deferred(f"touch {marker}; echo a b")
    assert not marker.exists()
    assert config.get("items", "X", cwd=tmp_path) == "a b"
    assert marker.exists()


def test_a_failing_system_value_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.config", "[items]\n\nX [system echo oops >&2; exit 4]\n")
    with pytest.raises(ConfigError, match=r"t\.config:3: \[system .*\] exited with 4: oops"):
        read(path).get("items", "X")


def test_scheme_is_evaluated_where_it_stands(tmp_path: Path) -> None:
    """``#{scheme}`` is replaced by its value as Megatest's ``conc`` writes it
    (configf.scm lines 100, 130 and 138); a later ``#{get}`` sees the value."""
    path = write(
        tmp_path,
        "m.config",
        '[setup]\nsum #{scheme (+ 1 2)}\ncopy #{get setup sum}/x\nyes #{scm (string? "a")}\n',
    )
    config = read(path)
    assert config.get("setup", "sum") == "3"
    assert config.get("setup", "copy") == "3/x"
    assert config.get("setup", "yes") == "#t"


def test_scheme_that_fails_without_a_run_fails_only_when_needed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.config",
        "[setup]\nplain ok\nlazy #{scheme (frob 1 2)}\ncopy #{get setup lazy}/x\n",
    )
    config = read(path)
    assert config.get("setup", "plain") == "ok"
    assert config.failed_uses()[0].line == 3
    with pytest.raises(ConfigError, match=rf"^{path}:3: #\{{scheme\}}: unknown name 'frob'"):
        config.get("setup", "lazy")
    with pytest.raises(ConfigError, match=rf"^{path}:3: .*\(used at {path}:4\)"):
        config.get("setup", "copy")


def test_scheme_that_fails_in_a_run_fails_the_read(tmp_path: Path) -> None:
    path = write(tmp_path, "m.config", "[setup]\nplain ok\nbad #{scheme (car '())}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: #\{{scheme\}}: car of the empty list"):
        read(path, scheme=SchemeContext(args=RunArgs("a/b", "r1")))


def test_scheme_in_a_section_header_or_include_fails_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "m.config", "[a]\nk v\n[include #{scheme (foo)}.config]\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: #\{{scheme\}}: unknown name 'foo'"):
        read(path)


def test_a_line_that_expands_to_a_comment_or_nothing_is_one(tmp_path: Path) -> None:
    """configf.scm matches comments and blank lines after expanding the line
    (configf:read-line, line 161, before the regex-case of line 304)."""
    path = write(
        tmp_path,
        "m.config",
        "[a]\n#{scheme (if #f #f)}\n#{getenv NOT_SET_AT_ALL}\nk v\n  #{scheme #f}\n",
    )
    config = read(path)
    assert config.keys("a") == ["k"]
    assert config.get("a", "k") == "v"


def test_comments_are_expanded_for_their_effects_as_in_megatest(tmp_path: Path) -> None:
    """Megatest expands every line before it tells what the line is, comments too
    (configf.scm:161-183, 284-307): fullrun's runconfigs.config:12 writes a config file
    from a comment, and includes it on the next line."""
    marker = tmp_path / "made.config"
    text = (
        f"# #{{system echo 'MADE #{{shell echo yes}}' > {marker}}}\n"
        "[include made.config]\n"
        "# #{scheme (nothing)} #{shell exit 3} #{get nosuch key}\n"
        "[a]\nk v\n"
    )
    config = read(write(tmp_path, "m.config", text))
    assert config.get("default", "MADE") == "yes"  # written by the comment, then included
    assert config.get("a", "k") == "v"
    # A comment's failure is a note, as Megatest only warns; nothing in it is ever an error.
    assert [note.split(": ", 1)[1] for note in config.notes] == [
        "#{shell exit 3} exited with 3 (in a comment, which is otherwise ignored)"
    ]
    assert config.failed_uses() == []


def test_trim_trailing_spaces_setting(tmp_path: Path) -> None:
    config = read(
        write(
            tmp_path,
            "m.config",
            "[a]\nk1 v   \n[configf:settings trim-trailing-spaces yes]\nk2 v   \n",
        )
    )
    assert config.get("a", "k1") == "v   "
    assert config.get("a", "k2") == "v"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[a]\nk v\n\xff\xfe bad\n", r":3: not UTF-8 text"),
        (b"[a]\nk \x00v\n", r":2: contains a NUL byte"),
        (b"[a]\nk #{get onlyone}\n", r":2: #\{get onlyone\} needs a section and a key"),
        (b"[a]\nk #{shell exit 7}\n", r":2: #\{shell exit 7\} exited with 7"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.config"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"^{path}{message}"):
        read(path)


def test_an_include_loop_is_an_error_at_the_include_line(tmp_path: Path) -> None:
    path = write(tmp_path, "loop.config", "[a]\n[include loop.config]\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: includes nested over 32 deep"):
        read(path)


@pytest.mark.parametrize("line", ["[ezsteps", "[include nosuch.config", "[linux/x86 "])
def test_a_section_header_without_its_bracket_is_an_error(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, "t.config", f"[a]\nk v\n{line}\nstep echo\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: .* section header without '\]'"):
        read(path)


def test_commands_can_be_switched_off(tmp_path: Path) -> None:
    path = write(tmp_path, "m.config", "[a]\nk #{shell echo hi}\n")
    with pytest.raises(ConfigError, match=r":2: commands are not allowed here"):
        read(path, allow_commands=False)


# -- properties ------------------------------------------------------------------------

_word = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="\r\n\x00\\#[]{}%", exclude_categories=["Z", "C"]
    ),
    min_size=1,
    max_size=12,
)
_line = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_characters="\r\n\x00\\#{}", exclude_categories=["C"]
        ),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(lambda s: bool(s) and not s.startswith("["))
)
_value = st.lists(_line, max_size=3).map("\n".join)
_section = _word.filter(lambda s: not s.startswith(("include", "scriptinc", "configf:", "/")))
_sections = st.dictionaries(
    _section, st.dictionaries(_word.filter(lambda s: s[0] != "["), _value, max_size=5), max_size=5
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_sections)
def test_round_trip_of_generated_sections(
    tmp_path: Path, sections: dict[str, dict[str, str]]
) -> None:
    config = Config(path="generated")
    for name, keys in sections.items():
        config.sections[name] = {key: Entry(value, None) for key, value in keys.items()}  # type: ignore[arg-type]
    path = tmp_path / "generated.config"
    path.write_text(format_config(config))
    back = read(path, allow_commands=False)
    assert {name: dict(back.items(name)) for name in back.sections if back.sections[name]} == {
        name: keys for name, keys in sections.items() if keys
    }


@settings(max_examples=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_no_input_crashes_the_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.config"
    path.write_bytes(data)
    failure = None
    try:
        config = read(path, allow_commands=False)
    except ConfigError as exc:
        failure = str(exc)
    if failure is not None:
        assert "\n" not in failure
        return
    problems = []
    for section in config.sections:
        for key in config.keys(section):
            entry = config.entry(section, key)
            assert entry is not None
            if isinstance(entry.value, str):
                try:
                    config.get(section, key)
                except ConfigError as exc:
                    problems.append(str(exc))
    assert all("#{scheme" in problem or "#{scm" in problem for problem in problems)
