"""The home of an area: its collector and its dispatcher in one long-lived process.

One request endpoint serves everyone: agents' status packets, heartbeats
and pulls, tails' queries and ``mtpkt send``'s control packets. The live
stream goes out on a second, publish endpoint. Both addresses are written
to ``<area>/.mtpkt/home.json`` so that commands run inside the area need no
address flag. Only one home may run per area (``.mtpkt/home.lock``).

With TLS settings both endpoints listen on ``tls+tcp://`` (a ``tcp://``
address given is turned into that), and ``home.json`` says so: whoever
dials the recorded addresses knows that TLS is required.
"""

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from mtpkt import pkts
from mtpkt.agents.area import Area, AreaError
from mtpkt.agents.home import peers
from mtpkt.agents.home.collector import Collector
from mtpkt.agents.home.dispatcher import Dispatcher
from mtpkt.agents.home.intake import ControlError
from mtpkt.agents.home.leftovers import send_leftovers
from mtpkt.agents.home.own import ORIGIN
from mtpkt.agents.homedir import HomeDir, HomeError
from mtpkt.bus import BusError, dial_address
from mtpkt.bus.tls import Tls, TlsError, plain_address, tls_address
from mtpkt.pkts.control import Archive, Clean, Control, Kill, RerunClean, Run, SetRun, SetState
from mtpkt.pkts.link import NOT_JOURNALED, Pull, Receipt
from mtpkt.pkts.liveness import GRACE
from mtpkt.pkts.text import one_line
from mtpkt.pkts.trouble import Trouble
from mtpkt.store import Store, StoreError
from mtpkt.store.schema import check_fields

__all__ = ["DEFAULT_LISTEN", "Home"]

_log = logging.getLogger(__name__)

DEFAULT_LISTEN: Final = "tcp://127.0.0.1:0"
"""Request endpoint when none is given: loopback, a free port (written to home.json)."""
WORKERS: Final = 32
"""Threads answering requests: agents' status and heartbeats wait on commits, and pulls and
commands must not wait for a free thread behind them. With 200 agents (a pull every 0.2 s,
status every 0.2 s, a beat every 2 s each) 8 threads were all waiting on commits most of the
time: round trips were 2 to 4 times longer (``benchmarks/load.py``, docs/performance.md)."""
RECOVERY_WAIT: Final = 30.0
"""Seconds a request waits for the home to pick up unfinished runs after it starts."""
TICK: Final = 0.2
"""Seconds between the dispatcher's follow-ups (blocked dependents, settled runs)."""

_CONTROL: Final = (Run, Kill, RerunClean, Clean, Archive, SetState, SetRun)


def _publish_address(listen: str) -> str:
    """The stream endpoint beside a request endpoint: the next tcp port, or a sibling ipc path."""
    for scheme in ("tcp://", "tls+tcp://"):
        if listen.startswith(scheme):
            host, _, port = listen[len(scheme) :].rpartition(":")
            return f"{scheme}{host}:0" if port in ("", "0") else f"{scheme}{host}:{int(port) + 1}"
    if listen.startswith("ipc://"):
        return listen + ".stream"
    raise ValueError(f"cannot derive a stream address from {listen!r}; pass --publish")


class Home:
    """The collector and dispatcher of one area.

    Args:
        area_dir: the area (its ``megatest.config`` and ``.mtpkt/``).
        listen: request endpoint (default: where the area's last home listened,
            if that is free again, so its agents find this one; else loopback,
            a free port).
        publish: live stream endpoint (default: next to ``listen``).
        durable: commits survive power loss (``synchronous=FULL``).
        env: overrides the environment the area's config files see.
        agent_grace: seconds an agent may be lost before its unfinished tests become DEAD
            (default: the area's ``[setup] deadtime``, else :data:`~mtpkt.pkts.liveness.GRACE`).
        tls: listen with TLS on both endpoints (mutual if the settings hold a CA).

    Raises:
        TlsError: TLS settings with an address that is not tcp.
        HomeError: another home runs for the area, or ``.mtpkt`` cannot be made.
        AreaError: the area's config files cannot be read.
        StoreError: the databases cannot be opened.
    """

    def __init__(
        self,
        area_dir: Path,
        *,
        listen: str | None = None,
        publish: str | None = None,
        durable: bool = True,
        env: dict[str, str] | None = None,
        agent_grace: float | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.tls = tls
        if tls is not None:  # before anything is made: a wrong address changes nothing
            listen, publish = (tls_address(a, tls) if a else a for a in (listen, publish))
        self.dir = HomeDir(Path(area_dir))
        self.area = Area.load(area_dir, env=env)
        try:  # before .mtpkt/ is made: an area that cannot be used leaves nothing behind
            check_fields(self.area.fields)
        except StoreError as exc:
            raise AreaError(f"{Path(area_dir) / 'megatest.config'}: {exc}") from None
        self.dir.lock()  # first: a second home makes nothing, not even a new secret
        try:
            self.dir.ensure()
        except BaseException:
            self.dir.unlock()
            raise
        self._stop = threading.Event()
        self._recovered = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="dispatcher", daemon=True)
        store: Store | None = None
        try:
            self.key = self.dir.key()
            self.store = store = Store(self.area.dbdir, self.area.fields, durable=durable)
            self.collector = self._collector(listen, publish)
            self.dispatcher = Dispatcher(
                self.area,
                self.store,
                self.collector.submit,
                agent_grace=_grace(self.area, agent_grace),
                homedir=self.dir,
            )
        except BaseException:
            if store is not None:
                store.close()
            self.dir.unlock()
            raise

    def _collector(self, listen: str | None, publish: str | None) -> Collector:
        """The collector on the given endpoints, or on the last home's if they are free."""
        if listen is None:
            try:
                last_listen, last_publish = self.dir.addresses()
            except HomeError:
                pass  # no home ran here before
            else:
                # The last home may have had TLS and this one not, or the other way round.
                last_listen, last_publish = (
                    self._transport(plain_address(a)) for a in (last_listen, last_publish)
                )
                try:
                    return self._collector(last_listen, publish or last_publish)
                except BusError as exc:
                    _log.warning("cannot listen where the last home did (%s); a new address", exc)
        listen = listen or self._transport(DEFAULT_LISTEN)
        return Collector(
            self.store,
            self.key,
            listen=listen,
            publish=publish or _publish_address(listen),
            other=self._other,
            on_commit=self._observe,
            workers=WORKERS,
            tls=self.tls,
        )

    def _transport(self, address: str) -> str:
        """``address`` with TLS if this home has it (a tcp address then, by construction)."""
        try:
            return tls_address(address, self.tls)
        except TlsError:
            return address  # ipc, where the last home listened: refused below, a new one taken

    @property
    def listen_address(self) -> str:
        return self.collector.listen_address

    @property
    def publish_address(self) -> str:
        return self.collector.publish_address

    def start(self) -> None:
        """Serve; the addresses are in ``.mtpkt/home.json`` once this returns.

        Control packets an earlier home left unfinished are picked up first.
        """
        self.collector.start()
        self.dispatcher.start()
        try:
            self.dispatcher.recover()
        finally:
            self._recovered.set()
        self.dir.write_addresses(listen=self.listen_address, publish=self.publish_address)
        self._ticker.start()
        # After the addresses are written: the agents in batch jobs read them.
        self.dispatcher.batch.start(self._send_leftovers, dial_address(self.listen_address))
        _log.info(
            "home of %s: requests %s, stream %s (pid %d)",
            self.area.home,
            self.listen_address,
            self.publish_address,
            os.getpid(),
        )

    def close(self) -> None:
        """Stop serving; everything committed stays committed."""
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
        self.dispatcher.close()
        self.collector.close()
        self.store.close()
        self.dir.unlock()
        writer = self.collector.writer
        if writer.groups:
            _log.info(
                "committed %d status packet(s) in %d group commit(s), %.0f each",
                writer.grouped,
                writer.groups,
                writer.grouped / writer.groups,
            )

    def __enter__(self) -> "Home":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests the collector does not take itself (worker threads) ----------------

    def _other(self, packets: Sequence[pkts.Packet]) -> bytes:
        # Commands and pulls wait until the runs a previous home left are picked up again
        # (agents' status is committed meanwhile: the dispatcher follows it).
        if not self._recovered.wait(RECOVERY_WAIT):
            return self._receipt(error="the home is still starting up; try again")
        first = packets[0]
        if len(packets) == 1 and isinstance(first, _CONTROL):
            return self._control(first)
        if len(packets) == 1 and isinstance(first, Pull):
            problem = peers.problem(first)
            if problem:
                _log.warning("rejected a pull from %r: %s", first.origin, problem)
                return self._receipt(error=f"rejected: {problem}")
            try:
                tasks = self.dispatcher.pull(first)
            except (StoreError, TimeoutError) as exc:  # the collector logs the store's failure
                return self._receipt(error=f"not committed: {exc}")
            return pkts.encode_batch([Receipt(origin=ORIGIN), *tasks], self.key)
        kinds = ", ".join(sorted({p.kind for p in packets}))
        _log.warning("rejected %s packets from %s: not taken by the home", kinds, first.origin)
        return self._receipt(error=f"rejected: {kinds} packets are not taken by the home")

    def _control(self, packet: Control) -> bytes:
        try:
            accepted = self.dispatcher.control(packet)
        except ControlError as exc:
            _log.warning("refused %s from %s: %s", packet.kind, packet.origin, exc)
            return self._receipt(error=str(exc))
        except (StoreError, TimeoutError) as exc:
            _log.error("could not journal %s from %s: %s", packet.kind, packet.origin, exc)
            return self._receipt(error=f"{NOT_JOURNALED}{exc}")
        except Exception as exc:
            # A fault of the home's own must reach the sender as its reason, not as a home
            # that went quiet ("no answer … is mtpkt home running?").
            _log.exception("failed on %s from %s", packet.kind, packet.origin)
            return self._receipt(
                error=f"the home failed on it: {one_line(exc)} (its log has the details)"
            )
        _log.info(
            "%s %s/%s %s from %s: journaled as %s",
            packet.kind,
            packet.target,
            packet.runname,
            packet.testpatt,
            packet.origin,
            packet.id.hex(),
        )
        if accepted is not None:  # what the home will do, for the sender to print
            return pkts.encode_batch([Receipt(origin=ORIGIN, ids=(packet.id,)), accepted], self.key)
        return self._receipt(ids=(packet.id,))

    def _receipt(self, *, ids: tuple[bytes, ...] = (), error: str = "") -> bytes:
        return pkts.encode(Receipt(origin=ORIGIN, ids=ids, error=error), self.key)

    # -- the dispatcher's follow-ups ---------------------------------------------------

    def _send_leftovers(self, state_dir: Path) -> bool:
        return send_leftovers(state_dir, self.listen_address, self.key, tls=self.tls)

    def _observe(self, packets: Sequence[pkts.StatusPacket]) -> None:
        self.dispatcher.observe(packets)

    def _tick_loop(self) -> None:
        trouble = Trouble("dispatcher", _log, logging.ERROR)  # once a fault, not every tick
        while not self._stop.wait(TICK):
            try:
                self.dispatcher.tick()
            except (StoreError, TimeoutError) as exc:
                trouble.report(str(exc))
            else:
                trouble.clear()


def _grace(area: Area, given: float | None) -> float:
    """The grace for lost agents: as given, else ``[setup] deadtime`` (the silence after which
    Megatest marks a running test DEAD, db.scm:1594-1626), else :data:`GRACE`.

    Raises:
        ConfigError: ``deadtime`` is not a number or time.
    """
    if given is not None:
        return given
    deadtime = area.deadtime
    return GRACE if deadtime is None else deadtime
