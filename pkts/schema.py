"""Field checkers derived from the packet classes' own annotations.

The codec validates every field of every packet it reads (and writes)
against the attrs class that defines the kind, so the classes stay the one
description of the wire format.
"""

import enum
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import attrs

from mtpkt.pkts.envelope import Envelope

__all__ = ["FieldError", "KindSchema", "schema_of"]

Check = Callable[[object], object]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


class FieldError(ValueError):
    """A field value does not fit its declared type (message is one line)."""


def _type_name(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _check_str(value: object) -> object:
    if type(value) is str:
        return value
    raise FieldError(f"expected str, got {_type_name(value)}")


def _check_int(value: object) -> object:
    if type(value) is int:
        if INT_MIN <= value <= INT_MAX:
            return value
        raise FieldError(f"integer {value} outside the signed 64-bit range")
    raise FieldError(f"expected int, got {_type_name(value)}")


def _check_float(value: object) -> object:
    if type(value) is float:
        result = value
    elif type(value) is int:  # senders in other languages may write 5 for 5.0
        result = float(value)
    else:
        raise FieldError(f"expected float, got {_type_name(value)}")
    if math.isfinite(result):
        return result
    raise FieldError(f"expected a finite float, got {result}")


def _wire_version(value: object) -> int | None:
    """``value`` as a version to check first, or None when it is no valid ``v`` at all (its
    field check then names it): a 64-bit integer."""
    return value if type(value) is int and INT_MIN <= value <= INT_MAX else None


def _check_bool(value: object) -> object:
    if type(value) is bool:
        return value
    raise FieldError(f"expected bool, got {_type_name(value)}")


def _bytes_checker(size: int | None) -> Check:
    def check(value: object) -> object:
        if type(value) is not bytes:
            raise FieldError(f"expected bin, got {_type_name(value)}")
        if size is not None and len(value) != size:
            raise FieldError(f"expected {size} bytes, got {len(value)}")
        return value

    return check


def _enum_checker(enum_type: type[enum.Enum]) -> Check:
    members: dict[object, enum.Enum] = {member.value: member for member in enum_type}
    allowed = ", ".join(repr(value) for value in members)

    def check(value: object) -> object:
        # A StrEnum member hashes like its value, so members pass as well as strings.
        if type(value) is str or isinstance(value, enum_type):
            try:
                return members[value]
            except KeyError:
                pass
        shown = repr(value) if isinstance(value, str) else _type_name(value)
        raise FieldError(f"{shown} is not one of {allowed}")

    return check


def _optional_checker(inner: Check) -> Check:
    def check(value: object) -> object:
        return None if value is None else inner(value)

    return check


def _tuple_checker(inner: Check) -> Check:
    def check(value: object) -> object:
        if type(value) is not list and type(value) is not tuple:
            raise FieldError(f"expected array, got {_type_name(value)}")
        return tuple(inner(element) for element in typing.cast(Iterable[object], value))

    return check


_SCALARS: dict[object, Check] = {
    str: _check_str,
    int: _check_int,
    float: _check_float,
    bool: _check_bool,
}


def _checker(tp: Any, metadata: Mapping[Any, Any]) -> Check:
    """Build the checker for one annotation; only the types packets use are known."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if tp is bytes:
        return _bytes_checker(metadata.get("size"))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_checker(tp)
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) and len(args) == 2 and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return _optional_checker(_checker(inner, metadata))
    if typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_checker(_checker(args[0], metadata))
    raise TypeError(f"packet field type {tp!r} has no wire form")


# Inline tests for the common scalar types: when one fails, the field's full checker runs
# (it converts an int for a float, or raises the precise error).
_FAST_TESTS: dict[object, str] = {
    str: "type({x}) is not str",
    int: f"type({{x}}) is not int or not {INT_MIN} <= {{x}} <= {INT_MAX}",
    float: "type({x}) is not float or not isfinite({x})",
    bool: "type({x}) is not bool",
}


@attrs.frozen
class KindSchema:
    """How one packet kind is checked, read and written."""

    cls: type[Envelope]
    names: tuple[str, ...]
    checks: tuple[Check, ...]
    values: Callable[[Envelope], tuple[object, ...]]
    read: Callable[[Mapping[str, object]], Envelope]
    """Check a decoded map and build the packet from it (raises :class:`FieldError`)."""
    to_map: Callable[[Envelope], dict[str, object]]
    """The wire map of a packet, every field checked as on reading (raises :class:`FieldError`)."""
    to_row: Callable[[Envelope], list[object]]
    """The wire row of a packet (``[kind, v, id, …]``, the map's values in order), checked
    as :attr:`to_map` (raises :class:`FieldError`)."""

    since: tuple[int, ...] = ()
    """The version that added each field of :attr:`names` (a field's ``since`` metadata; 1
    when it has none)."""
    defaults: Mapping[str, object] = attrs.field(factory=dict)
    """The default of each field added after version 1, filled in for older packets."""

    @property
    def keys(self) -> tuple[str, ...]:
        """The names of a row's values: ``kind``, then the fields in declared order."""
        return ("kind", *self.names)

    def names_of(self, version: int) -> tuple[str, ...]:
        """The fields a packet of ``version`` has, in declared order."""
        pairs = zip(self.names, self.since, strict=True)
        return tuple(name for name, since in pairs if since <= version)

    def read_row(self, row: Sequence[object]) -> Envelope:
        """Check a decoded row and build the packet from it (raises :class:`FieldError`).

        A row of an older version has that version's fields only (see :meth:`read_older`).
        """
        if len(row) != len(self.names) + 1:
            version = _wire_version(row[1] if len(row) > 1 else None)
            if version is not None:
                self._check_version(version)
                if version < self.cls.VERSION and len(row) == len(self.names_of(version)) + 1:
                    keys = ("kind", *self.names_of(version))
                    return self.read(dict(zip(keys, row, strict=True)))
            raise FieldError(f"expected {len(self.names) + 1} values, got {len(row)}")
        return self.read(dict(zip(self.keys, row, strict=True)))

    def _check_version(self, version: int) -> None:
        """Refuse a version this build does not read, first: a newer sender's packet has
        fields this build does not know, and the version is what to tell it."""
        if not 1 <= version <= self.cls.VERSION:
            raise FieldError(
                f"unsupported version v={version} (this build reads v1..v{self.cls.VERSION})"
            )

    def read_older(self, fields: Mapping[str, object]) -> Envelope:
        """Read a map that the fast reader refused: an older version's, or a bad one.

        A packet of an older version (``1 <= v <`` the class's ``VERSION``) has
        exactly the fields of its version; it is read as a packet of the current
        version, the later fields at their defaults (``docs/packets.md``,
        "Versions and evolution").

        Raises:
            FieldError: the map is bad (see :meth:`explain`), or carries a field
                its version does not have.
        """
        version = fields.get("v")
        if type(version) is not int or not 1 <= version < self.cls.VERSION:
            self.explain(fields)
        assert isinstance(version, int)
        later = [name for name in self.names if name not in self.names_of(version)]
        for name in later:
            if name in fields:
                raise FieldError(f"field {name!r} is not in v{version} of {self.cls.kind!r}")
        upgraded = {**fields, **{name: self.defaults[name] for name in later}}
        upgraded["v"] = self.cls.VERSION
        return self.read(upgraded)

    def explain(self, fields: Mapping[str, object]) -> None:
        """Raise the :class:`FieldError` that names what is wrong with ``fields``.

        The slow path of :attr:`read`: only called once a map is known to be bad.
        """
        version = _wire_version(fields.get("v"))
        if version is not None:
            self._check_version(version)
        known = {"kind", *self.names}
        for name in fields:
            if name not in known:
                raise FieldError(f"unknown field {name!r}")
        for name, check in zip(self.names, self.checks, strict=True):
            if name not in fields:
                raise FieldError(f"missing field '{name}'")
            try:
                check(fields[name])
            except FieldError as exc:
                raise FieldError(f"field '{name}': {exc}") from None
        raise FieldError(f"cannot read {dict(fields)!r:.200}")  # not reached: read took it

    def explain_map(self, packet: Envelope) -> None:
        """Raise the :class:`FieldError` naming the field of ``packet`` that cannot be written.

        The slow path of :attr:`to_map`.
        """
        for name, check, value in zip(self.names, self.checks, self.values(packet), strict=True):
            try:
                check(value)
            except FieldError as exc:
                raise FieldError(f"field '{name}': {exc}") from None


def _inline_test(tp: Any, metadata: Mapping[Any, Any], x: str) -> str | None:
    """An inline test that is true when ``x`` needs its checker (to convert, or to raise)."""
    fast = _FAST_TESTS.get(tp)
    if fast is not None:
        return fast.format(x=x)
    if tp is bytes:
        size = metadata.get("size")
        return f"type({x}) is not bytes" + ("" if size is None else f" or len({x}) != {size}")
    return None


def _check_lines(fields: tuple[Any, ...], namespace: dict[str, Any]) -> list[str]:
    """Lines that check (and convert) ``f0``, ``f1`` … against their fields' types, in place.

    Scalars and bytes get an inline test and call their checker ``cN`` only
    when it fails; enums are looked up in their members ``mN`` (a miss raises
    KeyError or TypeError); an optional does the same for its type when not
    ``None``. Other types always go through their checker. The members'
    dicts are added to ``namespace``.
    """
    lines = []
    for index, field in enumerate(fields):
        x, indent, tp = f"f{index}", "        ", field.type
        args = typing.get_args(tp)
        if isinstance(tp, types.UnionType) and len(args) == 2 and type(None) in args:
            (tp,) = (arg for arg in args if arg is not type(None))
            lines.append(f"{indent}if {x} is not None:")
            indent += "    "
        fast = _inline_test(tp, field.metadata, x)
        if fast is not None:
            lines.append(f"{indent}if {fast}:")
            lines.append(f"{indent}    {x} = c{index}({x})")
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            # A StrEnum member hashes like its value: members and strings both find it.
            namespace[f"m{index}"] = {member.value: member for member in tp}
            lines.append(f"{indent}{x} = m{index}[{x}]")
        else:
            lines.append(f"{indent}{x} = c{index}({x})")
    return lines


def _reader_source(cls: type[Envelope], names: tuple[str, ...], checks: list[str]) -> str:
    """Source of a straight-line ``read(fields)`` for one kind.

    Decoding is the collector's hot path: one generated function per kind, with
    inline type tests, reads a map about twice as fast as a loop over checkers.
    Any fault sends the map to ``explain``, which raises the precise error.
    """
    lines = [
        "def read(fields):",
        f"    if len(fields) != {len(names) + 1}:",  # the map also holds "kind"
        "        return older(fields)",
        "    try:",
    ]
    lines += [f"        f{index} = fields[{name!r}]" for index, name in enumerate(names)]
    lines += checks
    version = names.index("v")
    lines += [
        f"        if f{version} != {cls.VERSION}:",  # older versions: read_older
        "            raise FieldError",
        "    except (KeyError, TypeError, FieldError):",
        "        return older(fields)",
    ]
    if _slotted(cls, names):
        # Frozen attrs classes refuse setattr; their slots' own descriptors do not, and
        # setting them directly builds the packet in about two thirds of __init__'s time.
        lines.append("    packet = new(cls)")
        lines += [f"    s{index}(packet, f{index})" for index in range(len(names))]
        if hasattr(cls, "__attrs_post_init__"):
            lines.append("    packet.__attrs_post_init__()")
        lines.append("    return packet")
    else:
        lines.append("    return cls(" + ", ".join(f"{n}=f{i}" for i, n in enumerate(names)) + ")")
    return "\n".join(lines)


def _slotted(cls: type[Envelope], names: tuple[str, ...]) -> bool:
    """Whether every field of ``cls`` is a slot (attrs' default), settable by descriptor."""
    return all(isinstance(getattr(cls, name, None), types.MemberDescriptorType) for name in names)


def _writer_source(
    cls: type[Envelope], names: tuple[str, ...], checks: list[str], *, row: bool = False
) -> str:
    """Source of a straight-line ``to_map(packet)`` (or ``to_row``) for one kind, checking
    like the reader."""
    lines = [f"def {'to_row' if row else 'to_map'}(packet):", "    try:"]
    lines += [f"        f{index} = packet.{name}" for index, name in enumerate(names)]
    lines += checks
    lines += [
        "    except (KeyError, TypeError, FieldError):",
        "        explain_map(packet)",
        "        raise",
    ]
    if row:
        values = ", ".join(f"f{i}" for i in range(len(names)))
        lines.append(f"    return [{cls.kind!r}, {values}]")
    else:
        lines.append(
            f"    return {{'kind': {cls.kind!r}, "
            + ", ".join(f"{name!r}: f{i}" for i, name in enumerate(names))
            + "}"
        )
    return "\n".join(lines)


def schema_of(cls: type[Envelope]) -> KindSchema:
    """Derive the :class:`KindSchema` of a packet class from its attrs fields."""
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    names = tuple(field.name for field in fields)
    checks = tuple(_checker(field.type, field.metadata) for field in fields)
    since = tuple(int(field.metadata.get("since", 1)) for field in fields)
    defaults: dict[str, object] = {}
    for field, added in zip(fields, since, strict=True):
        if added == 1:
            continue
        plain = isinstance(field.default, str | int | float | bytes | enum.Enum | types.NoneType)
        if not (1 < added <= cls.VERSION and plain):
            raise TypeError(f"{cls.kind}.{field.name}: since v{added} needs a plain default")
        defaults[field.name] = field.default
    namespace: dict[str, Any] = {
        "cls": cls,
        "new": object.__new__,
        "isfinite": math.isfinite,
        "FieldError": FieldError,
    }
    namespace.update({f"c{index}": check for index, check in enumerate(checks)})
    if _slotted(cls, names):
        namespace.update({f"s{i}": getattr(cls, name).__set__ for i, name in enumerate(names)})
    checks_source = _check_lines(tuple(fields), namespace)
    exec(
        compile(_reader_source(cls, names, checks_source), f"<reader of {cls.kind!r}>", "exec"),
        namespace,
    )
    for row in (False, True):
        exec(
            compile(
                _writer_source(cls, names, checks_source, row=row),
                f"<writer of {cls.kind!r}>",
                "exec",
            ),
            namespace,
        )
    schema = KindSchema(
        cls=cls,
        names=names,
        checks=checks,
        values=attrgetter(*names),
        read=namespace["read"],
        to_map=namespace["to_map"],
        to_row=namespace["to_row"],
        since=since,
        defaults=defaults,
    )
    namespace["older"] = schema.read_older  # looked up when the generated functions run
    namespace["explain_map"] = schema.explain_map
    return schema
