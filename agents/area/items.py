"""Item expansion: the variations an itemized test runs as, as Megatest makes them.

``[items]`` gives, per variable, a space-separated list of values; every
combination is an item, the first variable varying slowest
(``process-itemlist``, items.scm:22-38). ``[itemstable]`` gives columns that
are read row by row, a short column giving ``-`` (``item-table->item-list``,
items.scm:77-110). When a test has both, the table's rows are *appended* to the
combinations (``items:get-items-from-config``, items.scm:139-142): ``4``
seasons and a ``2``-row table make ``6`` items, not ``8``, and the rows have
only the table's variables.

A variable with no values makes no combination at all, so ``[items] FOO``
alone gives a test with no items, which Megatest records
``NOT_STARTED/ZERO_ITEMS`` (runs.scm:773). A section with no keys at all
counts as absent: the test runs once, as a plain test (items.scm:139-142).

An item's path is its values joined with ``/`` in variable order, e.g.
``summer`` or ``a/1``.
"""

import itertools
from collections.abc import Sequence

import attrs

__all__ = ["Columns", "Item", "combine", "cross_product", "table_rows"]

Columns = Sequence[tuple[str, Sequence[str]]]
"""A section's variables in order, each with its values (already computed)."""


@attrs.frozen
class Item:
    """One item: its variables in order."""

    variables: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        """The item path; empty for a test without items."""
        return "/".join(value for _, value in self.variables)


def cross_product(columns: Columns) -> list[Item]:
    """Every combination of the values of ``[items]`` variables, first variable slowest."""
    names = [name for name, _ in columns]
    return [
        Item(tuple(zip(names, values, strict=True)))
        for values in itertools.product(*(values for _, values in columns))
    ]


def table_rows(columns: Columns) -> list[Item]:
    """The rows of an ``[itemstable]``; a short column gives ``-``."""
    length = max((len(values) for _, values in columns), default=0)
    return [
        Item(tuple((name, values[row] if row < len(values) else "-") for name, values in columns))
        for row in range(length)
    ]


def combine(items: Columns | None, table: Columns | None) -> list[Item]:
    """The items of a test from its ``[items]`` and ``[itemstable]`` columns (None, or no
    columns: the section is absent or has no keys).

    Returns:
        The ``[items]`` combinations followed by the ``[itemstable]`` rows; one empty
        item for a test with neither; ``[]`` when the sections name variables but
        give no item (Megatest's ZERO_ITEMS).
    """
    if not items and not table:
        return [Item()]
    return (cross_product(items) if items else []) + (table_rows(table) if table else [])
