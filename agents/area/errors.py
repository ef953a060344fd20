"""The one base class of every error an area raises: catch it to report one clear line."""

__all__ = ["AreaError"]


class AreaError(ValueError):
    """Something in the area, a target, a testpatt or a path is wrong; ``str()`` is one line."""
