"""``mepgate simulate``: a simulated meter on a TCP port or a pseudo-terminal.

The first line on stdout is where to connect (``tcp://HOST:PORT`` or ``/dev/pts/N``), so a
script can start the simulator and read one line; the keys in use go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
from collections.abc import Awaitable, Callable

import click

from mepgate.errors import LocalProtocolError
from mepgate.proto import AccessLevel, parse_key
from mepgate.proto.constants import DEFAULT_BAUD
from mepgate.simulator.faults import FAULTS_HELP, Faults, FaultSpec
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import SIM_PROFILES, build_meter
from mepgate.simulator.serve import MeterPort, PtyFrontEnd, TcpFrontEnd
from mepgate.simulator.timing import DEFAULT_PROCESSING, WireTiming

DEFAULT_PROFILE = "gen4-3phase"

_HELP = f"""A simulated meter on a TCP port or a pty.

\b
Prints where to connect as the first line on stdout (tcp://HOST:PORT, with the port
actually bound when 0 is given, or the pty's device path) and the keys in use on stderr.
One client at a time, as on a serial line: a second TCP connection waits until the first
closes.  Stop with Ctrl-C (SIGINT) or SIGTERM.

\b
Examples:
  mepgate simulate --tcp 127.0.0.1:0
  mepgate simulate --pty --profile gen3-1phase --speed 60
  mepgate simulate --tcp :2323 --faults drop=0.1,corrupt=0.01,seed=7

\b
{FAULTS_HELP}
"""


def _tcp_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT (e.g. 127.0.0.1:0), got {text!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)


@click.command(name="simulate", help=_HELP, short_help="A simulated meter on a pty or TCP port.")
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Listen on this TCP address.")
@click.option("--pty", "pty", is_flag=True, help="Serve on a new pseudo-terminal.")
@click.option(
    "--profile",
    type=click.Choice(sorted(SIM_PROFILES)),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="Which meter to simulate.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Reproducible meter.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--baud", type=click.IntRange(min=1), default=DEFAULT_BAUD, show_default=True, help="Line rate."
)
@click.option(
    "--processing-ms",
    type=click.FloatRange(min=0),
    default=DEFAULT_PROCESSING * 1000,
    show_default=True,
    help="The meter's think time before each reply.",
)
@click.option("--no-timing", is_flag=True, help="Send at once: no wire time, pauses, throttle.")
@click.option("--tls-required", is_flag=True, help="Serve requests only inside TLS-PSK.")
@click.option(
    "--faults", "faults", default="", metavar="SPEC", help="Faults to inject (grammar above)."
)
@click.option(
    "--mbk",
    default=DEFAULT_MBK.decode(),
    show_default=True,
    help="The meter's MEP Basic Key (20 characters).",
)
@click.option(
    "--mak",
    default=DEFAULT_MAK.decode(),
    show_default=True,
    help="The meter's MEP Advanced Key.",
)
@click.option(
    "--scheduled-read-min",
    type=click.IntRange(min=1),
    default=None,
    help="Raise the scheduled-read alert every N simulated minutes.",
)
def simulate(
    tcp: str | None,
    pty: bool,
    profile: str,
    seed: int,
    speed: float,
    baud: int,
    processing_ms: float,
    no_timing: bool,
    tls_required: bool,
    faults: str,
    mbk: str,
    mak: str,
    scheduled_read_min: int | None,
) -> None:
    if tcp is None and not pty:
        raise click.UsageError("say where to serve: --tcp HOST:PORT and/or --pty")
    address = _tcp_address(tcp) if tcp is not None else None
    try:
        keys = {AccessLevel.BASIC: parse_key(mbk), AccessLevel.ADVANCED: parse_key(mak)}
        spec = FaultSpec.parse(faults)
        timing = WireTiming(baud=baud, processing=processing_ms / 1000, enabled=not no_timing)
    except LocalProtocolError as error:
        raise click.UsageError(str(error)) from None
    loop = asyncio.new_event_loop()
    meter = build_meter(
        profile,
        seed=seed,
        start=dt.datetime.now(dt.UTC).replace(microsecond=0),
        speed=speed,
        origin=loop.time(),  # the ports' clock: time.monotonic
        keys=keys,
        tls_required=tls_required,
        scheduled_read_interval_min=scheduled_read_min,
    )
    faults_at_work = Faults(spec, epoch=loop.time(), default_seed=seed)
    line = f"{baud} baud" if timing.enabled else "no timing"
    click.echo(
        f"mepgate simulate: {profile}, seed {seed}, speed {speed:g}, {line}, "
        f"faults: {str(spec) or 'none'}{', TLS required' if tls_required else ''}\n"
        # The simulator's own demo keys (or the ones given): showing them is the point.
        f"  MBK: {mbk}\n  MAK: {mak}",
        err=True,
    )
    try:
        loop.run_until_complete(_serve(meter, timing, faults_at_work, address, pty))
    finally:
        loop.close()


async def _serve(
    meter: SimulatedMeter,
    timing: WireTiming,
    faults: Faults,
    address: tuple[str, int] | None,
    pty: bool,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        if address is not None:
            tcp_end = TcpFrontEnd(MeterPort(meter, timing=timing, faults=faults))
            try:
                _announce(await tcp_end.start(*address))
            except OSError as error:
                raise click.ClickException(
                    f"cannot listen on {address[0]}:{address[1]}: {error.strerror or error}; "
                    "pick another port (0 chooses a free one)"
                ) from None
            closers.append(tcp_end.close)
        if pty:
            pty_end = PtyFrontEnd(MeterPort(meter, timing=timing, faults=faults))
            _announce(await pty_end.start())
            closers.append(pty_end.close)
        await stop.wait()
    finally:
        for close in closers:
            with contextlib.suppress(OSError):
                await close()


def _announce(where: str) -> None:
    click.echo(where)
    sys.stdout.flush()
