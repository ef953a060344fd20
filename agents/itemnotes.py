"""The items a home made for a deferred test, noted for a restarted home and for the agents.

A test whose ``[items]`` come from ``[system …]`` commands gets them when it
comes up to run (:mod:`~mtpkt.agents.area.deferred`); the home makes them
(:mod:`~mtpkt.agents.home.expansions`) and notes them in
``<area>/.mtpkt/items/<launch id>/<test>.json`` before their records are
committed::

    {"items": [[["NUMNUM", "1"]], [["NUMNUM", "2"]]], "error": "", "seq": 412}

``seq`` is that of the last of the home's packets recording them (null when
none was: every item left alone). A restarted home reads it to give the
launch the same items (committed or not, the records say the rest); a host
agent given a task of that launch reads it to run the same items, with the
same variables, whatever the commands would say now (Megatest too hands a
test's process the item it expanded, runs.scm:1527-1540). A note goes with
its launch once the launch has settled.
"""

import json
import logging
import shutil
from pathlib import Path

import attrs

from mtpkt.agents.area.items import Item
from mtpkt.store.files import atomic_write

__all__ = ["ItemNote", "ItemNotes"]

_log = logging.getLogger(__name__)


@attrs.frozen
class ItemNote:
    """The items made for a test of a launch."""

    items: tuple[Item, ...]
    error: str = ""
    """Why no items could be made ("" when they were)."""
    seq: int | None = None
    """The seq of the last of the home's packets recording them (None: none)."""


class ItemNotes:
    """The notes of an area (``<area>/.mtpkt/items``).

    Args:
        directory: the notes' directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, launch: bytes, test: str) -> Path:
        return self.directory / launch.hex() / f"{test}.json"

    def write(self, launch: bytes, test: str, note: ItemNote) -> None:
        """Write a note (atomically). One that cannot be written is logged: it costs only
        the items' second making, should the home restart, or an agent's own."""
        data = {
            "items": [[list(pair) for pair in item.variables] for item in note.items],
            "error": note.error,
            "seq": note.seq,
        }
        path = self.path(launch, test)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(data).encode(), mode=0o600)
        except OSError as exc:
            _log.warning("cannot note the items of %s: %s", test, exc)

    def read(self, launch: bytes, test: str) -> ItemNote | None:
        """The note of a test of a launch; None when there is none (or it cannot be read,
        which is logged)."""
        path = self.path(launch, test)
        try:
            data = json.loads(path.read_bytes())
            items = tuple(
                Item(tuple((str(key), str(value)) for key, value in item)) for item in data["items"]
            )
            seq = data["seq"]
            return ItemNote(items, str(data["error"]), seq if isinstance(seq, int) else None)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning("%s: unreadable, the items of %s are made again: %s", path, test, exc)
            return None

    def forget(self, launch: bytes) -> None:
        """A launch settled: its notes go."""
        shutil.rmtree(self.directory / launch.hex(), ignore_errors=True)
