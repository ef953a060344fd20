"""The way from a command to an area's home: the area's key, the home's addresses, and
asking the home to take a control packet (:func:`ask_home`).

Every failure is a :class:`CliError` with the exit code that says which part
is wrong: the area (``BAD_AREA``), the address (``USAGE``), the home's silence
(``UNREACHABLE``), its answer (``BAD_REPLY``) or its refusal (``REFUSED``).
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from mtpkt import pkts
from mtpkt.pkts.link import NOT_JOURNALED
from mtpkt.tools.errors import CliError
from mtpkt.tools.exitcodes import ExitCode
from mtpkt.tools.interrupts import close_when_idle, in_thread
from mtpkt.tools.local_area import area_dir
from mtpkt.tools.tls_options import check_handshake, dial_tls, tls_endpoint

if TYPE_CHECKING:  # imported for real inside the functions: `mtpkt --help` stays quick
    from mtpkt.agents.homedir import HomeDir
    from mtpkt.bus.follow import Follower
    from mtpkt.bus.tls import Tls

__all__ = [
    "REFUSED_WAIT",
    "HomeLink",
    "ask_home",
    "bad_address",
    "check_listening",
    "home_address",
    "load_key",
    "publish_address",
    "unreachable",
]

REFUSED_WAIT: Final = 2.0
"""Seconds a home address may refuse connections (a home starting up) before a command gives
up."""


# -- the area's key and its home's addresses -----------------------------------------------


def _not_an_area(home: "HomeDir") -> CliError | None:
    """The error for a directory that is no area at all, which explains more than what
    it lacks of ``.mtpkt/``."""
    from mtpkt.agents.area import not_an_area

    if not (why := not_an_area(home.area)):
        return None
    from mtpkt.tools.local_area import area_dir, env_chose

    source = env_chose(None) if home.area == area_dir(None) else ""
    return CliError(
        f"{why}: cd into the area, pass --area DIR, or give --home and --key-file{source}",
        ExitCode.BAD_AREA,
    )


def load_key(home: "HomeDir", key_file: Path | None) -> bytes:
    """The area's key, or a :class:`CliError` (``BAD_AREA``) saying what is wrong with it."""
    from mtpkt.agents.homedir import HomeError

    try:
        return home.key(key_file)
    except HomeError as exc:
        not_an_area = None if key_file else _not_an_area(home)
        raise not_an_area or CliError(str(exc), ExitCode.BAD_AREA) from None


def home_address(home: "HomeDir", given: str | None) -> str:
    """The home's request address: ``--home``, else the one in ``.mtpkt/home.json``."""
    from mtpkt.agents.homedir import HomeError

    if given:
        return given
    try:
        return home.addresses()[0]
    except HomeError as exc:
        raise _not_an_area(home) or CliError(str(exc), ExitCode.BAD_AREA) from None


def publish_address(
    home: "HomeDir", listen: str, publish: str | None, *, home_given: bool, needed_by: str
) -> str:
    """The home's live stream address: ``publish`` if given, else the one in ``home.json``
    (only if that file is about the home at ``listen``).

    Args:
        needed_by: the option or command that needs it, for the error messages.
    """
    from mtpkt.agents.homedir import HomeError

    if publish:
        return publish
    try:
        recorded_listen, recorded_publish = home.addresses()
    except HomeError as exc:
        if home_given:
            raise CliError(
                f"{needed_by} needs the home's stream address too: pass --publish ADDR with --home",
                ExitCode.USAGE,
            ) from None
        raise CliError(str(exc), ExitCode.BAD_AREA) from None
    if recorded_listen != listen:
        raise CliError(
            f"{needed_by} needs the stream address of the home at {listen}: pass --publish ADDR"
            f" ({home.address_path} is about the home at {recorded_listen})",
            ExitCode.USAGE,
        )
    return recorded_publish


# -- what goes wrong on the way -------------------------------------------------------------


def bad_address(address: str, error: Exception) -> CliError:
    """The USAGE error for an address NNG cannot dial."""
    reason = str(error).rpartition(": ")[2]
    return CliError(
        f"cannot dial the home at {address!r}: {reason}"
        " (addresses look like tcp://host:port or ipc:///path)",
        ExitCode.USAGE,
    )


def check_listening(address: str, timeout: float, tls: "Tls | None" = None) -> None:
    """Fail at once (UNREACHABLE) if ``address`` has refused connections for a while: nothing
    listens there (a home still starting up is given up to 2 s); with TLS, also if the
    handshake fails."""
    from mtpkt.bus import refused

    if refused(address, within=min(timeout, REFUSED_WAIT), tls=tls):
        raise CliError(
            f"nothing listens at {address}: the connection is refused (is `mtpkt home` running?)",
            ExitCode.UNREACHABLE,
        )
    check_handshake(address, tls)


def unreachable(address: str, timeout: float) -> CliError:
    """The UNREACHABLE error for a home that did not answer within ``timeout`` seconds."""
    from mtpkt.bus.tls import is_tls_address

    trusted = ", and its certificate trusted by --tls-ca" if is_tls_address(address) else ""
    return CliError(
        f"no answer from the home at {address} within {timeout:g}s"
        f" (is `mtpkt home` running{trusted}?)",
        ExitCode.UNREACHABLE,
    )


# -- asking the home ------------------------------------------------------------------------


def ask_home(
    packet: pkts.Control, key: bytes, address: str, timeout: float, tls: "Tls | None"
) -> str:
    """Send the packet to the home at ``address``, on a socket of its own; return once the
    home's receipt names it (the home has journaled it).

    Returns:
        What the home will do, when it says (a run's plan: the reason of the ``accepted``
        ack that comes with the receipt); else "".

    Raises:
        CliError: an address NNG cannot dial (USAGE), no answer in time
            (UNREACHABLE), an answer that does not verify (BAD_REPLY), or a
            refusal (REFUSED).
    """
    from mtpkt.bus import BusError, BusTimeout, Requester
    from mtpkt.pkts.link import Receipt

    try:
        requester = Requester(address, timeout=timeout, tls=tls)
    except BusError as exc:
        raise bad_address(address, exc) from None
    try:
        check_listening(address, timeout, tls)
    except CliError:
        requester.close()
        raise
    frame = pkts.encode(packet, key)
    try:
        raw = in_thread(lambda: requester.request(frame, timeout=timeout), "mtpkt send request")
    except BusTimeout:
        raise unreachable(address, timeout) from None
    except BusError as exc:
        raise CliError(
            f"no answer from the home at {address}: {exc}", ExitCode.UNREACHABLE
        ) from None
    finally:
        close_when_idle(requester.close)
    try:
        packets = pkts.decode_batch(raw, key)  # a single packet reads as a batch of one
    except pkts.PacketError as exc:
        raise CliError(
            f"the answer from {address} does not verify ({exc}): is the key the area's?",
            ExitCode.BAD_REPLY,
        ) from None
    reply = packets[0] if packets else None
    if not isinstance(reply, Receipt):
        what = f"a {reply.kind} packet" if reply is not None else "nothing"
        raise CliError(f"the home at {address} answered with {what}", ExitCode.BAD_REPLY)
    if reply.error.startswith(NOT_JOURNALED):  # its disk failed: nothing was done
        reason = reply.error.removeprefix(NOT_JOURNALED)
        raise CliError(
            f"the home could not journal the {packet.kind}, so nothing was done: {reason}",
            ExitCode.REFUSED,
        )
    if reply.error:
        raise CliError(f"the home refused the {packet.kind}: {reply.error}", ExitCode.REFUSED)
    if packet.id not in reply.ids:
        raise CliError(
            f"the home's receipt does not name the {packet.kind} packet {packet.id.hex()}",
            ExitCode.BAD_REPLY,
        )
    return _accepted(packets[1:], packet.id)


def _accepted(packets: Sequence[pkts.Packet], control: bytes) -> str:
    """The reason of the ``accepted`` ack of ``control`` among ``packets``, or "" (a home
    that says nothing more than its receipt)."""
    from mtpkt.pkts.status import Ack

    for packet in packets:
        if (
            isinstance(packet, Ack)
            and packet.ref == control
            and packet.outcome is pkts.AckOutcome.ACCEPTED
        ):
            return packet.reason
    return ""


# -- all of it, from the command line -------------------------------------------------------


@attrs.frozen
class HomeLink:
    """How a command reaches the home: from ``--area``, ``--home``, ``--key-file`` and the
    TLS options (:func:`tools.options.where_options`)."""

    home: "HomeDir"
    """The area's ``.mtpkt/``."""
    key: bytes
    """The area's key, which signs every packet."""
    tls: "Tls | None"
    """The TLS settings to dial with (None: plain tcp)."""
    listen: str
    """The home's request address, as dialed (``tls+tcp://`` with TLS)."""

    @classmethod
    def of(cls, args: argparse.Namespace, area: Path | None = None) -> "HomeLink":
        """The link the command line describes; ``area``: the area, found already.

        Raises:
            CliError: a missing or bad key or address (BAD_AREA), bad TLS options (USAGE).
        """
        from mtpkt.agents.homedir import HomeDir

        home = HomeDir(area or area_dir(args.area))
        key = load_key(home, args.key_file)
        tls = dial_tls(args)
        return cls(home, key, tls, tls_endpoint(home_address(home, args.home), tls))

    def stream(self, args: argparse.Namespace, *, needed_by: str) -> str:
        """The home's live stream address (``--publish``, else ``home.json``'s), as dialed."""
        publish = publish_address(
            self.home, self.listen, args.publish, home_given=bool(args.home), needed_by=needed_by
        )
        return tls_endpoint(publish, self.tls)

    def ask(self, packet: pkts.Control, timeout: float) -> str:
        """:func:`ask_home` at :attr:`listen`; what the home says it will do, or ""."""
        return ask_home(packet, self.key, self.listen, timeout, self.tls)

    def follower(
        self, publish: str, *, target: str, runname: str, timeout: float, acks: bool = False
    ) -> "Follower":
        """A :class:`bus.follow.Follower` of the runs of ``target`` and ``runname`` (empty:
        any), with the ``ack`` packets when ``acks``; a USAGE error for a stream address NNG
        cannot dial."""
        from mtpkt.bus import BusError
        from mtpkt.bus.follow import Follower

        try:
            return Follower(
                self.listen,
                publish,
                self.key,
                target=target,
                runname=runname,
                acks=acks,
                timeout=timeout,
                tls=self.tls,
            )
        except BusError as exc:
            raise bad_address(publish, exc) from None
