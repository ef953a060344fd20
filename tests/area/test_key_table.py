"""docs/area.md's table "Every Megatest config key" covers every section and key Megatest
reads, and answers each with "as Megatest", "different: …" or "refused: …", never "ignored".

The keys are found in Megatest's own source (../shared/megatest-examples/source,
v1.65): every call of ``configf:lookup``, ``configf:lookup-number``,
``config-lookup``, ``configf:get-section`` and ``configf:section-vars``, and
``hash-table-ref/default`` on a config, whose section is a string literal.
Skipped, and why:

* calls in ``;`` comments (launch.scm:1372-1374, db.scm:2190): Megatest never runs them;
* a section computed at run time (``(configf:lookup dat entry-name …)`` over a logpro
  ``.dat`` file, launch.scm:652's ``(configf:get-section rconfig section)`` over the
  target's sections): nothing to name; runconfigs.config's sections are the table's
  ``[<target>]`` row;
* reads of data that is no config file (:data:`NOT_CONFIGS`): a step's logpro ``.dat``
  output, the command line, test data, configf's own settings.

A key computed at run time in a literal section (``(configf:lookup tconfig "triggers"
trigger)``) needs the section's ``(any key)`` row. The keys fullrun's configs set are
checked too, so the table also says what becomes of keys the source files here do not
read (the server's, the dashboard's).
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from mtpkt.agents.area.unapplied import MEGATEST, TESTCONFIG, UNAPPLIED, Unapplied

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = ROOT.parent / "shared" / "megatest-examples"
SOURCE: Final = EXAMPLES / "source"
FULLRUN: Final = EXAMPLES / "tests" / "fullrun"
DOC: Final = ROOT / "docs" / "area.md"
RUNCONFIGS: Final = "runconfigs.config"
ANY_KEY: Final = "(any key)"
ANY_OTHER_KEY: Final = "(any other key)"
ANY_OTHER: Final = "(any other)"

CONFIGS: Final = {
    "*configdat*": MEGATEST,
    "configdat": MEGATEST,  # common:get-launcher's argument: *configdat* (launch.scm:1391)
    "confdat": MEGATEST,  # launch:get-best-disk's: *configdat* (launch.scm:1111-1114)
    "cfgdat": MEGATEST,  # [fields] (common.scm:1048) and [tests-paths] (tests.scm:49)
    "mtconf": MEGATEST,
    "tconfig": TESTCONFIG,
    "testconfig": TESTCONFIG,
    "test-conf": TESTCONFIG,
    "waiton-tconfig": TESTCONFIG,
    "a-config": TESTCONFIG,
    "b-config": TESTCONFIG,
    "config": TESTCONFIG,  # tests:get-waitons' and runs.scm's testconfig …
    "cfgdat-ht": RUNCONFIGS,  # configf:cfgdat->env-alist over runconfigs (launch.scm:652)
    "rconfig": RUNCONFIGS,
}
"""The variables Megatest holds its config files in, and which file each is."""
IN_FILE: Final = {("common.scm", "config"): RUNCONFIGS}
"""… except where the same name holds another: ``runconfigs-get`` (common.scm:965-970)."""
NOT_CONFIGS: Final = {
    "dat": "a step's logpro .dat output (launch.scm:64-70, db.scm:3318-3343)",
    "data": "the file -show-config names on the command line (megatest.scm:960-990)",
    "settings": "configf's own [configf:settings] (configf.scm:182)",
    "refdat": "configf:write-config's reference data (configf.scm:670)",
    "indat": "configf:write-config's data (configf.scm:644)",
    "res": "the config being read, for #{get} (configf.scm:450)",
    "cfdat": "configf:lookup-number's own argument (configf.scm:513)",
    "ht": "Scheme text configf builds for #{get} (configf.scm:114)",
}
"""Variables of config-reading calls that hold no config file of an area."""
READS: Final = re.compile(
    r"\((configf:lookup-number|configf:lookup|config-lookup|configf:get-section"
    r"|configf:section-vars|hash-table-ref/default)\s+"
    r"(?P<var>[^\s()\"]+|\([^()]*\))\s+(?P<section>\"[^\"]*\"|[^\s()\"]+)"
    r"(?:\s+(?P<key>\"[^\"]*\"|[^\s()\"]+))?"
)
LOOKUPS: Final = frozenset(
    {"configf:lookup-number", "configf:lookup", "config-lookup", "configf:get-section"}
    | {"configf:section-vars"}
)


def code_of(text: str) -> str:
    """Scheme text with ``;`` comments blanked (string literals kept, lines kept)."""
    out = []
    for line in text.splitlines():
        in_string = False
        for i, char in enumerate(line):
            if char == '"' and (i == 0 or line[i - 1] != "\\"):
                in_string = not in_string
            elif char == ";" and not in_string:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def source_reads() -> Iterator[tuple[str, str, str, str]]:
    """``(file, section, key, where)`` of each literal-section config read in the source;
    ``key`` is :data:`ANY_KEY` when computed at run time."""
    for path in sorted(SOURCE.glob("*.scm")):
        code = code_of(path.read_text(errors="replace"))
        for match in READS.finditer(code):
            var, section, key = match["var"], match["section"], match["key"]
            where = f"{path.name}:{code.count(chr(10), 0, match.start()) + 1}"
            if var in NOT_CONFIGS or var.startswith("("):
                continue  # no config file (a call such as (read-config …) is commented out)
            if match[1] == "hash-table-ref/default" and var not in CONFIGS:
                continue  # any other hash table
            assert match[1] not in LOOKUPS or var in CONFIGS, f"{where}: what config is {var}?"
            if not section.startswith('"'):
                continue  # a section computed at run time
            config = IN_FILE.get((path.name, var), CONFIGS[var])
            literal = key is not None and key.startswith('"') and match[1] in LOOKUPS
            name = key.strip('"') if literal and key else ANY_KEY
            if match[1] in ("configf:get-section", "configf:section-vars"):
                name = ANY_KEY  # the whole section
            yield config, section.strip('"'), name, where


def tables(text: str) -> Iterator[list[list[str]]]:
    """The markdown tables of a text, each a list of rows of cells (header first)."""
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if re.fullmatch(r"\|[-|: ]+\|", line.strip()):
            continue  # the line under the header
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        elif rows:
            yield rows
            rows = []


def verdict(cell: str) -> str | None:
    """An answer's kind: ``refused``, ``different`` or ``as Megatest``; None for none."""
    text = cell.lower()
    if text.startswith("refused"):
        return "refused"
    if text.startswith("different") or "different:" in text:
        return "different"
    if text.startswith("as megatest"):
        return "as Megatest"
    return None


def names(cell: str) -> list[str]:
    """The backticked names of a cell, or the cell when it has none (``(any key)``)."""
    found = re.findall(r"`([^`]+)`", cell)
    return found or [cell]


Row = tuple[str, str, str]


def complete_table() -> dict[Row, str]:
    """The complete table: ``(file, section, key)`` → the mtpkt cell."""
    (table,) = [t for t in tables(DOC.read_text()) if t[0][:3] == ["file", "section", "key"]]
    rows: dict[Row, str] = {}
    for cells in table[1:]:
        assert len(cells) == 5, cells
        files, sections, keys, _, answer = cells
        for file in files.split(", "):
            for section in names(sections):
                for key in names(keys):
                    row = (file, section.strip("[]") if section != ANY_OTHER else section, key)
                    assert row not in rows, f"{row} has two rows"
                    rows[row] = answer
    return rows


def detailed_rows() -> Iterator[tuple[str, str | None, str]]:
    """``(section, key or None, mtpkt cell)`` of the other key tables ("section / key")."""
    for table in tables(DOC.read_text()):
        if table[0][0] != "section / key":
            continue
        for cells in table[1:]:
            section = None
            for token in re.findall(r"`([^`]+)`", cells[0]):
                if match := re.match(r"\[([^\]]+)\]\s*(\S*)", token):
                    section = match[1]
                    yield section, match[2] or None, cells[-1]
                elif section is not None:
                    yield section, token.split()[0], cells[-1]


def covered(rows: dict[Row, str], file: str, section: str, key: str) -> bool:
    """Whether the table answers for a key (its own row, or its section's ``(any key)``)."""
    if file == RUNCONFIGS and section != "default":
        section = "<target>"
    return (file, section, key) in rows or (file, section, ANY_KEY) in rows


def test_the_source_is_there() -> None:
    """The reads are found where they are expected (a sanity check of the extraction)."""
    found = {(file, section, key) for file, section, key, _ in source_reads()}
    assert (MEGATEST, "setup", "launch-delay") in found  # launch.scm:1339
    assert (MEGATEST, "jobtools", "flexi-launcher") in found  # common.scm:2324
    assert (TESTCONFIG, "triggers", ANY_KEY) in found  # mt.scm:212
    assert (TESTCONFIG, "subrun", "runwait") in found  # launch.scm:327
    assert (RUNCONFIGS, "default", ANY_KEY) in found  # common.scm:969
    assert (TESTCONFIG, "requirements", "diskspace") not in found  # commented out
    assert len(found) > 80


def test_every_key_megatest_reads_has_a_row() -> None:
    rows = complete_table()
    missing = [
        f"{where}: {file} [{section}] {key}"
        for file, section, key, where in source_reads()
        if not covered(rows, file, section, key)
    ]
    assert not missing, "\n".join(missing)


def fullrun_keys() -> Iterator[tuple[str, str, str]]:
    """``(file, section, key)`` set by fullrun's megatest.config (with its includes) and
    testconfigs, read simply: bracket lines start sections, the first word of an
    unindented line is a key; continued lines and includes are passed over."""
    files = [(MEGATEST, FULLRUN / "megatest.config")]
    files += [(MEGATEST, path) for path in sorted(FULLRUN.glob("configs/mt_include_*.config"))]
    files += [(TESTCONFIG, path) for path in sorted(FULLRUN.glob("tests/*/testconfig"))]
    for file, path in files:
        section, continued = "default", False
        for line in path.read_text(errors="replace").splitlines():
            was_continued, continued = continued, line.rstrip().endswith("\\")
            stripped = line.strip()
            if was_continued or not stripped or line[0] in " \t":
                continue
            if stripped.startswith("#") and not stripped.startswith("#{"):
                continue
            if match := re.fullmatch(r"\[([^\]\s]+)\]", stripped):
                section = match[1]
            elif not stripped.startswith("["):
                yield file, section, stripped.split()[0]


def test_every_key_fullrun_sets_has_a_row() -> None:
    """A key of a section the table lists needs its row (or the section's ``(any key)``,
    or ``(any other key)``); a section it does not list, the ``(any other)`` row."""
    rows = complete_table()
    listed = {(file, section) for file, section, _ in rows}
    missing = []
    for file, section, key in fullrun_keys():
        if (file, section) not in listed:
            ok = (file, ANY_OTHER, ANY_KEY) in rows
        else:
            ok = covered(rows, file, section, key) or (file, section, ANY_OTHER_KEY) in rows
        if not ok:
            missing.append(f"{file} [{section}] {key}")
    assert not missing, "\n".join(sorted(set(missing)))


def test_every_row_answers_and_none_says_ignored() -> None:
    """Each answer is one of the three, in the complete table and in the others."""
    answers = [*complete_table().values(), *(cell for _, _, cell in detailed_rows())]
    for answer in answers:
        assert verdict(answer), answer
        assert "ignored" not in answer.lower(), answer
        assert "read but" not in answer.lower(), answer


def test_a_key_in_two_tables_has_one_answer() -> None:
    """Where another table details a key, the complete table gives the same kind of answer."""
    rows = complete_table()
    by_key: dict[tuple[str, str], set[str | None]] = {}
    for section, key, cell in detailed_rows():
        by_key.setdefault((section, key or ANY_KEY), set()).add(verdict(cell))
    compared = 0
    for (_, section, key), answer in rows.items():
        if (section, key) in by_key:
            compared += 1
            assert verdict(answer) in by_key[(section, key)], (section, key, answer)
    assert compared > 30


@pytest.mark.parametrize("rule", UNAPPLIED, ids=lambda r: f"{r.section}-{r.key}")
def test_each_key_of_the_warning_line_says_so_in_its_row(rule: Unapplied) -> None:
    """The table names the keys agents/area/unapplied.py warns about as warned about."""
    answer = complete_table()[(rule.file, rule.section, rule.key or ANY_KEY)]
    assert answer.startswith("different:"), answer
    assert "warning line" in answer, answer
