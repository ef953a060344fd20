"""``megatest -run … -tagexpr tag1,tag2%``: the tests whose ``[test_meta] tags`` match.

Megatest ANDs the run's test pattern with the tests that have a tag matching one of the
expression's ``%`` patterns (runs.scm:397-401, 2407-2415; a test's tags are the
comma-separated words of its ``[test_meta] tags``, e.g. fullrun's runfirst:
``tags first,single``). Here the test pattern is narrowed to those tests, each pattern
kept for its items: ``%/ai`` with tests ``a`` and ``b`` tagged becomes ``a/ai,b/ai``.
"""

from mtpkt.agents.area import Area
from mtpkt.agents.area.testpatt import glob

__all__ = ["TagError", "narrow", "tagged_tests"]


class TagError(ValueError):
    """The tag expression selects no test the pattern selects; the message is one line."""


def tagged_tests(area: Area, target: str, runname: str, tagexpr: str) -> list[str]:
    """The area's tests with a ``[test_meta] tags`` word matching one of ``tagexpr``'s
    comma-separated ``%`` patterns, read as the run reads their testconfigs.

    Raises:
        AreaError: a config cannot be read.
    """
    patterns = [glob(word.strip()) for word in tagexpr.split(",") if word.strip()]
    runconfig = area.runconfig(target, runname)
    found = []
    for name in area.test_names():
        tags = area.testconfig(name, runconfig, runconfig.env).config.get("test_meta", "tags")
        words = [word.strip() for word in (tags or "").split(",") if word.strip()]
        if any(pattern.fullmatch(word) for pattern in patterns for word in words):
            found.append(name)
    return found


def narrow(testpatt: str, tests: list[str], tagexpr: str) -> str:
    """``testpatt`` restricted to ``tests``, each of its patterns kept for their items.

    Raises:
        TagError: nothing is left.
    """
    kept: list[str] = []
    excluded: list[str] = []
    for raw in testpatt.split(","):
        part = raw.strip()
        if part.startswith("~"):
            excluded.append(part)
            continue
        test, slash, item = part.partition("/")
        chosen = [name for name in tests if glob(test).fullmatch(name)]
        kept += [f"{name}{slash}{item}" for name in chosen]
    if not kept:
        raise TagError(f"-tagexpr {tagexpr} selects no test that -testpatt {testpatt} selects")
    return ",".join(dict.fromkeys([*kept, *excluded]))
