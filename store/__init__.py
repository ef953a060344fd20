"""Per-run SQLite databases (``main.db``, ``<run_id>.db``) written through apsw.

One process writes a store directory: the collector inside ``mtpkt home``,
through :class:`Store`. ``main.db`` holds the runs, the control journal, the
agent registry, each origin's last status seq and the Ack history;
``<run_id>.db`` holds one run's tests, steps and status history. Table and
column names are Megatest's. Other threads read the history through a
:class:`HistoryReader` of their own; other processes query the databases read-only
through a :class:`StoreQuery`::

    with store.Store(area / ".mtpkt" / "db", ["os", "arch"]) as db:
        for seq, packet in db.apply(batch):  # committed: now ack and publish
            ...
"""

from mtpkt.store.errors import StoreError as StoreError
from mtpkt.store.query import StoreQuery as StoreQuery
from mtpkt.store.reader import HistoryReader as HistoryReader
from mtpkt.store.rows import AgentRow as AgentRow
from mtpkt.store.rows import ArchiveListRow as ArchiveListRow
from mtpkt.store.rows import ArchiveRow as ArchiveRow
from mtpkt.store.rows import JournalRow as JournalRow
from mtpkt.store.rows import RunRow as RunRow
from mtpkt.store.rows import StepRow as StepRow
from mtpkt.store.rows import TestDataRow as TestDataRow
from mtpkt.store.rows import TestRow as TestRow
from mtpkt.store.store import Store as Store

__all__ = [
    # Writing
    "Store",
    # Reading from other threads
    "HistoryReader",
    # Reading from other processes, read-only (mtpkt runs, tests, agents)
    "StoreQuery",
    # Rows returned by queries
    "AgentRow",
    "ArchiveListRow",
    "ArchiveRow",
    "JournalRow",
    "RunRow",
    "StepRow",
    "TestDataRow",
    "TestRow",
    # Errors
    "StoreError",
]
