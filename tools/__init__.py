"""The ``mtpkt`` command line and the live terminal view."""

__all__: list[str] = []
