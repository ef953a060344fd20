"""``mtpkt agents``: the agents the area's home knows, from its database (read-only).

Each agent: its name; its liveness as the home judges it from the last
heartbeat: alive (heard from within twice its beat interval), lost (silent
longer), dead (silent beyond that plus the home's --agent-grace: its
unfinished tests are marked DEAD), offline (it stopped and said so); its
slots used and free; when its last heartbeat came; the tests the home has
handed it that are not finished; and the tasks it has not acknowledged yet.
The last two are the home's books, recorded at most once a second; with the
home down they are as it left them, and no heartbeat is recorded, so every
agent turns lost, then dead. --json prints one JSON list of objects with the
fields "name", "liveness", "state" (as recorded: online, lost or offline),
"pid", "slots", "used", "free", "interval", "last_beat" (seconds since the
epoch, the home's clock), "silent" (seconds since then), "skew", "running",
"pending" (null when not recorded) and "recorded".

The agents of batch jobs (batch-slurm-…, one per test: docs/batch.md) that
ended are left out, table and --json alike, unless --all is given; the table
says how many.

examples:
  mtpkt agents
  mtpkt agents --json | jq -r '.[] | select(.liveness != "alive") | .name'
  mtpkt agents --all
"""

import argparse
import time
from typing import TYPE_CHECKING, Any

from mtpkt.tools.colours import styled
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.local_area import open_query
from mtpkt.tools.options import query_parser
from mtpkt.tools.tables import ago, console, print_json, table, writing

if TYPE_CHECKING:  # imported for real inside run(): `mtpkt --help` stays quick
    from rich.table import Table

    from mtpkt.store.query import AgentInfo

__all__ = ["add_parser", "record", "run"]


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt agents``."""
    parser = query_parser(
        commands,
        "agents",
        "list the agents the home knows: liveness, slots, work",
        __doc__,
    )
    parser.add_argument(
        "--all", action="store_true", help="also the agents of batch jobs that ended"
    )
    parser.set_defaults(run=run)


def record(info: "AgentInfo", now: float, grace: float) -> dict[str, object]:
    """An agent as a JSON object (the fields listed in ``mtpkt agents --help``)."""
    from mtpkt.store.query import liveness

    agent = info.agent
    return {
        "name": agent.name,
        "liveness": liveness(agent, now, grace),
        "state": agent.state,
        "pid": agent.pid,
        "slots": agent.slots,
        "used": agent.busy,
        "free": max(0, agent.slots - agent.busy),
        "interval": agent.interval,
        "last_beat": agent.last_beat,
        "silent": max(0.0, now - agent.last_beat),
        "skew": agent.skew,
        "running": info.running,
        "pending": info.pending,
        "recorded": info.recorded,
    }


def _table(infos: "list[AgentInfo]", now: float, grace: float) -> "Table":
    from mtpkt.store.query import liveness

    grid = table()
    grid.add_column("agent", overflow="fold")
    grid.add_column("liveness", no_wrap=True)
    grid.add_column("used", justify="right", no_wrap=True)
    grid.add_column("free", justify="right", no_wrap=True)
    grid.add_column("heartbeat", no_wrap=True)
    grid.add_column("running", justify="right", no_wrap=True)
    grid.add_column("unacked", justify="right", no_wrap=True)
    for info in infos:
        agent = info.agent
        grid.add_row(
            agent.name,
            styled(liveness(agent, now, grace)),
            f"{agent.busy}/{agent.slots}",
            str(max(0, agent.slots - agent.busy)),
            ago(now - agent.last_beat) if agent.last_beat else "never",
            "?" if info.running is None else str(info.running),
            "?" if info.pending is None else str(info.pending),
        )
    return grid


def run(args: argparse.Namespace) -> int:
    """List the agents of the registry."""
    from mtpkt.store import StoreError

    with open_query(args.area) as query:
        try:
            infos = query.agents()
            grace = query.agent_grace()
        except StoreError as exc:
            raise CliError(str(exc)) from None
    now = time.time()
    shown = infos if args.all else [info for info in infos if not _ended_batch(info)]
    with writing():
        if args.json:
            print_json([record(info, now, grace) for info in shown])
        elif not infos:
            print("no agent has reported to the home yet")
        else:
            if shown:
                console().print(_table(shown, now, grace))
            if hidden := len(infos) - len(shown):
                print(f"(and {hidden:,} agents of batch jobs that ended: --all shows them)")
    return ExitCode.OK


def _ended_batch(info: "AgentInfo") -> bool:
    """The agent of a batch job that stopped, with no test in hand."""
    from mtpkt.agents.home.batchchoice import is_batch_agent

    return is_batch_agent(info.agent.name) and info.agent.state == "offline" and not info.running
