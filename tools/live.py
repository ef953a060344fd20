"""The live view of ``mtpkt tail`` on a terminal: what the runs look like, at a glance.

:class:`LiveModel` takes the followed packets one by one (constant work per
packet, whatever the size of the runs); :func:`render` draws it to fit the
terminal: a line per run with a progress bar and counts by status, the
running tests with their host, step and elapsed time, the tests that ended
badly, and the newest packets. Lists are cut to the room there is ("… and 40
more"): 10,000 tests never print 10,000 rows. The caller redraws a few times
a second, not per packet.
"""

import time
from collections import Counter, deque
from collections.abc import Iterable

import attrs
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import ACTIVE, ended_badly, settled
from mtpkt.pkts.status import Ack, StatusChange, StatusPacket, Step
from mtpkt.pkts.text import end_label, one_line
from mtpkt.tools.colours import BAD_STYLE, style_of, styled
from mtpkt.tools.itemized import Itemized
from mtpkt.tools.shown import plain_line

__all__ = ["LiveModel", "RunView", "render"]

RECENT_KEPT = 200
"""Newest packets kept for the scrolling tail."""


def _label(state: State, status: Status) -> str:
    """A test's label in the view: its status shows once it has settled."""
    return end_label(state, status, with_status=settled(state, status))


@attrs.define
class _Instance:
    state: State
    status: Status
    host: str = ""
    job: str = ""
    """The batch job it runs in (``slurm:4711``), shown instead of the host."""
    step: str = ""
    """The step it is at, with the comment its last packet gave (``check: 2 warnings``)."""
    since: float = 0.0
    """When it started RUNNING (the agent's clock)."""
    comment: str = ""


@attrs.define
class RunView:
    """One run's instances as the packets left them; counts kept as they change."""

    target: str
    runname: str
    instances: dict[tuple[str, str], _Instance] = attrs.field(factory=dict)
    counts: Counter[str] = attrs.field(factory=Counter)
    """Instances by label; an itemized test's toplevel record is not counted."""
    settled: int = 0
    active: dict[tuple[str, str], None] = attrs.field(factory=dict)
    bad: dict[tuple[str, str], None] = attrs.field(factory=dict)
    """Instances that ended badly, oldest first."""
    itemized: Itemized = attrs.field(factory=Itemized)
    """The tests with items, whose toplevel records are not counted."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _forget(self, key: tuple[str, str], old: _Instance) -> None:
        label = _label(old.state, old.status)
        self.counts[label] -= 1
        if not self.counts[label]:
            del self.counts[label]
        self.settled -= settled(old.state, old.status)
        self.active.pop(key, None)
        self.bad.pop(key, None)

    def _count(self, key: tuple[str, str], new: _Instance) -> None:
        self.counts[_label(new.state, new.status)] += 1
        self.settled += settled(new.state, new.status)
        if new.state in ACTIVE:
            self.active[key] = None
        elif ended_badly(new.state, new.status):
            self.bad[key] = None

    def change(self, packet: StatusChange) -> None:
        key = (packet.test, packet.item)
        if self.itemized.add(*key):
            top = self.instances.get((packet.test, ""))
            if top is not None:
                self._forget((packet.test, ""), top)
        old = self.instances.get(key)
        new = _Instance(
            packet.state,
            packet.status,
            host=packet.host or (old.host if old else ""),
            job=packet.job or (old.job if old else ""),
            step=old.step if old else "",
            since=packet.ts if packet.state is State.RUNNING or old is None else old.since,
            comment=one_line(packet.comment),
        )
        if packet.state is State.LAUNCHED:
            new.step = ""
        self.instances[key] = new
        if not self.itemized.counts(*key):
            return
        if old is not None:
            self._forget(key, old)
        self._count(key, new)

    def step(self, packet: Step) -> None:
        instance = self.instances.get((packet.test, packet.item))
        if instance is not None:
            comment = one_line(packet.comment)
            instance.step = f"{packet.step}: {comment}" if comment else packet.step


@attrs.define
class LiveModel:
    """The followed runs, fed packet by packet."""

    runs: dict[tuple[str, str], RunView] = attrs.field(factory=dict)
    recent: deque[StatusPacket] = attrs.field(factory=lambda: deque(maxlen=RECENT_KEPT))
    packets: int = 0

    def add(self, packets: Iterable[StatusPacket]) -> None:
        for packet in packets:
            self.packets += 1
            self.recent.append(packet)
            if isinstance(packet, Ack):
                continue
            run = self.runs.get((packet.target, packet.runname))
            if run is None:
                run = self.runs[packet.target, packet.runname] = RunView(
                    packet.target, packet.runname
                )
            if isinstance(packet, StatusChange):
                run.change(packet)
            elif isinstance(packet, Step):
                run.step(packet)
            # TestData shows among the newest packets only (tools.details.data_words).


def _elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def _counts(run: RunView) -> Text:
    text = Text()
    # Bad ones first, so that they are seen even when the line is cut.
    order = sorted(run.counts.items(), key=lambda kv: (style_of(kv[0]) != BAD_STYLE, kv[0]))
    for shown, count in order:
        if text:
            text.append("  ")
        text.append(f"{count} {shown}", style=style_of(shown))
    return text


def _name(run: RunView, key: tuple[str, str], runs: bool) -> str:
    """``test/item``, led by the run's name when the view shows several runs."""
    name = f"{key[0]}/{key[1]}" if key[1] else key[0]
    return f"{run.runname}: {name}" if runs else name


def _more(shown: int, total: int, what: str) -> Text | None:
    return Text(f"… and {total - shown} more {what}", style="dim") if total > shown else None


def render(
    model: LiveModel, *, width: int, height: int, title: str = "", now: float | None = None
) -> Group:
    """The view, fitting ``width`` columns and ``height`` lines; ``title`` says what is
    followed."""
    now = time.time() if now is None else now
    runs = list(model.runs.values())[-max(1, height // 6) :]
    parts: list[RenderableType] = [Text(f"mtpkt tail · {title} · Ctrl-C to stop", style="dim")]
    parts += _runs_part(model, runs, width)
    room = max(6, height - len(parts) - len(runs) - 4)
    active = [(run, key) for run in runs for key in run.active]
    bad = [(run, key) for run in runs for key in run.bad]
    rows_active = min(len(active), max(2, room // 3))
    rows_bad = min(len(bad), max(2, room // 3))
    several = len(runs) > 1  # then each test says which run it is of
    if active:
        parts += _active_part(active, rows_active, width, now, several)
    if bad:
        parts += _bad_part(bad, rows_bad, width, several)
    if model.recent:
        parts.append(Text(f"latest packets ({model.packets} in all)", style="bold"))
        rows_recent = max(2, room - rows_active - rows_bad)
        parts += [_recent_line(packet, width) for packet in list(model.recent)[-rows_recent:]]
    return Group(*parts)


def _runs_part(model: LiveModel, runs: list[RunView], width: int) -> list[RenderableType]:
    """A line per run: name, progress bar, settled/total, counts by status."""
    if not runs:
        return [Text("waiting for a selected run to start …", style="dim")]
    bar_width = max(10, min(40, width // 4))
    table = Table.grid(padding=(0, 1), expand=False)
    table.add_column(no_wrap=True, overflow="ellipsis", max_width=max(12, width // 3))
    table.add_column(width=bar_width)
    table.add_column(no_wrap=True, justify="right")
    table.add_column(no_wrap=True, overflow="ellipsis")
    for run in runs:
        total = run.total
        table.add_row(
            Text(f"{run.target} {run.runname}", style="bold"),
            ProgressBar(
                total=max(total, 1),
                completed=run.settled,
                width=bar_width,
                complete_style="red" if run.bad else "yellow",
                finished_style="red" if run.bad else "green",
            ),
            f"{run.settled}/{total}",
            _counts(run),
        )
    parts: list[RenderableType] = [table]
    if (hidden := len(model.runs) - len(runs)) > 0:
        parts.append(Text(f"… and {hidden} older runs", style="dim"))
    return parts


def _active_part(
    active: list[tuple[RunView, tuple[str, str]]], rows: int, width: int, now: float, runs: bool
) -> list[RenderableType]:
    """The running tests, longest running first: host (or batch job), step, elapsed time."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, overflow="ellipsis", max_width=max(16, width // 3))
    grid.add_column(no_wrap=True, overflow="ellipsis", max_width=max(8, width // 5))
    grid.add_column(no_wrap=True, overflow="ellipsis", max_width=max(8, width // 4))
    grid.add_column(no_wrap=True, justify="right")
    for run, key in sorted(active, key=lambda rk: rk[0].instances[rk[1]].since)[:rows]:
        instance = run.instances[key]
        grid.add_row(
            _name(run, key, runs),
            instance.job or instance.host,
            Text(instance.step or instance.state.value, style=style_of(instance.state)),
            _elapsed(now - instance.since) if instance.since else "",
        )
    parts: list[RenderableType] = [Text(f"running ({len(active)})", style="bold yellow"), grid]
    if (more := _more(rows, len(active), "running")) is not None:
        parts.append(more)
    return parts


def _bad_part(
    bad: list[tuple[RunView, tuple[str, str]]], rows: int, width: int, runs: bool
) -> list[RenderableType]:
    """The newest tests that ended badly, with their status and comment."""
    shown = [
        (_name(run, key, runs), _label(instance.state, instance.status), instance.comment)
        for run, key in bad[-rows:]
        for instance in (run.instances[key],)
    ]
    # The name and the label keep their width; a long comment is what gets cut (rich would
    # otherwise squeeze every column alike, the name down to nothing).
    name_width = min(max(len(name) for name, _, _ in shown), max(16, width // 3))
    label_width = max(len(label) for _, label, _ in shown)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, overflow="ellipsis", min_width=name_width, max_width=name_width)
    grid.add_column(no_wrap=True, min_width=label_width)
    grid.add_column(
        no_wrap=True, overflow="ellipsis", max_width=max(1, width - name_width - label_width - 4)
    )
    for name, label, comment in shown:
        grid.add_row(name, styled(label), comment)
    parts: list[RenderableType] = [Text(f"ended badly ({len(bad)})", style=BAD_STYLE), grid]
    if (more := _more(rows, len(bad), "ended badly")) is not None:
        parts.append(more)
    return parts


def _recent_line(packet: StatusPacket, width: int) -> Text:
    line = Text(plain_line(packet), no_wrap=True, overflow="ellipsis")
    if isinstance(packet, StatusChange):
        shown = end_label(packet.state, packet.status)  # as plain_line writes it
        line.highlight_words([f"  {shown}"], style_of(shown))
    line.truncate(width, overflow="ellipsis")
    return line
