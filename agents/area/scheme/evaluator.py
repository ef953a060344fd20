"""Evaluating Scheme data: environments, the special forms, and limits on the work.

The special forms are ``quote``, ``if``, ``cond`` (with ``else`` and
``=>``), ``case`` (with ``else``), ``let`` (and named ``let``), ``let*``,
``and``, ``or``, ``define``, ``lambda``, ``begin`` and ``set!``; their names
cannot be bound to anything else. Every other name is looked up in a chain
of environments that ends in the builtins given (:mod:`.builtins`), which
cannot be changed. A name found nowhere, or a Scheme form this evaluator does
not have (``do``, ``let-values``, ``define-syntax`` …), is a
:class:`~.reader.SchemeError` naming the file, line and form: never something
else run in its place.

Calls in tail position do not grow the stack, so a loop written as a named
``let`` runs in constant depth; every step counts against
:attr:`Limits.steps` and every nested call against :attr:`Limits.depth`, so
code that loops or recurses without end fails in a bounded time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs

from mtpkt.agents.area.scheme.reader import Node, SchemeError, Source, Symbol, datum, read
from mtpkt.agents.area.scheme.values import (
    UNSPECIFIED,
    Builtin,
    BuiltinError,
    Procedure,
    Value,
    eqv,
    is_true,
)

__all__ = ["SPECIAL_FORMS", "Environment", "Lambda", "Limits", "evaluate", "run"]

_NOT_HERE: Final = frozenset(
    "do delay delay-force force define-syntax let-syntax letrec-syntax syntax-rules letrec "
    "letrec* let-values let*-values define-values receive case-lambda when unless "
    "quasiquote unquote unquote-splicing parameterize fluid-let define-record-type "
    "handle-exceptions condition-case guard eval assert".split()
)
"""Scheme forms and names people may expect that this evaluator does not have."""


@attrs.frozen
class Limits:
    """How much work one evaluation may do."""

    steps: int = 100_000
    """Forms evaluated and procedures called, in all."""
    depth: int = 100
    """Forms and calls nested inside each other (tail calls do not nest)."""


class Environment:
    """Names bound to values, and the environment around them.

    Args:
        bindings: the names of this environment.
        parent: the enclosing environment (None for the builtins).
        fixed: whether ``define`` and ``set!`` may not change it (the builtins).
    """

    def __init__(
        self, bindings: Mapping[str, Value], parent: Environment | None, *, fixed: bool = False
    ) -> None:
        self.bindings = dict(bindings)
        self.parent = parent
        self.fixed = fixed

    def find(self, name: str) -> Environment | None:
        """The innermost environment that binds ``name``."""
        env: Environment | None = self
        while env is not None and name not in env.bindings:
            env = env.parent
        return env


@attrs.frozen(eq=False)
class Lambda(Procedure):
    """A procedure made by ``lambda`` (or ``define``), with the environment it closes over."""

    name: str
    params: tuple[str, ...]
    rest: str | None
    """The name that takes the remaining arguments as a list (``(lambda args …)``)."""
    body: tuple[Node, ...]
    env: Environment

    def bind(self, args: Sequence[Value]) -> Environment:
        """The environment of a call.

        Raises:
            BuiltinError: the number of arguments does not fit.
        """
        count = len(self.params)
        if len(args) < count or (self.rest is None and len(args) > count):
            wanted = f"{count} or more" if self.rest is not None else str(count)
            raise BuiltinError(f"{self.name} takes {wanted} argument(s), not {len(args)}")
        bindings: dict[str, Value] = dict(zip(self.params, args, strict=False))
        if self.rest is not None:
            bindings[self.rest] = tuple(args[count:])
        return Environment(bindings, self.env)

    def __repr__(self) -> str:
        return f"#<procedure ({self.name} ...)>"


@attrs.frozen
class _Tail:
    """A form to evaluate next in place of the current one (a tail call)."""

    node: Node
    env: Environment


_Form = Callable[["_Run", Node, tuple[Node, ...], Environment], "Value | _Tail"]


class _Run:
    """One evaluation: its step count and depth, under its limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.depth = 0
        self.node: Node | None = None
        """The call being made, for errors raised inside builtins."""
        self.last: Node | None = None
        """The form of the latest step."""

    def step(self, node: Node) -> None:
        self.steps += 1
        self.last = node
        if self.steps > self.limits.steps:
            raise node.error(f"gave up after {self.limits.steps} steps (a loop without end?)")

    def nest(self, node: Node) -> None:
        """One level deeper (the caller undoes it)."""
        self.depth += 1
        if self.depth > self.limits.depth:
            raise node.error(f"forms or calls nested deeper than {self.limits.depth}")

    def eval(self, node: Node, env: Environment) -> Value:
        """The value of a form.

        Raises:
            SchemeError: the form cannot be evaluated, or a limit was reached.
        """
        try:
            self.nest(node)
            while True:  # bounded by the step limit: each round is a step
                self.step(node)
                items = node.items
                if items is None:
                    return self.atom(node, env)
                result = self.combination(node, items, env)
                if not isinstance(result, _Tail):
                    return result
                node, env = result.node, result.env
        finally:
            self.depth -= 1

    def atom(self, node: Node, env: Environment) -> Value:
        value = node.value
        if not isinstance(value, Symbol):
            assert not isinstance(value, tuple)
            return value
        found = env.find(value.name)
        if found is not None:
            return found.bindings[value.name]
        if value.name in SPECIAL_FORMS:
            raise node.error(f"{value.name} is a special form, not a value")
        if value.name in _NOT_HERE:
            raise node.error(f"{value.name} is Scheme that mtpkt does not support")
        raise node.error(f"unknown name {value.name!r} (not one of mtpkt's builtins)")

    def combination(self, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
        """A special form, or a call."""
        if not items:
            raise node.error("() is no expression (write '() for the empty list)")
        head = items[0].value
        if isinstance(head, Symbol) and head.name in SPECIAL_FORMS:
            return SPECIAL_FORMS[head.name](self, node, items, env)
        procedure = self.eval(items[0], env)
        args = [self.eval(item, env) for item in items[1:]]
        if not isinstance(procedure, Procedure):
            raise node.error(f"{items[0].text} is not a procedure")
        if isinstance(procedure, Lambda):
            try:
                call_env = procedure.bind(args)
            except BuiltinError as exc:
                raise node.error(str(exc)) from None
            return self.body(procedure.body, call_env)
        return self.invoke(procedure, args, node)

    def invoke(self, procedure: Procedure, args: Sequence[Value], node: Node) -> Value:
        """Call a builtin (or a lambda, not in tail position) for the form ``node``."""
        self.step(node)
        outer, self.node = self.node, node
        try:
            self.nest(node)
            if isinstance(procedure, Lambda):
                result = self.body(procedure.body, procedure.bind(args))
                return self.eval(result.node, result.env)
            assert isinstance(procedure, Builtin)
            return procedure.invoke(self, args)
        except BuiltinError as exc:
            raise node.error(str(exc)) from None
        finally:
            self.node = outer
            self.depth -= 1

    def apply(self, procedure: Procedure, args: Sequence[Value]) -> Value:
        """Call a procedure for a builtin (``map``, ``apply`` …); errors name its call."""
        assert self.node is not None
        return self.invoke(procedure, args, self.node)

    def body(self, forms: tuple[Node, ...], env: Environment) -> _Tail:
        """Evaluate all but the last form; the last one is the tail."""
        for form in forms[:-1]:
            self.eval(form, env)
        return _Tail(forms[-1], env)


# -- the special forms ------------------------------------------------------------------------


def _arity(node: Node, items: tuple[Node, ...], least: int, most: int | None = None) -> None:
    count = len(items) - 1
    if count < least or (most is not None and count > most):
        wanted = f"{least}" if most == least else f"{least} to {most}" if most else f"{least}+"
        raise node.error(f"{items[0].text} takes {wanted} part(s), not {count}")


def _name(node: Node, what: str) -> str:
    """A name being bound: a symbol that is not a special form."""
    if not isinstance(node.value, Symbol):
        raise node.error(f"{what} must be a name")
    if node.value.name in SPECIAL_FORMS:
        raise node.error(f"{node.value.name} is a special form and cannot be bound")
    return node.value.name


def _quote(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value:
    _arity(node, items, 1, 1)
    return datum(items[1])  # type: ignore[return-value]  # atoms and tuples of them


def _if(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    _arity(node, items, 2, 3)
    if is_true(run.eval(items[1], env)):
        return _Tail(items[2], env)
    return _Tail(items[3], env) if len(items) == 4 else UNSPECIFIED


def _clause(node: Node, what: str) -> tuple[Node, ...]:
    clause = node.items
    if not clause:
        raise node.error(f"a {what} clause must be a non-empty list")
    return clause


def _is(node: Node, name: str) -> bool:
    return isinstance(node.value, Symbol) and node.value.name == name


def _cond(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    for index, clause_node in enumerate(items[1:], start=1):
        clause = _clause(clause_node, "cond")
        if _is(clause[0], "else"):
            if index != len(items) - 1 or len(clause) < 2:
                raise clause_node.error("else must be the last clause, with a body")
            return run.body(clause[1:], env)
        test = run.eval(clause[0], env)
        if not is_true(test):
            continue
        if len(clause) == 1:
            return test
        if _is(clause[1], "=>"):
            if len(clause) != 3:
                raise clause_node.error("=> takes one procedure")
            procedure = run.eval(clause[2], env)
            if not isinstance(procedure, Procedure):
                raise clause[2].error("not a procedure")
            return run.invoke(procedure, [test], clause_node)
        return run.body(clause[1:], env)
    return UNSPECIFIED


def _case(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    _arity(node, items, 1)
    key = run.eval(items[1], env)
    for index, clause_node in enumerate(items[2:], start=2):
        clause = _clause(clause_node, "case")
        if len(clause) < 2:
            raise clause_node.error("a case clause needs a body")
        if _is(clause[0], "else"):
            if index != len(items) - 1:
                raise clause_node.error("else must be the last clause")
            return run.body(clause[1:], env)
        choices = clause[0].items
        if choices is None:
            raise clause[0].error("a case clause starts with a list of choices, or else")
        if any(eqv(key, datum(choice)) for choice in choices):  # type: ignore[arg-type]
            return run.body(clause[1:], env)
    return UNSPECIFIED


def _bindings(node: Node) -> list[tuple[str, Node]]:
    """``((name expression) …)`` of a ``let``."""
    pairs = node.items
    if pairs is None:
        raise node.error("let needs a list of (name value) bindings")
    found = []
    for pair in pairs:
        parts = pair.items
        if parts is None or len(parts) != 2:
            raise pair.error("a binding is (name value)")
        found.append((_name(parts[0], "a bound name"), parts[1]))
    return found


def _let(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    _arity(node, items, 2)
    if isinstance(items[1].value, Symbol):  # named let: (let loop ((i 0)) … (loop …))
        _arity(node, items, 3)
        loop_name = _name(items[1], "a named let's name")
        bindings = _bindings(items[2])
        loop_env = Environment({}, env)
        names = tuple(name for name, _ in bindings)
        loop = Lambda(loop_name, _unique(items[2], names), None, items[3:], loop_env)
        loop_env.bindings[loop_name] = loop
        args = [run.eval(expression, env) for _, expression in bindings]
        return run.body(items[3:], loop.bind(args))
    bindings = _bindings(items[1])
    _unique(items[1], tuple(name for name, _ in bindings))
    values = {name: run.eval(expression, env) for name, expression in bindings}
    return run.body(items[2:], Environment(values, env))


def _let_star(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> _Tail:
    _arity(node, items, 2)
    for name, expression in _bindings(items[1]):
        env = Environment({name: run.eval(expression, env)}, env)
    return run.body(items[2:], env)


def _and(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    if len(items) == 1:
        return True
    for item in items[1:-1]:
        if not is_true(run.eval(item, env)):
            return False
    return _Tail(items[-1], env)


def _or(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    if len(items) == 1:
        return False
    for item in items[1:-1]:
        value = run.eval(item, env)
        if is_true(value):
            return value
    return _Tail(items[-1], env)


def _unique(node: Node, names: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(names)) != len(names):
        raise node.error("a name is bound twice")
    return names


def _lambda_of(name: str, params: Node, body: tuple[Node, ...], env: Environment) -> Lambda:
    """A procedure from a parameter list (or one name for all arguments) and a body."""
    if not body:
        raise params.error("a procedure needs a body")
    if isinstance(params.value, Symbol):
        return Lambda(name, (), _name(params, "a parameter"), body, env)
    names = params.items
    if names is None:
        raise params.error("parameters are a list of names")
    found = tuple(_name(param, "a parameter") for param in names)
    return Lambda(name, _unique(params, found), None, body, env)


def _lambda(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value:
    _arity(node, items, 2)
    return _lambda_of("lambda", items[1], items[2:], env)


def _define(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value:
    _arity(node, items, 1)
    target = items[1]
    signature = target.items
    if signature:  # (define (name params…) body…)
        name = _name(signature[0], "the defined name")
        params = Node(signature[1:], target.source, target.start, target.end)
        value: Value = _lambda_of(name, params, items[2:], env)
    else:
        _arity(node, items, 2, 2)
        name = _name(target, "the defined name")
        value = run.eval(items[2], env)
    if env.fixed:  # cannot happen: code runs in an environment of its own
        raise node.error(f"cannot define {name} among the builtins")
    env.bindings[name] = value
    return UNSPECIFIED


def _set(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value:
    _arity(node, items, 2, 2)
    name = _name(items[1], "set!'s target")
    found = env.find(name)
    if found is None:
        raise items[1].error(f"set! of {name!r}, which is not defined")
    if found.fixed:
        raise items[1].error(f"{name} is a builtin and cannot be changed")
    found.bindings[name] = run.eval(items[2], env)
    return UNSPECIFIED


def _begin(run: _Run, node: Node, items: tuple[Node, ...], env: Environment) -> Value | _Tail:
    return run.body(items[1:], env) if len(items) > 1 else UNSPECIFIED


SPECIAL_FORMS: Final[Mapping[str, _Form]] = {
    "quote": _quote,
    "if": _if,
    "cond": _cond,
    "case": _case,
    "let": _let,
    "let*": _let_star,
    "and": _and,
    "or": _or,
    "define": _define,
    "lambda": _lambda,
    "begin": _begin,
    "set!": _set,
}
"""The special forms by name."""


def run(nodes: Sequence[Node], builtins: Mapping[str, Value], limits: Limits = Limits()) -> Value:
    """Evaluate forms in order, as the body of a procedure, in an environment of their own
    inside the builtins; the value of the last one.

    Raises:
        SchemeError: a form cannot be evaluated, or a limit was reached.
        ValueError: there is no form.
    """
    if not nodes:
        raise ValueError("no form to evaluate")
    evaluation = _Run(limits)
    env = Environment({}, Environment(builtins, None, fixed=True))
    try:
        tail = evaluation.body(tuple(nodes), env)
        return evaluation.eval(tail.node, tail.env)
    except RecursionError:  # the limits keep well inside Python's; this is the last guard
        raise (evaluation.last or nodes[0]).error("nested too deep") from None


def evaluate(source: Source, builtins: Mapping[str, Value], limits: Limits = Limits()) -> Value:
    """Read and evaluate Scheme text (see :func:`run`).

    Raises:
        SchemeError: the text does not read, holds no form, or cannot be evaluated.
    """
    nodes = read(source)
    if not nodes:
        raise SchemeError(
            "nothing to evaluate", source=source.name, line=source.line, column=source.column,
            form=source.text,
        )  # fmt: skip
    return run(nodes, builtins, limits)
