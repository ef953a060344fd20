"""Which records are test instances: an itemized test's toplevel record only sums up its
items, so the items count and it does not.

``send --wait``, ``tail --until-done``, the live view and the report count
alike with :class:`Itemized`; ``mtpkt runs`` counts by the same rule in SQL
(:mod:`mtpkt.store.query`).
"""

from collections.abc import Iterable

import attrs

__all__ = ["Itemized"]


@attrs.define
class Itemized:
    """The tests known to have items, learnt record by record."""

    tests: set[str] = attrs.field(factory=set)

    @classmethod
    def of(cls, keys: Iterable[tuple[str, str]]) -> "Itemized":
        """The tests with items among ``(test, item)`` records."""
        return cls({test for test, item in keys if item})

    def add(self, test: str, item: str) -> bool:
        """Take note of a ``(test, item)`` record; whether it is the first item of its test
        (whose toplevel record stops counting now)."""
        if not item or test in self.tests:
            return False
        self.tests.add(test)
        return True

    def counts(self, test: str, item: str) -> bool:
        """Whether the ``(test, item)`` record is a test instance: an item, or a test
        without items."""
        return bool(item) or test not in self.tests
