"""A Megatest test-suite area: megatest.config, runconfigs.config and tests/*/testconfig.

Everything is read from the area's own files, again for each run planned
(:meth:`Area.for_run`, where ``#{scheme}`` sees the run's command line).
``[system ...]`` values, and the error of a ``#{scheme}`` that fails with no run,
come only when asked for: a whole area loads even when a few values need a run.
"""

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from mtpkt.agents.area.config import Config, ConfigError, Entry, Origin, read_config
from mtpkt.agents.area.errors import AreaError
from mtpkt.agents.area.items import Item, combine
from mtpkt.agents.area.paths import PathError, check_name
from mtpkt.agents.area.scheme import RunArgs, SchemeContext
from mtpkt.agents.area.testpaths import find_test, test_registry
from mtpkt.agents.area.waiton import mode_refused

__all__ = [
    "Area",
    "RunConfig",
    "Step",
    "TargetError",
    "TestConfig",
    "not_an_area",
    "parse_duration",
]


def not_an_area(path: Path) -> str:
    """Why ``path`` is not an area's directory, in a few words (empty if it is one)."""
    if (path / "megatest.config").is_file():
        return ""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not an area's directory"
    return f"{path} is not a Megatest area (no megatest.config)"


class TargetError(AreaError):
    """A target that does not fit the area's ``[fields]`` keys."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms]?)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}


def parse_duration(text: str) -> float | None:
    """Megatest's time spans: ``20m``, ``1d 1h 1m 10s``, ``90`` (seconds).

    Returns:
        Seconds, or None for text that is not a time span.
    """
    compact = text.strip()
    if not compact:
        return None
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(compact):
        if compact[position : match.start()].strip():
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position and not compact[position:].strip() else None


@attrs.frozen
class Step:
    """One step of a test: an ``[ezsteps]`` entry, or the ``[setup] runscript``."""

    name: str
    command: str
    origin: Origin


@attrs.frozen
class RunConfig:
    """The runconfig variables of one target (``runconfigs.config``)."""

    target: str
    config: Config
    env: Mapping[str, str]
    """The environment as reading the file left it (default and target sections applied)."""

    def entries(self) -> list[tuple[str, Entry]]:
        """``[default]`` then the target's section, a later key replacing an earlier one."""
        merged: dict[str, Entry] = {}
        for section in ("default", self.target):
            for key in self.config.keys(section):
                entry = self.config.entry(section, key)
                assert entry is not None
                merged.pop(key, None)
                merged[key] = entry
        return list(merged.items())

    def get(self, name: str) -> str | None:
        """A runconfig variable for this target (``#{rget}``; ``!VAR`` too), or None."""
        entry = self.config.find_var((self.target, "default"), name)
        return None if entry is None else self.config.resolve(entry, env=self.env)

    def unmatched_note(self) -> str:
        """A warning when the file has target sections but none for this target (its
        variables then come from ``[default]`` alone); empty otherwise."""
        others = [name for name in self.config.sections if name not in ("default", self.target)]
        if not others or self.config.keys(self.target):
            return ""
        shown = ", ".join(others[:12]) + (" …" if len(others) > 12 else "")
        return (
            f"{self.config.path}: target {self.target} matches no section"
            f" (sections: {shown}): only [default] applies"
        )

    def exported(self, env: Mapping[str, str], cwd: Path) -> dict[str, str]:
        """The variables tests see: every one but ``!VAR`` entries, values computed.

        Raises:
            ConfigError: a value needs ``#{scheme}`` or its ``[system]`` command failed.
        """
        result: dict[str, str] = {}
        for key, entry in self.entries():
            if not key.startswith("!") and ":" not in key:
                result[key] = self.config.resolve(entry, env={**env, **result}, cwd=cwd)
        return result


@attrs.frozen
class TestConfig:
    """One test's ``testconfig``, read for a run of one target."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    directory: Path
    config: Config

    @property
    def path(self) -> Path:
        return self.directory / "testconfig"

    def _origin(self, section: str, key: str) -> Origin:
        entry = self.config.entry(section, key)
        return entry.origin if entry else Origin(str(self.path), 1)

    def steps(self) -> list[Step]:
        """``[ezsteps]`` in order; or, without them, the ``[setup] runscript`` as one step.

        Raises:
            ConfigError: a step needs ``#{scheme}``, its name cannot name a log file, or
                the test has neither ``[ezsteps]`` nor a runscript.
        """
        steps = []
        for name in self.config.keys("ezsteps"):
            entry = self.config.entry("ezsteps", name)
            assert entry is not None
            try:
                check_name("step name", name)
            except PathError as exc:
                raise ConfigError(entry.origin.path, entry.origin.line, str(exc)) from None
            steps.append(Step(name, self.config.resolve(entry), entry.origin))
        if steps:
            return steps
        runscript = self.config.get("setup", "runscript")
        if runscript:
            script = runscript.strip()
            command = f"./{script}" if (self.directory / script).is_file() else script
            steps.append(Step(Path(script).name, command, self._origin("setup", "runscript")))
        elif not self.config.has("ezsteps"):
            # An empty [ezsteps] is a test that only waits (Megatest's own 'special');
            # no section at all is more likely a typo such as [ezstep].
            raise ConfigError(
                str(self.path), 1, "no [ezsteps] section and no [setup] runscript: nothing to run"
            )
        return steps

    def waiton(self) -> list[str]:
        """Tests this one waits for (``[requirements] waiton``)."""
        return (self.config.get("requirements", "waiton") or "").split()

    def mode(self) -> frozenset[str]:
        """``[requirements] mode``: its words (``normal`` when not given); see
        :mod:`~mtpkt.agents.area.waiton`.

        Raises:
            ConfigError: a word mtpkt does not know, or ``exclusive`` (refused).
        """
        text = self.config.get("requirements", "mode")
        words = frozenset((text or "").split()) or frozenset({"normal"})
        if why := mode_refused(words):
            origin = self._origin("requirements", "mode")
            raise ConfigError(origin.path, origin.line, why)
        return words

    def itemmaps(self) -> list[tuple[str, str]]:
        """``[requirements] itemmap`` (for every waiton, as ``%``) then the ``[itemmap]``
        section's lines (``waiton-pattern map``), in Megatest's order (tests.scm:101-110)."""
        base = self.config.get("requirements", "itemmap")
        found = [("%", base)] if base is not None else []
        return found + self.config.items("itemmap")

    def priority(self) -> int:
        """``[requirements] priority``; higher runs first (default 0)."""
        text = (self.config.get("requirements", "priority") or "0").strip()
        try:
            return int(text)
        except ValueError:
            origin = self._origin("requirements", "priority")
            raise ConfigError(
                origin.path, origin.line, f"priority {text!r} is not a whole number"
            ) from None

    def runtimelim(self, default: float | None) -> float | None:
        """``[requirements] runtimelim`` in seconds, else the area's default."""
        text = self.config.get("requirements", "runtimelim")
        if text is None:
            return default
        seconds = parse_duration(text)
        if seconds is None:
            origin = self._origin("requirements", "runtimelim")
            raise ConfigError(
                origin.path, origin.line, f"runtimelim {text!r}: expected e.g. 20m or 1h 30m"
            )
        return seconds

    def items(self, env: Mapping[str, str], cwd: Path) -> list[Item]:
        """Every item of the test, as Megatest makes them (:mod:`~mtpkt.agents.area.items`):
        one empty item for a test without items, ``[]`` for one whose sections give none.

        Values are computed here, through the config's resolver: ``#{shell}`` and
        ``#{system}`` were expanded when the file was read, ``[system ...]`` runs now,
        and ``#{scheme}`` is whatever the resolver (:mod:`~mtpkt.agents.area.expand`)
        makes of it; this method needs no change when the resolver learns more.

        Args:
            env: environment for ``[system ...]`` item values.
            cwd: their working directory: the run's directory, never the area's
                sources (commands like ``env > envfile.txt`` write there).

        Raises:
            ConfigError: a value cannot be computed (its command failed, or it needs
                what the resolver cannot do).
        """

        def columns(section: str) -> list[tuple[str, list[str]]]:
            return [
                (key, value.split()) for key, value in self.config.items(section, env=env, cwd=cwd)
            ]

        return combine(columns("items"), columns("itemstable"))

    def meta(self) -> dict[str, str]:
        """``[test_meta]`` (author, owner, description, tags …), values that can be read."""
        result = {}
        for key in self.config.keys("test_meta"):
            try:
                result[key] = self.config.get("test_meta", key) or ""
            except ConfigError:
                continue
        return result

    def pre_launch_env(self) -> dict[str, str]:
        """``[pre-launch-env-vars]``: variables set for this test only."""
        return dict(self.config.items("pre-launch-env-vars"))


@attrs.define
class Area:
    """A test-suite area, with ``megatest.config`` read.

    Use :meth:`load`; then :meth:`runconfig` for a target and :meth:`testconfig`
    for each test.
    """

    home: Path
    config: Config
    env: dict[str, str]
    """The environment after megatest.config (its ``[env-override]`` applied)."""
    base: Mapping[str, str] = attrs.field(factory=dict)
    """The environment megatest.config was read in (to read it again for a run)."""
    args: RunArgs | None = None
    """The run the area was read for (None: read without one)."""

    @classmethod
    def load(
        cls,
        home: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        *,
        args: RunArgs | None = None,
    ) -> "Area":
        """Read ``<home>/megatest.config`` in ``env`` (default: this process's), for the run
        ``args`` (``#{scheme (args:get-arg ...)}``), or for none.

        Raises:
            AreaError: ``home`` has no megatest.config.
            ConfigError: the file cannot be read.
        """
        home = Path(os.path.abspath(home))
        if why := not_an_area(home):
            raise AreaError(f"{why}: cd into the area or pass --area DIR")
        base = dict(os.environ if env is None else env)
        base["MT_RUN_AREA_HOME"] = str(home)
        scheme = SchemeContext(args=args, toppath=str(home))
        config, after = read_config(
            home / "megatest.config",
            env=base,
            env_section=lambda section: section == "env-override",
            cwd=home,
            scheme=scheme,
        )
        return cls(home=home, config=config, env=after, base=base, args=args)

    def for_run(self, args: RunArgs) -> "Area":
        """The area read again for a run: megatest.config as it is now, with the run's keys,
        ``MT_TARGET`` and ``MT_RUNNAME`` set (megatest.scm:444-445, configf.scm:469-474,
        launch.scm:1492), and ``#{scheme}`` evaluated with the run's command line.

        Raises:
            AreaError: the area's directory is gone.
            ConfigError: megatest.config cannot be read (now).
        """
        run = {"MT_TARGET": args.target, "MT_RUNNAME": args.runname}
        with contextlib.suppress(AreaError):  # a target that does not fit: planning says why
            run.update(self.split_target(args.target))
        return Area.load(self.home, {**self.base, **run}, args=args)

    def scheme_context(self) -> SchemeContext:
        """What ``#{scheme}`` sees in the area's other files: the run, the area, its
        tests and database directory."""
        return SchemeContext(
            args=self.args,
            fields=tuple(self.fields),
            toppath=str(self.home),
            tests=lambda: {name: str(self.tests_dir / name) for name in self.test_names()},
            dbdir=lambda: str(self.home / self.dbdir),
        )

    # -- megatest.config ----------------------------------------------------------------

    @property
    def fields(self) -> list[str]:
        """The ``[fields]`` keys: the parts of a target, in order."""
        return self.config.keys("fields")

    def split_target(self, target: str) -> dict[str, str]:
        """The key values of a target, e.g. ``{"sysname": "ubuntu", "fsname": "nfs"}``.

        Raises:
            TargetError: the target does not have one non-empty part per ``[fields]`` key.
        """
        parts = target.split("/")
        fields = self.fields
        if len(parts) != len(fields) or not all(parts):
            raise TargetError(
                f"target {target!r} does not match the area's keys "
                f"{'/'.join(fields) or '(none)'}: expected {len(fields)} non-empty parts"
            )
        for part in parts:
            check_name("target part", part)
        return dict(zip(fields, parts, strict=True))

    def _setup_number(self, key: str) -> float | None:
        text = self.config.get("setup", key)
        if text is None or not text.strip():
            return None
        seconds = parse_duration(text)
        if seconds is None:
            entry = self.config.entry("setup", key)
            assert entry is not None
            raise ConfigError(
                entry.origin.path, entry.origin.line, f"{key} {text!r} is not a number or time"
            )
        return seconds

    @property
    def linktree(self) -> Path:
        """``[setup] linktree``: where run directories go (default ``<area>/lt``)."""
        text = self.config.get("setup", "linktree")
        return Path(text.strip()) if text and text.strip() else self.home / "lt"

    @property
    def max_concurrent_jobs(self) -> int | None:
        """``[setup] max_concurrent_jobs``: tests running at once in a run."""
        value = self._setup_number("max_concurrent_jobs")
        return None if value is None else max(1, int(value))

    @property
    def runtimelim(self) -> float | None:
        """``[setup] runtimelim``: default time limit of a test, in seconds."""
        return self._setup_number("runtimelim")

    @property
    def deadtime(self) -> float | None:
        """``[setup] deadtime``: seconds a test may go unheard of before it is DEAD
        (db.scm:1594-1662); the home's grace for lost agents. None when not set."""
        return self._setup_number("deadtime")

    @property
    def dbdir(self) -> Path:
        """``[setup] dbdir``: where the databases go (default ``<area>/.mtpkt/db``)."""
        text = self.config.get("setup", "dbdir")
        return Path(text.strip()) if text and text.strip() else self.home / ".mtpkt" / "db"

    @property
    def disks(self) -> dict[str, str]:
        """``[disks]``: name → path."""
        return dict(self.config.items("disks"))

    @property
    def archive(self) -> dict[str, str]:
        """``[archive]`` settings."""
        return dict(self.config.items("archive"))

    # -- tests ----------------------------------------------------------------------------

    @property
    def tests_dir(self) -> Path:
        return self.home / "tests"

    def test_dirs(self) -> dict[str, Path]:
        """Every test of the area and its directory: ``[tests-paths]``, then ``tests/``
        (:mod:`~mtpkt.agents.area.testpaths`)."""
        return test_registry(self.config, self.home, self.env)

    def test_names(self) -> list[str]:
        """Every test of the area: the directories with a testconfig (:meth:`test_dirs`)."""
        return sorted(self.test_dirs())

    # -- per target ---------------------------------------------------------------------

    def base_env(self, target: str, runname: str) -> dict[str, str]:
        """The environment every test of a run starts from: the area's, then :meth:`run_keys`."""
        return {**self.env, **self.run_keys(target, runname)}

    def run_keys(self, target: str, runname: str) -> dict[str, str]:
        """What a run adds to the area's environment before runconfigs.config is read: the
        key values, ``MT_TARGET``, ``MT_RUNNAME``, ``MT_RUN_AREA_HOME``, ``MT_LINKTREE``."""
        return {
            **self.split_target(target),
            "MT_TARGET": target,
            "MT_RUNNAME": runname,
            "MT_RUN_AREA_HOME": str(self.home),
            "MT_LINKTREE": str(self.linktree),
        }

    def runconfig(self, target: str, runname: str = "") -> RunConfig:
        """Read ``runconfigs.config`` for a target.

        Its ``[default]`` section and every section whose name contains the
        target are environment sections; ``%`` sections apply to the target's.

        Raises:
            ConfigError: the file cannot be read.
            TargetError: the target does not match the area's keys.
        """
        env = self.base_env(target, runname)
        path = self.home / "runconfigs.config"
        if not path.is_file():
            return RunConfig(target, Config(path=str(path)), env)
        pattern = re.compile(f"(default|{re.escape(target)})")
        config, after = read_config(
            path,
            env=env,
            env_section=lambda section: pattern.search(section) is not None,
            target=target,
            sections=(target,),
            cwd=self.home,
            scheme=self.scheme_context(),
        )
        return RunConfig(target, config, after)

    def testconfig(self, name: str, runconfig: RunConfig, env: Mapping[str, str]) -> TestConfig:
        """Read ``tests/<name>/testconfig`` for a run.

        Args:
            name: the test.
            runconfig: the run's target variables (for ``#{rget}``).
            env: the run's environment (for ``#{getenv}`` and commands).

        Raises:
            ConfigError: the file cannot be read.
            PathError: the name cannot be a test directory.
        """
        check_name("test name", name)
        directory = find_test(self.config, self.home, name, self.env) or self.tests_dir / name
        config, _ = read_config(
            directory / "testconfig",
            env=env,
            env_section=lambda section: section == "pre-launch-env-vars",
            rget=runconfig.get,
            cwd=directory,
            scheme=self.scheme_context(),
        )
        return TestConfig(name=name, directory=directory, config=config)
