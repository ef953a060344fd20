"""The logpro engine: each rule kind and each exit code, from small rule files and logs.

logpro's source is not public: the rule language is what Megatest's .logpro files
(../shared/megatest-examples) use, its codes what launch.scm:198-206 maps (0 PASS,
1 FAIL, 2 WARN, 3 CHECK, 4 WAIVED, 5 ABORT, 6 SKIP), and each decision taken where
they leave it open is in docs/logpro.md and the engine's docstring.
"""

import pytest

from mtpkt.agents.area.logpro import Code, judge, read_rules
from mtpkt.agents.area.scheme import SchemeError


def verdict(rules: str, log: str) -> Code:
    """The code of ``rules`` over ``log``."""
    return judge(read_rules(rules, "t.logpro"), log.splitlines()).code


@pytest.mark.parametrize(
    ("rules", "log", "code"),
    [
        # required: count compared; a miss is FAIL (logpro_required_fail/testconfig)
        ('(expect:required in "LogFileBody" > 0 "r" #/here/)', "a\nhere\n", Code.PASS),
        ('(expect:required in "LogFileBody" > 0 "r" #/here/)', "a\nb\n", Code.FAIL),
        ('(expect:required in "LogFileBody" = 2 "r" #/x/)', "x\nx\nx\n", Code.FAIL),
        ('(expect:required in "LogFileBody" >= 2 "r" #/x/)', "x\nx\nx\n", Code.PASS),
        # error and warning: = 0 allows none (ezlog_fail/lookittmp.logpro)
        ('(expect:error in "LogFileBody" = 0 "e" #/ERROR/)', "ok\n", Code.PASS),
        ('(expect:error in "LogFileBody" = 0 "e" #/ERROR/)', "ERROR x\n", Code.FAIL),
        ('(expect:warning in "LogFileBody" = 0 "w" #/WARN/)', "WARN x\n", Code.WARN),
        ('(expect:warning in "LogFileBody" = 1 "w" #/WARN/)', "WARN x\n", Code.PASS),
        # the other codes: waive (4), check (3), abort (5), skip (6)
        ('(expect:waive in "LogFileBody" = 0 "k" #/known/)', "known bad\n", Code.WAIVED),
        ('(expect:check in "LogFileBody" = 0 "c" #/look/)', "look at me\n", Code.CHECK),
        ('(expect:abort in "LogFileBody" = 0 "a" #/fatal/)', "fatal\n", Code.ABORT),
        ('(expect:skip in "LogFileBody" = 0 "s" #/SKIPPED/)', "SKIPPED\n", Code.SKIP),
        # ignore: never a code of its own, even when its count misses
        ('(expect:ignore in "LogFileBody" < 1 "i" #/x/)', "x\nx\n", Code.PASS),
        # a file of comments declares nothing: PASS (fullrun's wasting_time.logpro)
        (";; nothing here\n", "anything\n", Code.PASS),
    ],
)
def test_each_kind_gives_its_code(rules: str, log: str, code: Code) -> None:
    """Each kind's miss gives its code; launch.scm:198-206 names the codes."""
    assert verdict(rules, log) is code


def test_ignore_hides_lines_from_errors() -> None:
    """An ignore claims a line before the errors (ezlog_pass/lookittmp.logpro: "Ignore
    the word error in comments")."""
    rules = """
        (expect:ignore in "LogFileBody" < 99 "comments" #/^\\/\\/.*error/)
        (expect:error  in "LogFileBody" = 0 "Any error" (list #/ERROR/ #/error/))"""
    assert verdict(rules, "// an error in a comment\n") is Code.PASS
    assert verdict(rules, "an error\n") is Code.FAIL


def test_required_masks_warnings_whatever_the_file_order() -> None:
    """ezlog_warn/lookittmp.logpro: "Can't have a required since it will mask the warns"
    — the required written after the warning still claims the line first."""
    warning = '(expect:warning in "LogFileBody" = 0 "Any warning" #/.*/)\n'
    required = '(expect:required in "LogFileBody" > 0 "Must be some files" #/.*/)\n'
    assert verdict(warning + required, "file1\nfile2\n") is Code.PASS
    assert verdict(warning, "file1\n") is Code.WARN


def test_waive_claims_before_error() -> None:
    """A waived line is not an error: WAIVED, not FAIL."""
    rules = """
        (expect:error in "LogFileBody" = 0 "errors" #/ERROR/)
        (expect:waive in "LogFileBody" = 0 "known" #/ERROR: known/)"""
    assert verdict(rules, "ERROR: known thing\n") is Code.WAIVED
    assert verdict(rules, "ERROR: known thing\nERROR: new\n") is Code.FAIL


def test_worst_code_wins_in_megatest_status_order() -> None:
    """common.scm:538-551 orders PASS < SKIP < WARN < WAIVED < CHECK < FAIL < ABORT."""
    kinds = ["skip", "warning", "waive", "check", "error", "abort"]
    rules = "\n".join(f'(expect:{k} in "LogFileBody" = 0 "{k}" #/{k}-line/)' for k in kinds)
    expected = [Code.SKIP, Code.WARN, Code.WAIVED, Code.CHECK, Code.FAIL, Code.ABORT]
    for upto, code in enumerate(expected, start=1):
        log = "\n".join(f"{k}-line" for k in kinds[:upto])
        assert verdict(rules, log) is code


def test_sections_open_and_close_on_triggers() -> None:
    """example.logpro's Init section: opened by its trigger's line, closed after the
    end trigger's line; an undeclared end trigger never closes ("EndBody")."""
    rules = """
        (trigger "Init"    #/This is a header/)
        (trigger "InitEnd" #/^\\s*$/)
        (section "Init" "Init" "InitEnd")
        (trigger "Body" #/^begin/)
        (section "Body" "Body" "EndBody")
        (expect:required in "Init" = 1 "Header" #/header/)
        (expect:error in "Init" = 0 "no x in Init" #/x/)
        (expect:error in "Body" = 0 "no y in Body" #/y/)"""
    assert verdict(rules, "This is a header\nok\n\nx y\n") is Code.PASS
    assert verdict(rules, "This is a header\nx\n\n") is Code.FAIL
    assert verdict(rules, "a header before\nThis is a header\n") is Code.PASS
    assert verdict(rules, "begin\n\n\ny\n") is Code.FAIL
    assert verdict(rules, "This is a header\n\nheader\n") is Code.PASS  # closed: not counted


def test_undeclared_section_sees_nothing() -> None:
    """ezlog_fail/waiver_1.logpro names section "Body" without declaring it."""
    assert verdict('(expect:warning in "Body" = 0 "w" #/WARNING/)', "WARNING\n") is Code.PASS


@pytest.mark.parametrize(
    ("rule", "log", "code"),
    [
        ('1.9 0.1 "v" #/volts: ([\\d.]+)/', "volts: 1.85\n", Code.PASS),
        ('1.9 0.1 "v" #/volts: ([\\d.]+)/', "volts: 2.5\n", Code.FAIL),
        ('1.9 > "v" #/out: (\\d+)\\s+(\\d+)/ match: 2', "out: 1 3\n", Code.PASS),
        ('1.9 > "v" #/out: (\\d+)\\s+(\\d+)/ match: 2', "out: 3 1\n", Code.FAIL),
        ('1.9 <= "v" #/out: (\\d+)\\s+(\\d+)/ match: 1', "out: 1 3\n", Code.PASS),
        ('1.9 0.1 "v" #/volts: (\\S+)/', "volts: high\n", Code.FAIL),  # no number
        ('10 0.1 "v" #/volts: (\\S+)/', "volts: 1_0\n", Code.FAIL),  # no decimal number
        ('1.9 0.1 "v" #/volts: (\\S+)/', "no value\n", Code.PASS),  # never measured
        ('110e9 2e9 "f" #/Freq:\\s*([\\d\\.\\+\\-e]+)\\s+Hz/', "Freq: 111e9 Hz\n", Code.PASS),
    ],
)
def test_value_rules(rule: str, log: str, code: Code) -> None:
    """expect:value with a tolerance or a comparison (measured OP expected, as
    db.scm:3411-3420 compares test data) and match: N (example.logpro)."""
    assert verdict(f'(expect:value in "LogFileBody" {rule})', log) is code


def test_rules_from_define_lambda_for_each_apply_conc_regexp() -> None:
    """release/tests/fullrun/results.logpro declares its rules through a procedure."""
    rules = """
        (define logbody "LogFileBody")
        (define specs '(("a" 1 20) ("b" 2 20)))
        (define (check estatus testname count runtime)
          (let* ((rxe (regexp (conc "^Test: " testname "\\\\s+Status: " estatus))))
            (expect:required in logbody = count (conc testname " count") rxe)))
        (for-each (lambda (spec) (apply check "PASS" spec)) specs)
        (expect:error in logbody = 0 "Tests not accounted for" #/Test: /)"""
    good = "Test: a Status: PASS\nTest: b Status: PASS\nTest: b Status: PASS\n"
    assert verdict(rules, good) is Code.PASS
    assert verdict(rules, good + "Test: c Status: PASS\n") is Code.FAIL
    assert verdict(rules, good.replace("a Status: PASS", "a Status: FAIL")) is Code.FAIL


def test_regex_flags_and_escaped_slash() -> None:
    """all_toplevel/testconfig writes #/error/i; a slash inside is written \\/."""
    assert verdict('(expect:error in "LogFileBody" = 0 "e" #/error/i)', "ERROR\n") is Code.FAIL
    assert verdict('(expect:error in "LogFileBody" = 0 "e" #/a\\/b/)', "a/b\n") is Code.FAIL


def test_hooks_are_kept_not_run() -> None:
    """example.logpro's hooks run shell commands: read and kept, never run."""
    rules = read_rules('(hook:first-error "touch /tmp/never")', "t.logpro")
    assert rules.hooks == (("hook:first-error", "touch /tmp/never"),)


@pytest.mark.parametrize(
    ("rules", "line", "words"),
    [
        ('(expect:required "LogFileBody" > 0 "r" #/x/)', 1, "takes 6"),
        ('\n(expect:required on "LogFileBody" > 0 "r" #/x/)', 2, "unknown name"),
        ('(expect:required in "LogFileBody" ~ 0 "r" #/x/)', 1, "unknown name"),
        ('(expect:required in "LogFileBody" + 0 "r" #/x/)', 1, "needs a comparison"),
        ('(expect:required in "LogFileBody" > 0 "r" "x")', 1, "needs a regex"),
        ('\n\n(expect:error in "LogFileBody" = 0 "e" #/(/)', 3, "bad regex"),
        ('(expect:error in "LogFileBody" = 0 "e" #/x/q)', 1, "unknown regex flag"),
        ('(expect:error in "LogFileBody" = 0 "e" #/x)', 1, "regex never closed"),
        ('(expect:fail in "LogFileBody" = 0 "e" #/x/)', 1, "unknown name"),
        ('(expect:value in "LogFileBody" 1 0.1 "v" #/x/ match: "a")', 1, "group number"),
        ('(trigger "a" #/x/)\n(trigger "a" #/y/)', 2, "declared twice"),
        ('(section "LogFileBody" "a" "b")', 1, "declared twice"),
    ],
)
def test_bad_rules_are_one_error_naming_file_and_line(rules: str, line: int, words: str) -> None:
    """A rule file mtpkt cannot read is one line naming the file and line."""
    with pytest.raises(SchemeError) as caught:
        read_rules(rules, "bad.logpro")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"bad.logpro:{line}:")
    assert words in message


def test_inline_rules_name_their_testconfig_line() -> None:
    """Inline [logpro] rules start on a testconfig line; errors name that file's line."""
    with pytest.raises(SchemeError, match=r"^testconfig:12:"):
        read_rules('(expect:error in "LogFileBody" = 0 "e" #/(/)', "testconfig", line=12)


def test_message_names_the_rule() -> None:
    rules = read_rules('\n(expect:required in "LogFileBody" > 0 "Header" #/h/)', "t.logpro")
    result = judge(rules, ["x"])
    assert result.message == ("FAIL: Header (expect:required > 0, counted 0, rule at line 2)")
    assert result.lines == 1
