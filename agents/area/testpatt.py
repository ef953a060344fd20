"""Megatest's ``testpatt``: which tests and items a command applies to.

A testpatt is a comma-separated list of ``test/itempath`` patterns where ``%``
matches any text (``_`` is literal). A pattern without ``/`` takes every item
of the test; ``test/`` takes only its toplevel record. A pattern starting with
``~`` removes what it matches from the selection.
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from mtpkt.agents.area.errors import AreaError

__all__ = ["SelectionError", "TestPatt", "any_of", "glob"]


class SelectionError(AreaError):
    """A testpatt that is malformed or names no test of the area (message is one line)."""


def glob(pattern: str) -> re.Pattern[str]:
    """A testpatt's test or item part as a regular expression to match whole names."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.DOTALL)


def any_of(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Whether a word (a state, a status) matches one of ``patterns`` (``%`` the wildcard, as
    Megatest's ``:state``/``:status`` lists); with no pattern, every word does."""
    compiled = [glob(pattern) for pattern in patterns]
    return lambda word: not compiled or any(regex.fullmatch(word) for regex in compiled)


@attrs.frozen
class _Pattern:
    text: str
    test: re.Pattern[str]
    item: re.Pattern[str]
    exclude: bool

    def matches(self, test: str, item: str) -> bool:
        return bool(self.test.fullmatch(test) and self.item.fullmatch(item))


@attrs.frozen
class TestPatt:
    """A parsed testpatt."""

    __test__ = False  # not a pytest test class, despite the name

    text: str
    patterns: tuple[_Pattern, ...]

    @classmethod
    def parse(cls, text: str) -> "TestPatt":
        """Parse a testpatt.

        Raises:
            SelectionError: it is empty or has an empty pattern.
        """
        if not text.strip():
            raise SelectionError("the testpatt is empty: use % for every test")
        patterns = []
        for raw in text.split(","):
            part = raw.strip()
            exclude = part.startswith("~")
            part = part.removeprefix("~")
            if not part:
                raise SelectionError(f"testpatt {text!r} has an empty pattern")
            test, slash, item = part.partition("/")
            patterns.append(
                _Pattern(raw.strip(), glob(test), glob(item if slash else "%"), exclude)
            )
        return cls(text, tuple(patterns))

    def matches(self, test: str, item: str = "") -> bool:
        """Whether the instance ``test``/``item`` is selected."""
        chosen = False
        for pattern in self.patterns:
            if pattern.matches(test, item):
                chosen = not pattern.exclude
        return chosen

    def may_match_test(self, test: str) -> bool:
        """Whether some item of ``test`` could be selected (before items are known)."""
        return any(not p.exclude and p.test.fullmatch(test) for p in self.patterns)

    def check_tests(self, known: Iterable[str]) -> None:
        """Every pattern must name at least one known test.

        Raises:
            SelectionError: a pattern matches no test of the area; the line names it.
        """
        names = sorted(known)
        for pattern in self.patterns:
            if not any(pattern.test.fullmatch(name) for name in names):
                raise SelectionError(
                    f"testpatt {pattern.text!r} matches no test of the area"
                    f" (tests: {_listed(names) if names else 'none'})"
                )

    def check_items(
        self, items: Mapping[str, Sequence[str]], *, unknown: Iterable[str] = ()
    ) -> None:
        """Every pattern with an item part must select an item of a test it names.

        Megatest marks such a test ``NOT_STARTED/ZERO_ITEMS`` (runs.scm:1496-1500) and
        runs only its prerequisites; mtpkt refuses the run instead, as it refuses a
        test name that matches nothing, so a typo is not a quiet empty run.

        Args:
            items: the item paths of each test the testpatt names ("" for a test
                without items; none for one whose sections give no items).
            unknown: tests whose items are made later (:mod:`~mtpkt.agents.area.deferred`):
                a pattern naming one of them is not checked.

        Raises:
            SelectionError: a pattern's item part matches no item; the line lists them.
        """
        later = list(unknown)
        for pattern in self.patterns:
            if pattern.exclude or "/" not in pattern.text:
                continue
            if any(pattern.test.fullmatch(name) for name in later):
                continue
            named = {name: paths for name, paths in items.items() if pattern.test.fullmatch(name)}
            if any(pattern.item.fullmatch(path) for paths in named.values() for path in paths):
                continue
            shown = "; ".join(
                f"{name}: {_listed([path or '(none: not itemized)' for path in paths])}"
                for name, paths in sorted(named.items())
            )
            raise SelectionError(
                f"testpatt {pattern.text!r} matches no item of the tests it names ({shown})"
            )


def _listed(names: Sequence[str]) -> str:
    return (", ".join(names[:12]) + (" …" if len(names) > 12 else "")) or "no items"
