"""The environment a test's steps see, built in the order Megatest's ``launch.scm`` builds it.

Megatest sets the variables of a test in its launching process and again in
the test's own process (``launch:execute``), each layer over the ones before;
the same names therefore win here, later layers over earlier ones:

1. the environment the run is planned in (the agent's; Megatest: the launching
   process's), with megatest.config's ``[env-override]`` set as it is read
   (``$VAR`` replaced, ``configf.scm:431-443``) and the testconfig's
   ``[pre-launch-env-overrides]`` (``launch.scm:1497-1498``);
2. the target's keys (``sysname=ubuntu`` …), ``MT_RUN_AREA_HOME``,
   ``MT_TARGET``, ``MT_RUNNAME``, ``MT_LINKTREE``, ``MT_TESTSUITENAME``
   (``runs.scm:53-137``, ``launch.scm:1074-1075``);
3. runconfigs.config's ``[default]`` then the target's section, each value
   computed in the environment so far (``launch.scm:640-652``); ``!VAR`` and
   ``a:b`` keys are never exported; then mtpkt's ``MT_RUNPATH``;
4. ``MT_CMDINFO``, ``MT_TEST_RUN_DIR``, ``MT_TEST_NAME``, ``MT_ITEM_INFO``,
   ``MT_ITEMPATH``, ``MT_RUNNAME``, ``MT_MEGATEST``, ``MT_TARGET``,
   ``MT_LINKTREE``, ``MT_TESTSUITENAME`` (``launch.scm:460, 688-703``), and
   the directory of ``MT_MEGATEST`` at the end of ``PATH`` (``launch.scm:706``);
5. every ``[env-override]`` value again, ``[system ...]`` ones included
   (``launch.scm:714``, ``runs.scm:113``): so they beat runconfigs.config;
6. ``MT_RUNNAME`` and ``MT_RUN_AREA_HOME`` again (``runs.scm:117-121``);
7. the item's variables (``launch.scm:718``);
8. the testconfig's ``[pre-launch-env-vars]`` (read again by the test process
   before its steps, ``launch.scm:745``).

An agent running the test sets ``MT_MEGATEST`` again, to its own ``megatest``,
and adds ``MTPKT_ENDPOINT`` and ``MTPKT_TOKEN`` (:func:`in_test_variables`), so
that the steps' calls reach it (``megatest.sh`` does not record them).

That environment is what ``megatest.sh`` and ``megatest.csh`` record
(:func:`env_files`, ``common.scm:1747-1789``); the runner writes them into the
run directory before the first step, and runs each ``[ezsteps]`` step with
``.`` at the end of ``PATH`` (``launch.scm:134-135``).
"""

import base64
import os
import re
import sysconfig
import zlib
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from pathlib import Path
from typing import Any, Final

import attrs

from mtpkt.agents.area.items import Item
from mtpkt.agents.area.model import Area, RunConfig, TestConfig

__all__ = [
    "BLACKLISTVARS",
    "RunEnvironment",
    "area_name",
    "cmdinfo_text",
    "encode_cmdinfo",
    "env_files",
    "LazyEnvironment",
    "SharedEnvironment",
    "shared_environment",
    "megatest_command",
    "in_test_variables",
    "run_environment",
]

BLACKLISTVARS: Final = (
    "USER", "HOME", "DISPLAY", "LS_COLORS", "XKEYSYMDB", "EDITOR", "MAKEFLAGS", "MAKEF",
    "MAKEOVERRIDES",
)  # fmt: skip
"""Variables megatest.sh and megatest.csh write commented out, unless ``[setup] blacklistvars``
names others (``common.scm:1747``)."""

_QUOTED: Final = re.compile(r"[^a-zA-Z0-9_\-:,./%$]")
"""A character that makes Megatest put a value in double quotes (and a name in a comment)."""


def area_name(area: Area) -> str:
    """``MT_TESTSUITENAME``: ``[setup] area-name``, else ``testsuite``, else
    ``$MT_TESTSUITE_NAME``, else the area directory's name (``common.scm:655-661``)."""
    for key in ("area-name", "testsuite"):
        value = area.config.get("setup", key)
        if value is not None:  # Megatest takes an empty value too: "" is true in Scheme
            return value
    return area.env.get("MT_TESTSUITE_NAME") or area.home.name


def megatest_command(area: Area) -> str:
    """``MT_MEGATEST``: the ``megatest`` command steps call back into.

    ``[setup] executable`` when set (``launch.scm:1375, 1405``); else the
    ``megatest`` command of this installation, beside ``mtpkt`` in its scripts
    directory (Megatest: the ``megatest`` that launched the test).
    """
    executable = (area.config.get("setup", "executable") or "").strip()
    return executable or str(Path(sysconfig.get_path("scripts")) / "megatest")


def in_test_variables(
    env: Mapping[str, str], *, megatest: str, endpoint: str, token: str
) -> dict[str, str]:
    """What a running test's steps get over ``env`` to call back into their agent (the
    agent's ``megatest`` shim, :mod:`mtpkt.agents.host.endpoint`).

    ``MT_MEGATEST`` is the shim and its directory goes on ``PATH`` (as launch.scm:706
    puts Megatest's own); ``MTPKT_ENDPOINT`` is the agent's address and ``MTPKT_TOKEN``
    the test's token, which says which test a call is for.
    """
    bindir = os.path.dirname(megatest)
    path = env.get("PATH")
    return {
        "MT_MEGATEST": megatest,
        "PATH": f"{path}:{bindir}" if path else bindir,
        "MTPKT_ENDPOINT": endpoint,
        "MTPKT_TOKEN": token,
    }


def _blacklist(area: Area) -> tuple[str, ...]:
    """``[setup] blacklistvars``, else :data:`BLACKLISTVARS` (``launch.scm:719-723``)."""
    text = area.config.get("setup", "blacklistvars")
    return BLACKLISTVARS if text is None else tuple(text.split())


def _exported(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs that can be environment variables: Megatest skips ``a:b`` names, and
    names ``setenv`` refuses (``common.scm:54-63``); ``!VAR`` names are never exported
    (the seed roadmap)."""
    return [(k, v) for k, v in pairs if ":" not in k and not k.startswith("!") and "=" not in k]


@attrs.frozen(kw_only=True)
class RunEnvironment:
    """What every test of one run shares (layers 1 to 3 and the ``[env-override]`` values)."""

    inherited: Mapping[str, str]
    """Layer 1 without the testconfig's part: the planning environment after megatest.config."""
    run_vars: Mapping[str, str]
    """Layers 2 and 3: the keys, the run's ``MT_*`` variables and the runconfig variables."""
    overrides: tuple[tuple[str, str], ...]
    """``[env-override]`` with every value computed (layer 5)."""
    target: str
    runname: str
    home: Path
    linktree: Path
    runpath: Path
    megatest: str
    testsuite: str
    blacklistvars: tuple[str, ...]
    cmdinfo: Mapping[str, str]
    """The run's part of ``MT_CMDINFO``, each value written as Scheme data."""

    @property
    def env(self) -> dict[str, str]:
        """The run's environment: what runconfig and ``[items]`` commands run with."""
        return {**self.inherited, **self.run_vars}


def run_environment(
    area: Area,
    runconfig: RunConfig,
    runname: str,
    runpath: Path,
    env: Mapping[str, str] | None = None,
) -> RunEnvironment:
    """The environment every test of a run starts from.

    Args:
        area: the loaded area (its ``env`` is layer 1).
        runconfig: the target's runconfig variables.
        runname: the run's name.
        runpath: the run's directory (``MT_RUNPATH``).
        env: added to the area's environment (tests of mtpkt itself use it).

    Raises:
        ConfigError: an ``[env-override]`` or runconfig value cannot be computed.
    """
    target = runconfig.target
    inherited = {**area.env, **(env or {})}
    run_vars = {**area.run_keys(target, runname), "MT_TESTSUITENAME": area_name(area)}
    # Megatest computes runconfig values with the area as its working directory
    # (launch.scm:633-635), [system ...] ones included.
    run_vars.update(_exported(runconfig.exported({**inherited, **run_vars}, area.home).items()))
    run_vars["MT_RUNPATH"] = str(runpath)
    overrides = tuple(_exported(area.config.items("env-override", env=area.env, cwd=area.home)))
    return RunEnvironment(
        inherited=inherited,
        run_vars=run_vars,
        overrides=overrides,
        target=target,
        runname=runname,
        home=area.home,
        linktree=area.linktree,
        runpath=runpath,
        megatest=megatest_command(area),
        testsuite=area_name(area),
        blacklistvars=_blacklist(area),
        cmdinfo=_run_cmdinfo(area, target, runname, overrides),
    )


@attrs.frozen
class SharedEnvironment:
    """What the instances of one test share of their environment, computed (and so checked)
    once when the test is planned; each instance's is made from it when first needed
    (:meth:`instance`, :class:`LazyEnvironment`): an agent plans every item of a test
    and runs a few."""

    run: RunEnvironment
    test: TestConfig
    pre_overrides: tuple[tuple[str, str], ...]
    """The testconfig's ``[pre-launch-env-overrides]``, exported."""
    pre_launch: tuple[tuple[str, str], ...]
    """The testconfig's ``[pre-launch-env-vars]``, exported."""

    def instance(self, item: Item, rundir: Path, runtimelim: float | None) -> dict[str, str]:
        """The complete environment of one instance's steps (layers 1 to 8)."""
        run, test = self.run, self.test
        cmdinfo = encode_cmdinfo(cmdinfo_text(run, test, item, rundir, runtimelim))
        env = {**run.inherited, **dict(self.pre_overrides), "MT_CMDINFO": cmdinfo, **run.run_vars}
        env.update(
            MT_TEST_RUN_DIR=str(rundir),
            MT_TEST_NAME=test.name,
            MT_ITEM_INFO=_display(item.variables),
            MT_ITEMPATH=item.path,
            MT_RUNNAME=run.runname,
            MT_MEGATEST=run.megatest,
            MT_TARGET=run.target,
            MT_LINKTREE=str(run.linktree),
            MT_TESTSUITENAME=run.testsuite,
        )
        if bindir := os.path.dirname(run.megatest):
            env["PATH"] = f"{env['PATH']}:{bindir}" if "PATH" in env else bindir
        env.update(run.overrides)
        env.update(MT_RUNNAME=run.runname, MT_RUN_AREA_HOME=str(run.home))
        env.update(item.variables)
        env.update(self.pre_launch)
        return env


def shared_environment(run: RunEnvironment, test: TestConfig) -> SharedEnvironment:
    """What the test's instances share of their environment.

    Raises:
        ConfigError: a value of the testconfig's environment sections cannot be computed.
    """
    pre_overrides = test.config.items("pre-launch-env-overrides", env=run.env, cwd=run.home)
    return SharedEnvironment(
        run,
        test,
        tuple(_exported(pre_overrides)),
        tuple(_exported(test.pre_launch_env().items())),
    )


class LazyEnvironment(Mapping[str, str]):
    """A mapping made by ``make`` when first read (thread-safe: a second making, should two
    threads read at once, gives the same)."""

    def __init__(self, make: Callable[[], dict[str, str]]) -> None:
        self._make = make
        self._env: dict[str, str] | None = None

    def _made(self) -> dict[str, str]:
        env = self._env
        if env is None:
            env = self._env = self._make()
        return env

    def __getitem__(self, key: str) -> str:
        return self._made()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())

    # The made dict's own views and lookups: much faster than Mapping's generic ones.
    def __contains__(self, key: object) -> bool:
        return key in self._made()

    def get(self, key: str, default: Any = None) -> Any:
        return self._made().get(key, default)

    def keys(self) -> KeysView[str]:
        return self._made().keys()

    def items(self) -> ItemsView[str, str]:
        return self._made().items()

    def values(self) -> ValuesView[str]:
        return self._made().values()

    def __repr__(self) -> str:
        return f"LazyEnvironment({self._made()!r})"


# MT_CMDINFO and MT_ITEM_INFO: Scheme data as Megatest's reader reads it

Datum = str | int | float | bool | None | Sequence["Datum"]
"""A Scheme value: a string, a number, #t/#f (None is #f) or a list."""


_ESCAPES: Final = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"})
"""How Scheme's ``write`` shows these characters inside a string."""


def _write(value: Datum) -> str:
    """``value`` as Scheme's ``write`` puts it: strings in quotes, escaped."""
    match value:
        case None | False:
            return "#f"
        case True:
            return "#t"
        case str():
            return f'"{value.translate(_ESCAPES)}"'
        case int() | float():
            return str(int(value)) if float(value).is_integer() else repr(value)
        case _:
            return f"({' '.join(_write(part) for part in value)})"


def _display(pairs: Sequence[tuple[str, str]]) -> str:
    """``(conc itemdat)``: a list of ``(VAR value)`` lists as Scheme's ``display`` puts it."""
    return f"({' '.join(f'({name} {value})' for name, value in pairs)})"


_CMDINFO_KEYS: Final = (
    "testpath", "homehost", "serverurl", "areaname", "toppath", "work-area", "test-name",
    "runscript", "run-id", "test-id", "itemdat", "megatest", "ezsteps", "subrun", "target",
    "contour", "runtlim", "env-ovrd", "set-vars", "runname", "mt-bindir-path",
)  # fmt: skip
"""The keys of Megatest's command data, in its order (``launch.scm:1435-1463``)."""


def _run_cmdinfo(
    area: Area, target: str, runname: str, overrides: Sequence[Datum]
) -> dict[str, str]:
    """The values of the command data that are the same for every test of a run, written."""
    megatest = megatest_command(area)
    values: dict[str, Datum] = {
        "homehost": None,
        "serverurl": None,
        "areaname": area_name(area),
        "toppath": str(area.home),
        "run-id": None,
        "test-id": None,
        "megatest": megatest,
        "target": target,
        "contour": None,
        "env-ovrd": overrides,
        "set-vars": None,
        "runname": runname,
        "mt-bindir-path": os.path.dirname(megatest) or None,
    }
    return {key: _write(value) for key, value in values.items()}


def cmdinfo_text(
    run: RunEnvironment, test: TestConfig, item: Item, rundir: Path, runtimelim: float | None
) -> str:
    """The command data Megatest hands a test in ``MT_CMDINFO``, before encoding.

    The association list of ``launch.scm:1435-1463``, key for key. What mtpkt
    does not have is ``#f``: ``homehost`` and ``serverurl`` (there is no
    Megatest server), ``run-id`` and ``test-id`` (a test is known by target,
    run name, test and item path, which the ``MT_*`` variables carry),
    ``contour`` and ``set-vars``.
    """
    values: dict[str, Datum] = {
        "testpath": str(test.directory),
        "work-area": str(rundir),
        "test-name": test.name,
        "runscript": test.config.get("setup", "runscript"),
        "itemdat": item.variables,
        "ezsteps": bool(test.config.keys("ezsteps")),
        "subrun": bool(test.config.keys("subrun")),
        "runtlim": runtimelim,
    }
    written = {**run.cmdinfo, **{key: _write(value) for key, value in values.items()}}
    return f"({' '.join(f'({key} {written[key]})' for key in _CMDINFO_KEYS)})"


def encode_cmdinfo(text: str) -> str:
    """``MT_CMDINFO`` as Megatest encodes it: base64 of the text compressed as a raw
    DEFLATE stream (RFC 1951, ``z3:encode-buffer``, ``launch.scm:1431-1433``).

    The compressed bytes are zlib's, not Megatest's z3 library's, so they may
    differ from what Megatest would write; both decode to the same text, and
    Megatest's reader (``common:read-encoded-string``, ``common.scm:456-466``)
    reads either.
    """
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    data = compressor.compress(text.encode()) + compressor.flush()
    return base64.b64encode(data).decode("ascii")


# megatest.sh and megatest.csh


def env_files(env: Mapping[str, str], blacklistvars: Sequence[str]) -> tuple[str, str]:
    """The text of ``megatest.sh`` and ``megatest.csh`` for an environment.

    As ``save-environment-as-files`` writes them (``common.scm:1747-1789``):
    one line per variable in the environment's order; a value with a character
    other than letters, digits and ``_-:,./%$`` is put in double quotes, with
    nothing escaped inside; a blacklisted name, or one with such a character
    (or, in megatest.sh, a ``:``), is written commented out.

    Returns:
        The megatest.sh text, then the megatest.csh text.
    """
    sh, csh = [], []
    for key, value in env.items():
        quote = '"' if _QUOTED.search(value) else ""
        hidden = key in blacklistvars or _QUOTED.search(key) is not None
        sh.append(f"{'# ' if hidden or ':' in key else ''}export {key}={quote}{value}{quote}\n")
        csh.append(f"{'# ' if hidden else ''}setenv {key} {quote}{value}{quote}\n")
    return "".join(sh), "".join(csh)
