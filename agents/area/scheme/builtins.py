"""The builtins Scheme code may call: a registry, the only door to the outside.

What a name means is looked up here and nowhere else; there is no ``eval``
and nothing reaches files, processes or the environment unless a builtin
named in a registry does it (the config's own builtins, which do, are in
:mod:`~mtpkt.agents.area.scheme.context`). :data:`CORE` holds the pure ones:

* numbers: ``+ - * / = < > <= >= min max abs modulo quotient remainder
  number->string string->number``, and ``number?``. Integers beyond Chicken's
  fixnums (62 bits) become decimals, as in Chicken 4; ``/`` gives an integer
  when the division is exact and a decimal otherwise (no fractions);
* strings: ``string-append conc string-length substring string=? string-upcase
  string-downcase string-split string-intersperse``, ``string?``;
* symbols: ``string->symbol symbol->string``, ``symbol?``;
* lists (tuples here: there are no improper lists): ``list cons car cdr cadr
  null? pair? list? length append reverse member assoc map filter for-each
  apply``;
* equality: ``eq? eqv? equal? not``; hash tables: ``hash-table-keys``.

The values they take and give are :mod:`.values`'.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from mtpkt.agents.area.scheme.reader import FIXNUM_LIMIT, SchemeError, Source, Symbol, read
from mtpkt.agents.area.scheme.values import (
    UNSPECIFIED,
    Builtin,
    BuiltinError,
    Call,
    HashTable,
    Value,
    bounded_list,
    bounded_text,
    builtin,
    calling,
    check_string,
    equal,
    eqv,
    integer_arg,
    is_number,
    is_true,
    list_arg,
    number_arg,
    number_text,
    procedure_arg,
    shown,
    to_text,
)

__all__ = ["CORE"]

# -- numbers ----------------------------------------------------------------------------------

_REGISTRY: dict[str, Value] = {}
_core = functools.partial(builtin, _REGISTRY)


def _fix(number: int | float) -> int | float:
    """An integer past Chicken's fixnums becomes a flonum, as Chicken 4's arithmetic does."""
    if isinstance(number, int) and not -FIXNUM_LIMIT <= number < FIXNUM_LIMIT:
        return float(number)
    return number


@_core("+")
def _add(*numbers: Value) -> Value:
    total: int | float = 0
    for number in numbers:
        total = _fix(total + number_arg(number, "+"))
    return total


@_core("*")
def _multiply(*numbers: Value) -> Value:
    product: int | float = 1
    for number in numbers:
        product = _fix(product * number_arg(number, "*"))
    return product


@_core("-", least=1)
def _subtract(first: Value, *rest: Value) -> Value:
    result = number_arg(first, "-")
    if not rest:
        return _fix(-result)
    for number in rest:
        result = _fix(result - number_arg(number, "-"))
    return result


@_core("/", least=1)
def _divide(first: Value, *rest: Value) -> Value:
    if not rest:  # (/ x) is 1/x
        first, rest = 1, (first,)
    result = number_arg(first, "/")
    for number in rest:
        divisor = number_arg(number, "/")
        if divisor == 0:
            raise BuiltinError("division by zero")
        exact = isinstance(result, int) and isinstance(divisor, int) and result % divisor == 0
        result = result // divisor if exact else result / divisor
    return result


def _comparison(name: str, compare: Callable[[float, float], bool]) -> None:
    def function(*numbers: Value) -> Value:
        values = [number_arg(n, name) for n in numbers]
        return all(compare(a, b) for a, b in itertools.pairwise(values))

    _REGISTRY[name] = Builtin(name, function, least=1)


for _name, _compare in (
    ("=", operator.eq),
    ("<", operator.lt),
    (">", operator.gt),
    ("<=", operator.le),
    (">=", operator.ge),
):
    _comparison(_name, _compare)


def _extreme(name: str, pick: Callable[..., int | float]) -> None:
    def function(*numbers: Value) -> Value:
        values = [number_arg(n, name) for n in numbers]
        best = pick(values)
        return float(best) if any(isinstance(v, float) for v in values) else best

    _REGISTRY[name] = Builtin(name, function, least=1)


_extreme("max", max)
_extreme("min", min)


@_core("abs", least=1, most=1)
def _abs(number: Value) -> Value:
    return _fix(abs(number_arg(number, "abs")))


def _division(name: str, compute: Callable[[int, int], int]) -> None:
    def function(dividend: Value, divisor: Value) -> Value:
        a, b = integer_arg(dividend, name), integer_arg(divisor, name)
        if b == 0:
            raise BuiltinError(f"{name}: division by zero")
        return compute(a, b)

    _REGISTRY[name] = Builtin(name, function, least=2, most=2)


_division("modulo", lambda a, b: a % b)  # the sign of the divisor, as Scheme's modulo
_division("quotient", lambda a, b: abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1))
_division("remainder", lambda a, b: abs(a) % abs(b) * (1 if a >= 0 else -1))

_RADIXES: Final = {2: "b", 8: "o", 10: "d", 16: "x"}


@_core("number->string", least=1, most=2)
def _number_to_string(number: Value, radix: Value = 10) -> Value:
    value = number_arg(number, "number->string")
    base = integer_arg(radix, "number->string")
    if base not in _RADIXES:
        raise BuiltinError(f"number->string: radix {base} is not one of 2, 8, 10, 16")
    if base == 10:
        return number_text(value)
    if not isinstance(value, int):
        raise BuiltinError("number->string: only whole numbers in another radix")
    return ("-" if value < 0 else "") + format(abs(value), _RADIXES[base])


_DIGITS: Final = {2: "[01]+", 8: "[0-7]+", 16: "[0-9a-fA-F]+"}


@_core("string->number", least=1, most=2)
def _string_tonumber_arg(text: Value, radix: Value = 10) -> Value:
    """The number a string writes, as the reader reads it; #f when it writes none."""
    string, base = check_string(text, "string->number"), integer_arg(radix, "string->number")
    if base != 10:
        if base not in _DIGITS:
            raise BuiltinError(f"string->number: radix {base} is not one of 2, 8, 10, 16")
        return int(string, base) if re.fullmatch(f"[+-]?{_DIGITS[base]}", string) else False
    try:
        nodes = read(Source("string->number", string))
    except SchemeError:  # text that does not read is no number
        return False
    if len(nodes) == 1 and is_number(nodes[0].value) and nodes[0].text == string:
        value = nodes[0].value
        assert isinstance(value, int | float)
        return _fix(value)
    return False


# -- strings ----------------------------------------------------------------------------------


@_core("string-append")
def _string_append(*strings: Value) -> Value:
    return bounded_text("".join(check_string(s, "string-append") for s in strings), "string-append")


@_core("conc")
def _conc(*values: Value) -> Value:
    return bounded_text("".join(to_text(value) for value in values), "conc")


@_core("string-length", least=1, most=1)
def _string_length(string: Value) -> Value:
    return len(check_string(string, "string-length"))


@_core("substring", least=2, most=3)
def _substring(string: Value, start: Value, end: Value | None = None) -> Value:
    text = check_string(string, "substring")
    first = integer_arg(start, "substring")
    last = len(text) if end is None else integer_arg(end, "substring")
    if not 0 <= first <= last <= len(text):
        raise BuiltinError(f"substring: {first} to {last} is outside a string of {len(text)}")
    return text[first:last]


@_core("string=?", least=1)
def _string_equal(*strings: Value) -> Value:
    texts = [check_string(s, "string=?") for s in strings]
    return all(text == texts[0] for text in texts)


@_core("string-upcase", least=1, most=1)
def _upcase(string: Value) -> Value:
    return check_string(string, "string-upcase").upper()


@_core("string-downcase", least=1, most=1)
def _downcase(string: Value) -> Value:
    return check_string(string, "string-downcase").lower()


@_core("string-split", least=1, most=3)
def _string_split(string: Value, delimiters: Value = " \t\n", keep_empty: Value = False) -> Value:
    """Chicken's ``string-split``: any character of ``delimiters`` separates; empty parts are
    dropped unless ``keep_empty``."""
    text = check_string(string, "string-split")
    separators = set(check_string(delimiters, "string-split"))
    parts: list[str] = []
    current: list[str] = []
    for char in text:
        if char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(p for p in parts if p or is_true(keep_empty)) if separators else (text,)


@_core("string-intersperse", least=1, most=2)
def _string_intersperse(strings: Value, separator: Value = " ") -> Value:
    parts = [check_string(s, "string-intersperse") for s in list_arg(strings, "string-intersperse")]
    joined = check_string(separator, "string-intersperse").join(parts)
    return bounded_text(joined, "string-intersperse")


# -- symbols ----------------------------------------------------------------------------------


@_core("string->symbol", least=1, most=1)
def _string_to_symbol(string: Value) -> Value:
    return Symbol(check_string(string, "string->symbol"))


@_core("symbol->string", least=1, most=1)
def _symbol_to_string(symbol: Value) -> Value:
    if not isinstance(symbol, Symbol):
        raise BuiltinError(f"symbol->string needs a symbol, not {shown(symbol)}")
    return symbol.name


# -- lists ------------------------------------------------------------------------------------


@_core("list")
def _makelist_arg(*items: Value) -> Value:
    return items


@_core("cons", least=2, most=2)
def _cons(head: Value, tail: Value) -> Value:
    if not isinstance(tail, tuple):
        raise BuiltinError(f"cons onto {shown(tail)}: pairs that are not lists are not supported")
    return bounded_list((head, *tail), "cons")


@_core("car", least=1, most=1)
def _car(pair: Value) -> Value:
    items = list_arg(pair, "car")
    if not items:
        raise BuiltinError("car of the empty list")
    return items[0]


@_core("cdr", least=1, most=1)
def _cdr(pair: Value) -> Value:
    items = list_arg(pair, "cdr")
    if not items:
        raise BuiltinError("cdr of the empty list")
    return items[1:]


@_core("cadr", least=1, most=1)
def _cadr(pair: Value) -> Value:
    items = list_arg(pair, "cadr")
    if len(items) < 2:
        raise BuiltinError(f"cadr of a list of {len(items)}")
    return items[1]


@_core("length", least=1, most=1)
def _length(value: Value) -> Value:
    return len(list_arg(value, "length"))


@_core("append")
def _append(*lists: Value) -> Value:
    return bounded_list(tuple(v for items in lists for v in list_arg(items, "append")), "append")


@_core("reverse", least=1, most=1)
def _reverse(value: Value) -> Value:
    return tuple(reversed(list_arg(value, "reverse")))


@_core("member", least=2, most=2)
def _member(value: Value, items: Value) -> Value:
    found = list_arg(items, "member")
    for index, item in enumerate(found):
        if equal(value, item):
            return found[index:]
    return False


@_core("assoc", least=2, most=2)
def _assoc(key: Value, alist: Value) -> Value:
    for entry in list_arg(alist, "assoc"):
        if not isinstance(entry, tuple) or not entry:
            raise BuiltinError(f"assoc: {shown(entry)} is not a list with a key")
        if equal(key, entry[0]):
            return entry
    return False


@calling(_REGISTRY, "map", least=2)
def _map(call: Call, procedure: Value, *lists: Value) -> Value:
    function = procedure_arg(procedure, "map")
    columns = [list_arg(items, "map") for items in lists]
    return tuple(call.apply(function, args) for args in zip(*columns, strict=False))


@calling(_REGISTRY, "for-each", least=2)
def _for_each(call: Call, procedure: Value, *lists: Value) -> Value:
    function = procedure_arg(procedure, "for-each")
    for args in zip(*(list_arg(items, "for-each") for items in lists), strict=False):
        call.apply(function, args)
    return UNSPECIFIED


@calling(_REGISTRY, "filter", least=2, most=2)
def _filter(call: Call, procedure: Value, items: Value) -> Value:
    function = procedure_arg(procedure, "filter")
    return tuple(
        item for item in list_arg(items, "filter") if is_true(call.apply(function, [item]))
    )


@calling(_REGISTRY, "apply", least=2)
def _apply(call: Call, procedure: Value, *args: Value) -> Value:
    *single, last = args
    return call.apply(procedure_arg(procedure, "apply"), [*single, *list_arg(last, "apply")])


# -- kinds ------------------------------------------------------------------------------------

_PREDICATES: Final[Mapping[str, Callable[[Value], bool]]] = {
    "number?": is_number,
    "string?": lambda value: isinstance(value, str),
    "symbol?": lambda value: isinstance(value, Symbol),
    "list?": lambda value: isinstance(value, tuple),
    "pair?": lambda value: isinstance(value, tuple) and bool(value),
    "null?": lambda value: isinstance(value, tuple) and not value,
}
for _name, _predicate in _PREDICATES.items():
    _REGISTRY[_name] = Builtin(_name, _predicate, 1, 1)

# -- equality ---------------------------------------------------------------------------------

_REGISTRY["eq?"] = Builtin("eq?", eqv, 2, 2)
_REGISTRY["eqv?"] = Builtin("eqv?", eqv, 2, 2)
_REGISTRY["equal?"] = Builtin("equal?", equal, 2, 2)


@_core("not", least=1, most=1)
def _not(value: Value) -> Value:
    return value is False


# -- hash tables ------------------------------------------------------------------------------


@_core("hash-table-keys", least=1, most=1)
def _hash_table_keys(table: Value) -> Value:
    if not isinstance(table, HashTable):
        raise BuiltinError(f"hash-table-keys needs a hash table, not {shown(table)}")
    return tuple(table.entries)


CORE: Final[Mapping[str, Value]] = MappingProxyType(_REGISTRY)
"""The pure builtins, by name."""
