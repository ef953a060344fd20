"""mtpkt demo: a guided tour of mtpkt's packets on this machine.

It builds the control packet that asks for a run, signs it with a fresh area
key, reads it back, plays the status packets an agent reports for one test,
and shows what happens to a tampered frame, to a frame signed with another
area's key and to a truncated one.
"""

import argparse
import os
import time
from typing import Any

from rich.console import Console
from rich.table import Table

import pkts
from pkts.codec import BODY_OFFSET, HEADER_SIZE
from pkts.control import Run
from pkts.status import StatusChange, Step
from tools.exitcodes import ExitCode

__all__ = ["add_parser", "run"]

TARGET = "ubuntu/x86_64"
RUNNAME = "demo"
AGENT = "agent-1"


def add_parser(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register ``mtpkt demo``."""
    parser = commands.add_parser(
        "demo",
        help="tour mtpkt's packets: build, sign, send through the codec, verify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)


def _agent_report(seq_start: int) -> list[pkts.Packet]:
    """The status packets an agent sends for one test with two passing steps."""
    test: dict[str, Any] = {
        "origin": AGENT,
        "target": TARGET,
        "runname": RUNNAME,
        "test": "runfirst",
        "item": "a/1",
    }
    seq = iter(range(seq_start, seq_start + 100))

    def change(state: pkts.State, status: pkts.Status) -> StatusChange:
        return StatusChange(seq=next(seq), state=state, status=status, host=AGENT, **test)

    packets: list[pkts.Packet] = [
        change(pkts.State.LAUNCHED, pkts.Status.NA),
        change(pkts.State.RUNNING, pkts.Status.NA),
    ]
    for step, seconds in (("setup", 0.4), ("simulate", 12.8)):
        packets.append(Step(seq=next(seq), step=step, state=pkts.StepState.START, **test))
        packets.append(
            Step(
                seq=next(seq),
                step=step,
                state=pkts.StepState.END,
                status=pkts.Status.PASS,
                exit_code=0,
                logfile=f"{step}.log",
                duration=seconds,
                **test,
            )
        )
    packets.append(change(pkts.State.COMPLETED, pkts.Status.PASS))
    return packets


def _describe(packet: pkts.Packet) -> str:
    match packet:
        case Run(target=target, runname=runname, testpatt=testpatt):
            return f"run {target} {runname} testpatt={testpatt}"
        case StatusChange(test=test, item=item, state=state, status=status):
            return f"{test}/{item}  {state} {status}"
        case Step(test=test, item=item, step=step, state=state, status=status):
            return f"{test}/{item}  step {step} {state} {status}"
        case _:
            return packet.kind


def _reject(console: Console, label: str, frame: bytes, key: bytes) -> None:
    try:
        pkts.decode(frame, key)
    except pkts.PacketError as exc:
        console.print(f"   {label}: [red]rejected[/], {exc}")
    else:
        raise AssertionError(f"{label}: decoded a frame that must be rejected")


def _speed(report: list[pkts.Packet], key: bytes) -> float:
    """Packets/s through encode_batch and decode_batch for half a second."""
    steps = [packet for packet in report if isinstance(packet, Step)] * 50
    start = time.perf_counter()
    rounds = 0
    while time.perf_counter() - start < 0.5:
        pkts.decode_batch(pkts.encode_batch(steps, key), key)
        rounds += 1
    return rounds * len(steps) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    """Run the tour; returns the exit status."""
    console = Console(highlight=False)
    key = os.urandom(32)
    console.rule("[bold]mtpkt demo: packets")
    console.print("A fresh area key: 32 random bytes (an area keeps its own in .mtpkt/secret).")

    request = Run(target=TARGET, runname=RUNNAME, testpatt="runfirst/%")
    frame = pkts.encode(request, key)
    mac = frame[HEADER_SIZE:BODY_OFFSET].hex()[:12]
    console.print("\n[bold]1. The control packet[/] that asks for a run:")
    console.print(f"   [cyan]run[/] target {TARGET}, run {RUNNAME}, testpatt runfirst/%")
    console.print(
        f"   frame: {frame[:4].decode()} v{frame[4]} type {frame[5]} | MAC {mac}… | ", end=""
    )
    console.print(f"msgpack map, {len(frame)} bytes in all")
    received = pkts.decode(frame, key)
    assert received == request
    console.print(f"   verified and decoded: [green]{_describe(received)}[/]")
    console.print(f"   packet id {received.id.hex()}")

    report = _agent_report(seq_start=1)
    batch = pkts.encode_batch(report, key)
    console.print(
        f"\n[bold]2. Status packets[/] an agent reports for one test ({len(batch)} bytes):"
    )
    table = Table("seq", "kind", "what", box=None, padding=(0, 2))
    for packet in pkts.decode_batch(batch, key):
        assert isinstance(packet, Step | StatusChange)
        colour = "green" if packet.status == pkts.Status.PASS else "yellow"
        table.add_row(str(packet.seq), packet.kind, f"[{colour}]{_describe(packet)}[/]")
    console.print(table)

    console.print("\n[bold]3. Frames that must not be trusted:[/]")
    tampered = bytearray(frame)
    tampered[-3] ^= 0x01
    _reject(console, "one bit flipped", bytes(tampered), key)
    _reject(console, "another area's key", pkts.encode(request, os.urandom(32)), key)
    _reject(console, "cut short", frame[:20], key)

    rate = _speed(report, key)
    console.print(f"\n[bold]4. Speed:[/] {rate:,.0f} step packets/s encoded and decoded again,")
    console.print("   on one core, 200 to a frame.")
    console.rule()
    return ExitCode.OK
