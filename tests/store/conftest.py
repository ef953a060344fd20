"""Fixtures of the store tests: stores in tmp_path, closed at the end."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.store import HistoryReader, Store
from tests.support.storekit import FIELDS, MakeReader, MakeStore


@pytest.fixture
def dbdir(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def make_store(dbdir: Path) -> Iterator[MakeStore]:
    """``make_store(fields=FIELDS, durable=False, path=dbdir)``; all are closed at the end."""
    made: list[Store] = []

    def make(
        fields: tuple[str, ...] = FIELDS, *, durable: bool = False, path: Path = dbdir
    ) -> Store:
        store = Store(path, fields, durable=durable)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def make_reader(dbdir: Path) -> Iterator[MakeReader]:
    """``make_reader(path=dbdir)``; every reader is closed at the end."""
    made: list[HistoryReader] = []

    def make(path: Path = dbdir) -> HistoryReader:
        reader = HistoryReader(path)
        made.append(reader)
        return reader

    yield make
    for reader in made:
        reader.close()
