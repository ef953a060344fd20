"""The small Scheme of ``agents/area/scheme``: reader, special forms, builtins, limits, errors.

Chicken Scheme (Megatest's language) is the reference for what a form gives:
Megatest wraps ``#{scheme code}`` as ``(lambda (ht) code)`` and ``eval``s it
(``configf.scm`` lines 100 and 130), so code is a procedure body.
"""

import time

import pytest

from mtpkt.agents.area.scheme import CORE, Limits, SchemeError, Source, evaluate, read, to_text
from mtpkt.agents.area.scheme.reader import Node, Symbol, datum
from mtpkt.agents.area.scheme.values import MAX_TEXT, Value

DEFAULT = Limits()


def run(code: str, limits: Limits = DEFAULT) -> Value:
    return evaluate(Source("rules.scm", code, line=7), CORE, limits)


def text_of(code: str) -> str:
    """What Megatest would write into the config line for ``#{scheme code}``."""
    return to_text(run(code))


def fails(code: str, limits: Limits = DEFAULT) -> SchemeError:
    with pytest.raises(SchemeError) as caught:
        run(code, limits)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("rules.scm:"), message
    return caught.value


# -- reader ----------------------------------------------------------------------------------


def test_every_node_knows_its_line_and_column() -> None:
    source = Source("f.scm", '(a\n  (b 12)\n "s") x', line=10, column=5)
    outer, after = read(source)
    assert source.position(outer.start) == (10, 5)
    assert outer.text == '(a\n  (b 12)\n "s")'
    items = outer.items
    assert items is not None
    head, inner, string = items
    assert source.position(head.start) == (10, 6)
    assert source.position(inner.start) == (11, 3)
    assert inner.text == "(b 12)"
    assert source.position(string.start) == (12, 2)
    assert string.value == "s"
    assert source.position(after.start) == (12, 7)
    assert after.value == Symbol("x")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("#t", True),
        ("#f", False),
        ("#true", True),
        ("#false", False),
        ('"a \\"b\\" \\\\ \\n\\t"', 'a "b" \\ \n\t'),
        ('"joined \\\nline"', "joined line"),
        ("string->symbol", Symbol("string->symbol")),
        ("+", Symbol("+")),
        ("...", Symbol("...")),
        ("args:get-arg", Symbol("args:get-arg")),
        ("*toppath*", Symbol("*toppath*")),
        ("'x", (Symbol("quote"), Symbol("x"))),
        ("[a (b)]", (Symbol("a"), (Symbol("b"),))),
        ("(a ; a comment\n b)", (Symbol("a"), Symbol("b"))),
        ("()", ()),
        ("99999999999999999999", 1e20),  # past Chicken 4's fixnums: a flonum
    ],
)
def test_the_reader_knows_chickens_basic_syntax(text: str, value: object) -> None:
    (node,) = read(Source("f.scm", text))
    assert datum(node) == value


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("(a b", "'(' is never closed", 1),
        ("a)", "unexpected ')'", 2),
        ("(a]", "'(' closed by ']'", 1),
        ('"open', "string never closed", 1),
        ('"\\q"', "unknown escape '\\q'", 2),
        ("#\\a", "this # syntax is not supported", 1),
        ("#(1 2)", "this # syntax is not supported", 1),
        ("`(a ,b)", "quasiquote (`) is not supported", 1),
        ("(a . b)", "dotted pairs are not supported", 4),
        ("(x |y|)", "|symbols| are not supported", 4),
        ("'", "nothing after '", 1),
    ],
)
def test_what_the_reader_does_not_know_is_an_error_at_its_place(
    text: str, message: str, column: int
) -> None:
    with pytest.raises(SchemeError) as caught:
        read(Source("f.scm", f"\n{text}", line=3))
    assert caught.value.line == 4
    assert caught.value.column == column
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"f.scm:4:{column}: ")


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    with pytest.raises(SchemeError, match="nested deeper than 200 lists"):
        read(Source("f.scm", "(" * 500 + ")" * 500))


# -- special forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("'(a 1 \"s\")", "(a 1 s)"),
        ("(quote x)", "x"),
        ("(if 0 'yes 'no)", "yes"),  # only #f is false
        ('(if "" 1 2)', "1"),
        ("(if #f 1 2)", "2"),
        ("(if #f #f)", "#<unspecified>"),
        ("(cond ((= 1 2) 'a) ((= 1 1) 'b) (else 'c))", "b"),
        ("(cond (#f 1) (else 2 3))", "3"),
        ("(cond ((assoc 2 '((1 one) (2 two))) => cadr) (else 'none))", "two"),
        ("(cond ((+ 1 1)))", "2"),
        ("(cond (#f 1))", "#<unspecified>"),
        ("(case (* 2 3) ((2 3 5 7) 'prime) ((1 4 6 8 9) 'composite))", "composite"),
        ("(case 'none ((none) \"nbfake\") (else \"other\"))", "nbfake"),
        ("(case 'x ((a) 1) (else 2))", "2"),
        ('(case "s" (("s") 1) (else 2))', "2"),  # strings are not eqv?, as in Chicken
        ("(let ((x 2) (y 3)) (* x y))", "6"),
        ("(let ((x 1)) (let ((x 2) (y x)) y))", "1"),  # let binds at once
        ("(let* ((x 1) (y (+ x 1))) (* x y))", "2"),
        ("(let loop ((i 0) (acc '())) (if (= i 3) (reverse acc) (loop (+ i 1) (cons i acc))))",
         "(0 1 2)"),
        ("(and)", "#t"),
        ("(and 1 2 'last)", "last"),
        ("(and 1 #f (car '()))", "#f"),  # stops at the first #f
        ("(or)", "#f"),
        ("(or #f 2 (car '()))", "2"),
        ("(define x 5) (set! x (+ x 1)) x", "6"),
        ("(define (square n) (* n n)) (square 7)", "49"),
        ("(define (fact n) (if (= n 0) 1 (* n (fact (- n 1))))) (fact 10)", "3628800"),
        ("((lambda (a b) (- a b)) 5 3)", "2"),
        ("((lambda args (length args)) 1 2 3)", "3"),
        ("(define (counter) (let ((n 0)) (lambda () (set! n (+ n 1)) n)))"
         " (define c (counter)) (c) (c) (c)", "3"),
        ("(begin 1 2 3)", "3"),
        ("(begin)", "#<unspecified>"),
        ("(define y 1)", "#<unspecified>"),
    ],
)  # fmt: skip
def test_each_special_form(code: str, text: str) -> None:
    assert text_of(code) == text


def test_a_loop_in_tail_position_runs_in_constant_depth() -> None:
    code = "(let loop ((i 0)) (if (< i 5000) (loop (+ i 1)) i))"
    assert run(code) == 5000


# -- builtins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("(+ 5 6 7)", "18"),
        ("(+)", "0"),
        ("(- 10 4 1)", "5"),
        ("(- 3)", "-3"),
        ("(* 2 3.5)", "7.0"),
        ("(/ 6 3)", "2"),
        ("(/ 7 2)", "3.5"),  # Chicken 4 without the numbers egg: no fractions
        ("(/ 2)", "0.5"),
        ("(= 1 1 1)", "#t"),
        ("(< 1 2 3)", "#t"),
        ("(< 1 3 2)", "#f"),
        ("(>= 3 3 1)", "#t"),
        ("(max 1 2.0)", "2.0"),  # one inexact argument makes the result inexact
        ("(min 4 2 8)", "2"),
        ("(abs -4)", "4"),
        ("(modulo -7 2)", "1"),
        ("(remainder -7 2)", "-1"),
        ("(quotient -7 2)", "-3"),
        ("(number->string 255 16)", "ff"),
        ("(number->string 2.5)", "2.5"),
        ("(string->number \"42\")", "42"),
        ("(string->number \"4x\")", "#f"),
        ("(string->number \"ff\" 16)", "255"),
        ("(* 4611686018427387903 2)", "9.223372036854776e+18"),  # past a fixnum: a flonum
        ('(string-append "a" "b" "c")', "abc"),
        ("(conc \"n=\" 5 \" \" 'sym \" \" #t \" \" '(1 \"x\"))", "n=5 sym #t (1 x)"),
        ('(string-length "hello")', "5"),
        ('(substring "hello" 1 3)', "el"),
        ('(substring "hello" 2)', "llo"),
        ('(string=? "a" "a" "a")', "#t"),
        ('(string-upcase "MiXed")', "MIXED"),
        ('(string-downcase "MiXed")', "mixed"),
        ('(string-split "a b  c")', "(a b c)"),
        ('(string-split "a,,b" ",")', "(a b)"),
        ('(string-split "a,,b" "," #t)', "(a  b)"),
        ('(string-intersperse (list "a" "b" "c") ",")', "a,b,c"),
        ("(string-intersperse '(\"x\" \"y\"))", "x y"),
        ('(string->symbol "none")', "none"),
        ("(symbol->string 'abc)", "abc"),
        ("(list 1 2 (list 3))", "(1 2 (3))"),
        ("(cons 1 '(2 3))", "(1 2 3)"),
        ("(car '(a b))", "a"),
        ("(cdr '(a b))", "(b)"),
        ("(cadr '(a b))", "b"),
        ("(null? '())", "#t"),
        ("(pair? '())", "#f"),
        ("(length '(1 2 3))", "3"),
        ("(append '(1) '(2 3) '())", "(1 2 3)"),
        ("(reverse '(1 2 3))", "(3 2 1)"),
        ("(member 2 '(1 2 3))", "(2 3)"),
        ("(member 9 '(1 2 3))", "#f"),
        ('(assoc "b" \'(("a" 1) ("b" 2)))', "(b 2)"),
        ("(map + '(1 2) '(10 20))", "(11 22)"),
        ("(map (lambda (x) (* x x)) '(1 2 3))", "(1 4 9)"),
        ("(filter (lambda (x) (> x 1)) '(1 2 3))", "(2 3)"),
        ("(define n 0) (for-each (lambda (x) (set! n (+ n x))) '(1 2 3)) n", "6"),
        ("(for-each car '())", "#<unspecified>"),
        ("(apply + 1 2 '(3 4))", "10"),
        ("(eq? 'a 'a)", "#t"),
        ("(eqv? 1 1.0)", "#f"),
        ("(equal? '(1 (\"x\")) (list 1 (list \"x\")))", "#t"),
        ("(not 0)", "#f"),
        ("(not #f)", "#t"),
        ('(list (number? 1) (string? "s") (symbol? \'s) (list? \'()) (number? "1"))',
         "(#t #t #t #t #f)"),
    ],
)  # fmt: skip
def test_builtins(code: str, text: str) -> None:
    assert text_of(code) == text


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "form"),
    [
        ("(frob 1)", "unknown name 'frob' (not one of mtpkt's builtins)", "frob"),
        ("(do ((i 0)) (#t 1))", "do is Scheme that mtpkt does not support", "do"),
        ('(unsetenv "X")', "unknown name 'unsetenv'", "unsetenv"),
        ("(+ 1 if)", "if is a special form, not a value", "if"),
        ("(car '())", "car of the empty list", "(car '())"),
        ("(car 1 2)", "car takes 1 argument(s), not 2", "(car 1 2)"),
        ('(+ 1 "2")', "+ needs numbers, not '2'", '(+ 1 "2")'),
        ("(/ 1 0)", "division by zero", "(/ 1 0)"),
        ("(cons 1 2)", "pairs that are not lists are not supported", "(cons 1 2)"),
        ("(1 2)", "1 is not a procedure", "(1 2)"),
        ("()", "() is no expression", "()"),
        ("((lambda (x) x))", "lambda takes 1 argument(s), not 0", "((lambda (x) x))"),
        ("(set! nowhere 1)", "set! of 'nowhere', which is not defined", "nowhere"),
        ("(set! car 1)", "car is a builtin and cannot be changed", "car"),
        ("(define if 1)", "if is a special form and cannot be bound", "if"),
        ("(lambda (a a) a)", "a name is bound twice", "(a a)"),
        ("(cond (else 1) (#t 2))", "else must be the last clause", "(else 1)"),
        ("(if)", "if takes 2 to 3 part(s), not 0", "(if)"),
        ("(map car '(1))", "car needs a list, not '1'", "(map car '(1))"),
        ('(substring "abc" 2 9)', "substring: 2 to 9 is outside a string of 3", "(substring"),
    ],
)
def test_errors_are_one_line_naming_file_line_and_form(code: str, message: str, form: str) -> None:
    error = fails(f"\n  {code}")
    assert error.line == 8  # the code's second line: the source starts at line 7
    assert message in error.message
    assert error.form.startswith(form)
    assert str(error) == f"rules.scm:8:{error.column}: {error.message}: {error.form}"


def test_a_loop_without_end_stops_at_the_step_limit_quickly() -> None:
    started = time.monotonic()
    error = fails("(let loop ((i 0)) (loop (+ i 1)))")
    assert "gave up after 100000 steps" in error.message
    assert time.monotonic() - started < 10
    assert "gave up after 50 steps" in fails("(define (f) (f)) (f)", Limits(steps=50)).message


def test_recursion_without_end_stops_at_the_depth_limit() -> None:
    assert "nested deeper than 100" in fails("(define (f n) (+ 1 (f n))) (f 1)").message
    assert "nested deeper than 100" in fails("(define (f x) (map f (list x))) (f 1)").message
    assert (
        "nested deeper than 5"
        in fails("(+ 1 (+ 1 (+ 1 (+ 1 (+ 1 (+ 1 1))))))", Limits(depth=5)).message
    )


@pytest.mark.parametrize(
    "code",
    [
        '(let loop ((s "x")) (loop (string-append s s)))',
        "(let loop ((s '(1)) (i 0)) (if (< i 40) (loop (list s s) (+ i 1)) (conc s)))",
        "(let loop ((s '(1)) (i 0)) (if (< i 10000) (loop (list s) (+ i 1)) (conc s)))",
    ],
)
def test_values_cannot_grow_without_bound(code: str) -> None:
    error = fails(code)
    assert f"over {MAX_TEXT} characters" in error.message or "steps" in error.message


def test_a_list_nested_deeper_than_python_recursion_still_becomes_text() -> None:
    code = "(let loop ((s '()) (i 0)) (if (< i 3000) (loop (list s) (+ i 1)) s))"
    assert text_of(code) == "(" * 3001 + ")" * 3001


def test_a_procedure_has_no_text() -> None:
    with pytest.raises(Exception, match="cannot become text"):
        text_of("car")


def test_nodes_are_plain_data() -> None:
    (node,) = read(Source("f.scm", "(a (b))"))
    assert isinstance(node, Node)
    assert datum(node) == (Symbol("a"), (Symbol("b"),))
