"""The long-lived roles: the host agent that runs tests, the collector and dispatcher of a home."""

__all__: list[str] = []
