"""The one error type of the store."""

__all__ = ["StoreError"]


class StoreError(Exception):
    """A store operation failed; ``str(error)`` is one line saying what and where.

    For example: disk full or unwritable, database locked, a ``main.db`` made
    with other ``[fields]``, a schema newer than this code, a target that does
    not fit the fields. The method that raised it says what was left behind.
    """
