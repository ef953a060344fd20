"""Per-run SQLite databases (``main.db``, ``<run_id>.db``) written through apsw."""

__all__: list[str] = []
