"""Item expansion: the variations an itemized test runs as.

``[items]`` gives, per variable, a space-separated list of values; every
combination is an item (the first variable varies slowest). ``[itemstable]``
gives columns that are read row by row (a short column is padded with
``-``). When a test has both, each ``[items]`` combination is run with each
``[itemstable]`` row, so ``4`` seasons and a ``2``-row table make ``8`` items.
(Megatest itself appends the table rows to the combinations instead.)

An item's path is its values joined with ``/`` in variable order, e.g.
``summer/a/1``.
"""

import itertools
from collections.abc import Sequence

import attrs

__all__ = ["Item", "combine", "cross_product", "table_rows"]


@attrs.frozen
class Item:
    """One item: its variables in order."""

    variables: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        """The item path; empty for a test without items."""
        return "/".join(value for _, value in self.variables)

    def __add__(self, other: "Item") -> "Item":
        return Item(self.variables + other.variables)


def cross_product(columns: Sequence[tuple[str, Sequence[str]]]) -> list[Item]:
    """Every combination of the values of ``[items]`` variables, first variable slowest."""
    names = [name for name, _ in columns]
    return [
        Item(tuple(zip(names, values, strict=True)))
        for values in itertools.product(*(values for _, values in columns))
    ]


def table_rows(columns: Sequence[tuple[str, Sequence[str]]]) -> list[Item]:
    """The rows of an ``[itemstable]``; a short column gives ``-``."""
    length = max((len(values) for _, values in columns), default=0)
    return [
        Item(tuple((name, values[row] if row < len(values) else "-") for name, values in columns))
        for row in range(length)
    ]


def combine(items: list[Item] | None, table: list[Item] | None) -> list[Item]:
    """The items of a test from its ``[items]`` and ``[itemstable]`` (None: section absent).

    A test with neither has one instance, the empty item. A section that names
    variables but gives them no values yields no items at all.
    """
    if items == [] or table == []:
        return []
    return [left + right for left in items or [Item()] for right in table or [Item()]]
