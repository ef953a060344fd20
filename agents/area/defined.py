"""What an area defines before any run exists: its targets and its tests.

:func:`defined_targets` reads runconfigs.config once, as ``megatest -list-targets`` does
(its sections, wildcard sections applied and left out by the reader); the values of a
section are counted, and its ``TESTPATT`` (or ``[default]``'s) computed.
:func:`defined_tests` reads each testconfig as a run of a target would (or, with no
target, with no runconfig variables: ``#{rget}`` gives "" and a note); items that come
from ``[system …]`` commands are not made (they are made when a run has the test due).
"""

from collections.abc import Iterable

import attrs

from mtpkt.agents.area.config import Config, read_config
from mtpkt.agents.area.deferred import has_deferred_items
from mtpkt.agents.area.model import Area, RunConfig
from mtpkt.agents.area.testpatt import TestPatt

__all__ = ["DefinedTarget", "DefinedTest", "defined_targets", "defined_tests", "runconfigs"]


@attrs.frozen(kw_only=True)
class DefinedTarget:
    """A section of runconfigs.config."""

    target: str
    variables: int
    """The keys its section sets ([default]'s not counted)."""
    testpatt: str
    """Its ``TESTPATT`` (or ``[default]``'s), "" when neither sets one."""
    fits: bool
    """It has one part per ``[fields]`` key: a run can have it as its target."""


@attrs.frozen(kw_only=True)
class DefinedTest:
    """A test of the area, read without a run."""

    name: str
    items: int | None
    """How many items its ``[items]``/``[itemstable]`` make (0: none, a ZERO_ITEMS test;
    1 with ``itemized`` False: a plain test); None: made by a command when it is due."""
    itemized: bool
    waiton: tuple[str, ...]
    priority: int
    tags: tuple[str, ...]
    description: str


def runconfigs(area: Area) -> Config | None:
    """runconfigs.config read without a target (None when the area has none).

    Raises:
        AreaError: it cannot be read.
    """
    path = area.home / "runconfigs.config"
    if not path.is_file():
        return None
    config, _ = read_config(path, env=area.env, cwd=area.home, scheme=area.scheme_context())
    return config


def defined_targets(area: Area) -> list[DefinedTarget]:
    """The targets runconfigs.config has a section for, sorted (``[default]`` left out).

    Raises:
        AreaError: runconfigs.config cannot be read, or a TESTPATT cannot be computed.
    """
    config = runconfigs(area)
    if config is None:
        return []
    found = []
    for name in sorted(config.sections):
        if name == "default":
            continue
        entry = config.find_var((name, "default"), "TESTPATT")
        found.append(
            DefinedTarget(
                target=name,
                variables=len(config.keys(name)),
                testpatt="" if entry is None else config.resolve(entry, env=area.env),
                fits=_fits(area, name),
            )
        )
    return found


def _fits(area: Area, target: str) -> bool:
    parts = target.split("/")
    return len(parts) == len(area.fields) and all(parts)


def defined_tests(area: Area, testpatt: str = "%", target: str | None = None) -> list[DefinedTest]:
    """The area's tests that ``testpatt`` names, by name.

    Args:
        area: the area.
        testpatt: which tests (their item patterns are not applied: no items are made).
        target: read the testconfigs with this target's runconfig variables.

    Raises:
        AreaError: the testpatt is wrong or names no test, the target does not fit, or a
            testconfig cannot be read.
    """
    patt = TestPatt.parse(testpatt)
    patt.check_tests(area.test_names())
    if target is None:
        runconfig = RunConfig("", Config(path=str(area.home / "runconfigs.config")), area.env)
    else:
        runconfig = area.runconfig(target)
    names = [name for name in area.test_names() if patt.may_match_test(name)]
    return [_test(area, name, runconfig) for name in names]


def _test(area: Area, name: str, runconfig: RunConfig) -> DefinedTest:
    test = area.testconfig(name, runconfig, runconfig.env)
    meta = test.meta()
    items = None if has_deferred_items(test) else test.items(runconfig.env, test.directory)
    return DefinedTest(
        name=name,
        items=None if items is None else len(items),
        itemized=items is None or any(item.path for item in items) or not items,
        waiton=tuple(test.waiton()),
        priority=test.priority(),
        tags=_words(meta.get("tags", "").split(",")),
        description=" ".join(meta.get("description", "").split()),
    )


def _words(parts: Iterable[str]) -> tuple[str, ...]:
    return tuple(part.strip() for part in parts if part.strip())
