"""Megatest's test data: rows read from CSV, and each row's verdict.

A step reports measurements with ``megatest -load-test-data`` (CSV on stdin),
``megatest -test-status … :value V :expected_value E :tol T …`` or a logpro
``.dat`` file. Each becomes a :class:`DataRow`, and each row one
:class:`~mtpkt.pkts.status.TestData` packet. The rules are ``db.scm``'s
``db:csv->test-data`` (db.scm:3370-3425):

* A CSV row is ``category, variable, value, expected, tol, units, comment,
  status, type``; cells are stripped of surrounding blanks and missing cells
  are empty. A header row is data like any other, as in Megatest.
* A row's own ``status`` wins unless it is blank or ``n/a``.
* Otherwise, when value and expected are both numbers: a numeric ``tol``
  passes ``expected - tol <= value <= expected + tol``; a ``tol`` of ``>``,
  ``<``, ``>=`` or ``<=`` passes ``value OP expected``; any other ``tol``
  gives ``ERROR: bad tol comparator <tol>``. Verdicts are ``pass`` and
  ``fail``, in Megatest's lower case.
* Otherwise the row has no verdict (an empty status).

Unlike Megatest, a row whose expected, tol and units are all empty does not
borrow them from an earlier run's row (``tdb:get-prev-tol-for-test``), and
CSV that Megatest's reader would take apart silently (an unclosed quote, a row
of more than nine cells, a row without a variable) is refused with one line.
"""

import csv
import io
import operator
import re
from collections.abc import Callable
from typing import Final

import attrs

__all__ = ["COLUMNS", "DataError", "DataRow", "parse_number", "read_csv", "row_status"]

COLUMNS: Final = (
    "category",
    "variable",
    "value",
    "expected",
    "tol",
    "units",
    "comment",
    "status",
    "type",
)
"""The CSV columns of ``megatest -load-test-data``, in order."""

_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_COMPARATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


class DataError(ValueError):
    """Test data that cannot be read; the message is one line and names the row."""


def parse_number(text: str) -> float | None:
    """The number ``text`` spells as a Scheme decimal (``1.2``, ``-3``, ``1e9``), else None."""
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def row_status(value: str, expected: str, tol: str, status: str = "") -> str:
    """The verdict of one row, as ``db:csv->test-data`` decides it (see the module docstring)."""
    given = status.strip()
    if given and given != "n/a":
        return given
    measured, wanted = parse_number(value), parse_number(expected)
    if measured is None or wanted is None:
        return ""
    tolerance = parse_number(tol)
    if tolerance is not None:
        good = wanted - tolerance <= measured <= wanted + tolerance
    elif (compare := _COMPARATORS.get(tol.strip())) is not None:
        good = compare(measured, wanted)
    else:
        return f"ERROR: bad tol comparator {tol.strip()}"
    return "pass" if good else "fail"


@attrs.frozen
class DataRow:
    """One measurement of a test, its cells as text, and its verdict in :attr:`status`."""

    category: str
    variable: str
    value: str = ""
    expected: str = ""
    tol: str = ""
    units: str = ""
    comment: str = ""
    status: str = ""
    type: str = ""

    @classmethod
    def judged(cls, *cells: str) -> "DataRow":
        """A row of up to nine cells (missing ones empty), its status by :func:`row_status`.

        Raises:
            DataError: more than nine cells.
        """
        if len(cells) > len(COLUMNS):
            raise DataError(f"{len(cells)} cells, test data has {len(COLUMNS)} columns")
        padded = [cell.strip() for cell in cells] + [""] * (len(COLUMNS) - len(cells))
        row = cls(*padded)
        return attrs.evolve(row, status=row_status(row.value, row.expected, row.tol, row.status))


def read_csv(text: str) -> list[DataRow]:
    """The rows of ``megatest -load-test-data`` input; blank lines are skipped.

    Raises:
        DataError: an unclosed quote, a NUL, more than nine cells or no variable,
            naming the line.
    """
    rows: list[DataRow] = []
    reader = csv.reader(io.StringIO(text), strict=True, skipinitialspace=True)
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) < 2 or not cells[1].strip():
                raise DataError(f"line {reader.line_num}: no variable (need category,variable,…)")
            try:
                rows.append(DataRow.judged(*cells))
            except DataError as error:
                raise DataError(f"line {reader.line_num}: {error}") from None
    except csv.Error as error:
        raise DataError(f"line {reader.line_num}: bad CSV: {error}") from None
    return rows
