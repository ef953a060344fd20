"""The errors of the transport."""

__all__ = ["BusError", "BusTimeout"]


class BusError(Exception):
    """A transport failure; ``str(error)`` is one line naming the address."""


class BusTimeout(BusError):
    """No reply within the time allowed (also what a peer that is down looks like)."""
