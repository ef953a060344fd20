"""Planning a run: which test instances it has, how each runs, and what waits on what.

A plan is made from the area's files alone (no bus, no database): the home's
dispatcher makes one when a ``run`` arrives, and a host agent plans a test
again to find how to run the instance a task names (:mod:`agents.host.plans`).
Each plan reads the area's files anew (megatest.config included) with the
run's command line (:class:`~mtpkt.agents.area.scheme.RunArgs`), so both
sides read them alike and an edited file takes effect at the next run.
"""

import functools
import graphlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from mtpkt.agents.area.config import ConfigError, Origin
from mtpkt.agents.area.configcache import ConfigRead, config_reads
from mtpkt.agents.area.deferred import has_deferred_items, left_out, make_items
from mtpkt.agents.area.disks import Disks, read_disks
from mtpkt.agents.area.environment import (
    LazyEnvironment,
    RunEnvironment,
    run_environment,
    shared_environment,
)
from mtpkt.agents.area.errors import AreaError
from mtpkt.agents.area.items import Item
from mtpkt.agents.area.job import StepSpec, TestJob, TestRef
from mtpkt.agents.area.model import Area, RunConfig, TestConfig
from mtpkt.agents.area.paths import instance_path, run_root
from mtpkt.agents.area.scheduling import Schedule, read_jobgroup, read_schedule
from mtpkt.agents.area.scheme import RunArgs
from mtpkt.agents.area.selection import Selection, itemmaps_of, select
from mtpkt.agents.area.skip import Skip, read_skip
from mtpkt.agents.area.testpatt import SelectionError, TestPatt
from mtpkt.agents.area.testrollup import rollup_command
from mtpkt.agents.area.verdicts import inline_logpro, read_waiver_rules, read_waivers
from mtpkt.agents.area.waiton import ItemMap, lookup_itemmap

__all__ = ["ZERO_ITEMS_COMMENT", "Instance", "Plan", "PlannedTest", "plan_run"]

_log = logging.getLogger(__name__)

ZERO_ITEMS_COMMENT = "This test has no items which match test pattern."
"""The comment Megatest leaves on a test with no items to run (runs.scm:1500)."""


@attrs.frozen
class Instance:
    """One test instance (a test, or one item of it) ready to be run."""

    ref: TestRef
    item: Item
    job: TestJob


@attrs.frozen
class PlannedTest:
    """A test of the run with its instances and requirements."""

    name: str
    waiton: tuple[str, ...]
    mode: frozenset[str]
    """Its ``[requirements] mode`` words (:mod:`~mtpkt.agents.area.waiton`)."""
    priority: int
    itemized: bool
    """Whether the test has items (and so a separate toplevel record)."""
    instances: tuple[Instance, ...]
    comment: str = ""
    """Why the test has no instances, when it has none."""
    meta: Mapping[str, str] = attrs.field(factory=dict)
    itemmap: ItemMap | None = None
    """The itemmap its items wait by (looked up by its own name, db.scm:4187)."""
    skip: Skip | None = None
    """Its ``[skip]`` rule (:mod:`~mtpkt.agents.area.skip`)."""
    jobgroup: str = ""
    """Its ``[test_meta] jobgroup`` (:mod:`~mtpkt.agents.area.scheduling`)."""
    deferred: bool = False
    """Its items come from ``[system …]`` commands: it has no instances until they are
    made, when it comes up to run (:meth:`Plan.expand`, :mod:`~mtpkt.agents.area.deferred`)."""


@attrs.frozen
class Plan:
    """Every test of one run, in an order where prerequisites come first."""

    target: str
    runname: str
    run_root: Path
    tests: Mapping[str, PlannedTest]
    max_jobs: int | None
    """``[setup] max_concurrent_jobs`` of the area."""
    env: Mapping[str, str] = attrs.field(factory=dict)
    """The run's environment (runconfig variables, ``MT_RUNPATH`` …), before any test's."""
    linktree: Path | None = None
    """``[setup] linktree`` as the plan read it."""
    configs: tuple[ConfigRead, ...] = ()
    """The config files the plan read (:mod:`~mtpkt.agents.area.configcache`)."""
    schedule: Schedule = attrs.field(factory=Schedule)
    """megatest.config's scheduling keys (:mod:`~mtpkt.agents.area.scheduling`)."""
    expander: "_Expander | None" = attrs.field(default=None, eq=False, repr=False)
    """What :meth:`expand` plans a deferred test with (None: a plan without any)."""

    def instances(self) -> list[Instance]:
        return [instance for test in self.tests.values() for instance in test.instances]

    def make_items(self, name: str) -> list[Item]:
        """Make the items of deferred test ``name``: its ``[system …]`` commands run now, in
        the run's directory and environment (:func:`~mtpkt.agents.area.deferred.make_items`).

        Raises:
            AreaError: a command failed (or the value needs what cannot be done).
        """
        return self._expander(name).make(name)

    def expand(self, name: str, items: Sequence[Item] | None = None) -> PlannedTest:
        """Deferred test ``name`` planned with its items: ``items`` as made before, or made
        now (:meth:`make_items`). None that the testpatt selects: no instances, and the
        ZERO_ITEMS comment.

        Raises:
            AreaError: the items cannot be made or planned.
        """
        expander = self._expander(name)
        return expander.plan(name, expander.make(name) if items is None else items)

    def unmade(self, name: str, reason: str) -> PlannedTest:
        """Deferred test ``name`` whose items could not be made: no instances, ``reason``
        its comment (and a warning). Megatest's ``[system]`` that fails gives its output,
        likely none, so no items: ZERO_ITEMS (configf.scm:396-406, runs.scm:766-773)."""
        _log.warning("run %s/%s: the items of %s: %s", self.target, self.runname, name, reason)
        return attrs.evolve(self.tests[name], deferred=False, comment=reason)

    def expansion(self, name: str) -> PlannedTest:
        """:meth:`expand`, or :meth:`unmade` when the items cannot be made."""
        try:
            return self.expand(name)
        except AreaError as exc:
            return self.unmade(name, str(exc))

    def _expander(self, name: str) -> "_Expander":
        if self.expander is None or not self.tests[name].deferred:
            raise ValueError(f"{name} is no deferred test of this plan")
        return self.expander

    def toplevel(self, test: str) -> TestRef:
        return TestRef(self.target, self.runname, test)


class _TestConfigs(dict[str, TestConfig]):
    """Testconfigs read on first use, each once."""

    def __init__(self, area: Area, runconfig: RunConfig, env: Mapping[str, str]) -> None:
        super().__init__()
        self.area, self.runconfig, self.env = area, runconfig, env

    def __missing__(self, name: str) -> TestConfig:
        self[name] = self.area.testconfig(name, self.runconfig, self.env)
        return self[name]


def plan_run(
    area: Area,
    target: str,
    runname: str,
    testpatt: str = "%",
    *,
    env: Mapping[str, str] | None = None,
    args: RunArgs | None = None,
) -> Plan:
    """Plan a run of the area, its files (megatest.config too) read anew for it.

    Args:
        area: the loaded area (its directory and environment are read again).
        target: e.g. ``ubuntu/nfs/none``; must fit the area's ``[fields]``.
        runname: the run's name.
        testpatt: which tests and items (Megatest syntax); their prerequisites come too.
        env: overrides the area's environment (tests see it plus Megatest's variables).
        args: the run's command line, as ``#{scheme (args:get-arg ...)}`` sees it
            (default: ``target``, ``runname`` and ``testpatt``); a host agent planning one
            test of a run gives the run's.

    Raises:
        AreaError: a config value needed for the plan is wrong or unsupported (the
            line names the file and line), the target does not fit, the testpatt names
            no test, a waiton names an unknown test or forms a cycle, or a name would
            leave the run tree, or the run directory cannot be made.
    """
    area = area.for_run(args or RunArgs(target, runname, testpatt))
    patt = TestPatt.parse(testpatt)
    patt.check_tests(area.test_names())
    root = run_root(area.linktree, target, runname)
    runconfig = area.runconfig(target, runname)
    try:
        root.mkdir(parents=True, exist_ok=True)  # [system] items run here
    except OSError as exc:  # the sender gets the reason at once, not a home that went quiet
        raise AreaError(
            f"cannot make the run directory {exc.filename or root}: {exc.strerror or exc}"
        ) from None
    run_env = run_environment(area, runconfig, runname, root, env)

    disks = read_disks(area.config, None, run_env.env, area.home)
    read = _TestConfigs(area, runconfig, run_env.env)
    itemmaps = _ItemMapsOf(read)
    chosen = select(patt, area.test_names(), read, itemmaps)
    order = _dependency_order(dict(chosen.waitons), read)
    notes = [runconfig.unmatched_note()] if runconfig.unmatched_note() else []
    for config in (area.config, runconfig.config, *(read[name].config for name in order)):
        notes += config.notes  # a skipped include or an unset variable: worth a line
    for note in [*notes, *chosen.notes]:
        _log.warning("%s", note)
    later = {name for name in order if has_deferred_items(read[name])}  # made when due
    items = {
        name: read[name].items(run_env.env, run_env.runpath) for name in order if name not in later
    }
    named = {name: [i.path for i in items[name]] for name in items if chosen.named(name)}
    patt.check_items(named, unknown=later)
    expander = _Expander(area, read, chosen, run_env, (target, runname, root), disks)
    tests = {
        name: expander.plan(name, items.get(name))
        for name in order
        if not (
            left_out(chosen, name)
            if name in later
            else chosen.excluded(name, [item.path for item in items[name]])
        )
    }
    if not tests:  # a ~ pattern took back everything the others named
        raise SelectionError(f"testpatt {testpatt!r} selects no test instance")
    configs = config_reads(area, runconfig, {name: read[name] for name in tests}, run_env.env, root)
    schedule = read_schedule(area.config, run_env.env, area.home)
    return Plan(
        target,
        runname,
        root,
        tests,
        area.max_concurrent_jobs,
        run_env.env,
        area.linktree,
        configs,
        schedule,
        expander=expander,
    )


@attrs.frozen(eq=False)
class _Expander:
    """What planning a test takes, kept for deferred tests planned when they are due."""

    area: Area
    read: Mapping[str, TestConfig]
    chosen: Selection
    run_env: RunEnvironment
    run: tuple[str, str, Path]
    disks: Disks | None

    def plan(self, name: str, items: Sequence[Item] | None) -> PlannedTest:
        """Plan test ``name`` with ``items``; None: deferred, without instances until its
        items are made."""
        test = self.read[name]
        return _plan_test(self.area, test, items, self.chosen, self.run_env, self.run, self.disks)

    def make(self, name: str) -> list[Item]:
        """Make the items of deferred test ``name`` (see :meth:`Plan.expand`)."""
        return make_items(self.read[name], self.run_env.env, self.run_env.runpath)


class _ItemMapsOf(dict[str, list[tuple[str, ItemMap]]]):
    """Each test's itemmaps, compiled on first use."""

    def __init__(self, read: Mapping[str, TestConfig]) -> None:
        super().__init__()
        self.read = read

    def __missing__(self, name: str) -> list[tuple[str, ItemMap]]:
        self[name] = itemmaps_of(self.read[name])
        return self[name]


def _plan_test(
    area: Area,
    test: TestConfig,
    made: Sequence[Item] | None,
    chosen: Selection,
    run_env: RunEnvironment,
    run: tuple[str, str, Path],
    area_disks: Disks | None,
) -> PlannedTest:
    """Plan one test's instances from its items (``made``; None: deferred, none until
    they are made); ``run`` is the target, the run name and the run's checked directory
    (:func:`run_root`); ``area_disks`` megatest.config's ``[disks]``."""
    items = made or []
    target, runname, root = run
    disks = area_disks
    if test.config.has("disks"):  # a testconfig's [disks] replace the area's (launch.scm:1112)
        disks = read_disks(area.config, test.config, run_env.env, test.directory)
    roots = disks.roots() if disks is not None else []
    ezsteps = bool(test.config.keys("ezsteps"))  # else the one step is the runscript
    env, cwd = run_env.env, test.directory
    steps = tuple(  # logpro judges ezsteps only (launch.scm:80-114), never a runscript
        StepSpec(
            step.name,
            step.command,
            ezsteps,
            logpro=inline_logpro(test.config, step.name, env, cwd) if ezsteps else None,
        )
        for step in test.steps()
    )
    waivers = read_waivers(test.config, env, cwd)
    waiver_rules = read_waiver_rules(test.config, env, cwd) if waivers else {}
    runtimelim = test.runtimelim(area.runtimelim)
    itemized = any(item.path for item in items)
    rollup = rollup_command(area.config, test.name, run_env.env, area.home) if itemized else ""
    shared = shared_environment(run_env, test)  # its errors now, at planning
    instances = []
    linktree = area.linktree
    for item in items:
        path = item.path
        if not chosen.selects(test.name, path):
            continue
        ref = TestRef(target, runname, test.name, path)
        directory = instance_path(root, linktree, test.name, path, roots)
        job = TestJob(
            ref=ref,
            rundir=directory,
            source_dir=test.directory,
            steps=steps,
            env=LazyEnvironment(functools.partial(shared.instance, item, directory, runtimelim)),
            runtimelim=runtimelim,
            disks=disks,
            rollup=rollup,
            waivers=waivers,
            waiver_rules=waiver_rules,
            blacklistvars=run_env.blacklistvars,
        )
        instances.append(Instance(ref, item, job))
    comment = ""
    if not instances and made is not None:
        comment = ZERO_ITEMS_COMMENT
        if not items:  # worth a line in the log: where the empty item list comes from
            section = "items" if test.config.keys("items") else "itemstable"
            entry = test.config.entry(section, test.config.keys(section)[0])
            where = entry.origin if entry else test.path
            _log.warning("%s: [%s] gives no items: %s is ZERO_ITEMS", where, section, test.name)
    return PlannedTest(
        name=test.name,
        waiton=chosen.waitons[test.name],
        mode=test.mode(),
        priority=test.priority(),
        itemized=any(item.variables for item in items),
        instances=tuple(instances),
        comment=comment,
        meta=test.meta(),
        itemmap=lookup_itemmap(itemmaps_of(test), test.name),
        skip=read_skip(test.config, run_env.env, test.directory),
        jobgroup=read_jobgroup(test.config),
        deferred=made is None,
    )


def _dependency_order(
    graph: Mapping[str, Sequence[str]], read: Mapping[str, TestConfig]
) -> list[str]:
    """Tests with their prerequisites first; a cycle is an error naming it."""
    sorter = graphlib.TopologicalSorter(graph)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        entry = read[cycle[0]].config.entry("requirements", "waiton")
        origin = entry.origin if entry else Origin(str(read[cycle[0]].path), 1)
        raise ConfigError(
            origin.path, origin.line, f"waiton forms a cycle: {' -> '.join(cycle)}"
        ) from None
