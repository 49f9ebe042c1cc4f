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

from mepgate.c1218.keys import parse_password as parse_c1218_password
from mepgate.errors import LocalProtocolError
from mepgate.proto import AccessLevel, parse_key
from mepgate.proto.constants import DEFAULT_BAUD
from mepgate.service.clock import SpedClock, parse_epoch
from mepgate.simulator.faults import FAULTS_HELP, Faults, FaultSpec
from mepgate.simulator.meter import (
    DEFAULT_MAK,
    DEFAULT_MBK,
    DEFAULT_MK,
    DEFAULT_PK,
    DEFAULT_RK,
    SimulatedMeter,
)
from mepgate.simulator.model import SIM_PROFILES, LoadProfileShape, build_meter, model_of
from mepgate.simulator.model.happenings import EVENTS_HELP, parse_events
from mepgate.simulator.model.mbus import parse_mbus
from mepgate.simulator.model.self_reads import DEFAULT_SCHEDULE as DEFAULT_SELF_READ
from mepgate.simulator.model.self_reads import SCHEDULES as SELF_READ_SCHEDULES
from mepgate.simulator.optical import OpticalKey, optical_server
from mepgate.simulator.serve import MeterPort, PtyFrontEnd, TcpFrontEnd
from mepgate.simulator.serve.background import INTERFACES, check_interface
from mepgate.simulator.serve.optical import OpticalPort, SharedUart
from mepgate.simulator.serve.port import ServedPort
from mepgate.simulator.timing import DEFAULT_PROCESSING, WireTiming
from mepgate.tables.errors import InvalidDimensionError

DEFAULT_PROFILE = "gen4-3phase"

_HELP = f"""A simulated meter on a TCP port or a pty.

\b
Prints where to connect as the first line on stdout (tcp://HOST:PORT, with the port
actually bound when 0 is given, or the pty's device path) and the keys in use on stderr.
One client at a time, as on a serial line: a second TCP connection waits until the first
closes.  Stop with Ctrl-C (SIGINT) or SIGTERM.

\b
--interface optical serves the optical port (ANSI C12.18) instead of MEP; keys --mk, --pk,
--rk.  --interface both (Gen 3 profiles: one UART shared by both ports) prints the MEP
endpoint(s) first, then the optical one(s); with --tcp HOST:PORT the optical port listens
on PORT+1 (or a free port when PORT is 0).

\b
Examples:
  mepgate simulate --tcp 127.0.0.1:0
  mepgate simulate --pty --profile gen3-1phase --speed 60
  mepgate simulate --tcp 127.0.0.1:0 --speed 3600 --self-read daily
  mepgate simulate --tcp :2323 --faults drop=0.1,corrupt=0.01,seed=7
  mepgate simulate --tcp 127.0.0.1:0 --speed 60 --events outage=300@600,tamper@900
  mepgate simulate --interface optical --pty --profile gen3-3phase
  mepgate simulate --interface both --tcp 127.0.0.1:0 --profile gen3-1phase
  mepgate simulate --tcp :2323 --lp-interval 15 --lp-depth 7 --lp-history 9 --speed 600

\b
{FAULTS_HELP}

\b
{EVENTS_HELP}
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
    "--events",
    "events",
    default="",
    metavar="SPEC",
    help="Outages, tamper attempts, clock sets to happen (grammar above).",
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
    "--interface",
    type=click.Choice(INTERFACES),
    default="mep",
    show_default=True,
    help="Serve the MEP port, the optical port (C12.18), or both (Gen 3: shared UART).",
)
@click.option(
    "--mk", default=DEFAULT_MK.decode(), show_default=True, help="Optical Unique Key (MK)."
)
@click.option(
    "--pk", default=DEFAULT_PK.decode(), show_default=True, help="Optical Provisioning Key (PK)."
)
@click.option(
    "--rk", default=DEFAULT_RK.decode(), show_default=True, help="Optical Read-only Key (RK)."
)
@click.option(
    "--speed-epoch",
    metavar="ISO",
    default=None,
    help="With --speed: the simulated clock reads EPOCH + (now - EPOCH) * SPEED, the time line "
    "of a gateway run with the same --speed and --speed-epoch (demos, tests).",
)
@click.option(
    "--lp-interval",
    type=click.IntRange(min=1, max=60),
    default=None,
    metavar="MIN",
    help="Load profile interval in minutes (default 15; a divisor of 60).",
)
@click.option(
    "--lp-depth",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="DAYS",
    help="Load profile depth in days, after which it wraps (default 100).",
)
@click.option(
    "--lp-history",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="DAYS",
    help="The meter was installed this many days ago: its profile holds them (at most the "
    "depth) -- what a gateway's first installation back-fills.",
)
@click.option("--no-load-profile", is_flag=True, help="A meter without a load profile (BT61-BT64).")
@click.option(
    "--scheduled-read-min",
    type=click.IntRange(min=1),
    default=None,
    help="Raise the scheduled-read alert every N simulated minutes.",
)
@click.option(
    "--mbus",
    default="water",
    show_default=True,
    metavar="MEDIA",
    help="M-Bus sub-meters in slots 1..4: gas, water, heat, electricity (comma-separated), or "
    "none.",
)
@click.option(
    "--mbus-stop",
    "mbus_stop",
    multiple=True,
    metavar="SLOT@SECONDS",
    help="M-Bus device SLOT stops answering SECONDS simulated seconds after start (repeatable).",
)
@click.option(
    "--mbus-et45-only",
    is_flag=True,
    help="Log M-Bus reads after each device's first one to ET45 only (ET16 keeps the first), "
    "as meters whose compatibility setting says so.",
)
@click.option(
    "--self-read",
    "self_read",
    type=click.Choice(SELF_READ_SCHEDULES),
    default=DEFAULT_SELF_READ,
    show_default=True,
    help="When the meter takes its billing self-reads (BT26), at 00:00 local time.",
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
    events: str,
    mbk: str,
    mak: str,
    interface: str,
    mk: str,
    pk: str,
    rk: str,
    scheduled_read_min: int | None,
    mbus: str,
    mbus_stop: tuple[str, ...],
    mbus_et45_only: bool,
    self_read: str,
    speed_epoch: str | None = None,
    lp_interval: int | None = None,
    lp_depth: float | None = None,
    lp_history: float = 0.0,
    no_load_profile: bool = False,
) -> None:
    if tcp is None and not pty:
        raise click.UsageError("say where to serve: --tcp HOST:PORT and/or --pty")
    address = _tcp_address(tcp) if tcp is not None else None
    try:
        keys = {AccessLevel.BASIC: parse_key(mbk), AccessLevel.ADVANCED: parse_key(mak)}
        optical_keys = {
            OpticalKey.MK: parse_password(mk, "--mk"),
            OpticalKey.PK: parse_password(pk, "--pk"),
            OpticalKey.RK: parse_password(rk, "--rk"),
        }
        spec = FaultSpec.parse(faults)
        media = parse_mbus(mbus)
        stops = _mbus_stops(mbus_stop, len(media))
        happenings = parse_events(events)
        timing = WireTiming(baud=baud, processing=processing_ms / 1000, enabled=not no_timing)
    except LocalProtocolError as error:
        raise click.UsageError(str(error)) from None
    try:
        shape = LoadProfileShape(
            interval_min=lp_interval,
            depth_days=lp_depth,
            history=dt.timedelta(days=lp_history),
            present=not no_load_profile,
        )
        epoch = parse_epoch(speed_epoch) if speed_epoch is not None else None
    except (InvalidDimensionError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    start = (SpedClock(speed, epoch)() if epoch is not None else dt.datetime.now(dt.UTC)).replace(
        microsecond=0
    )
    loop = asyncio.new_event_loop()
    meter = build_meter(
        profile,
        seed=seed,
        start=start,
        load_profile=shape,
        speed=speed,
        origin=loop.time(),  # the ports' clock: time.monotonic
        keys=keys,
        tls_required=tls_required,
        scheduled_read_interval_min=scheduled_read_min,
        mbus=media,
        mbus_stops=stops,
        mbus_et16_compat=not mbus_et45_only,
        self_read=self_read,
    )
    for happening in happenings:
        model_of(meter).schedule(happening)
    try:
        check_interface(interface, meter)
    except LocalProtocolError as error:
        raise click.UsageError(str(error)) from None
    faults_at_work = Faults(spec, epoch=loop.time(), default_seed=seed)
    line = f"{baud} baud" if timing.enabled else "no timing"
    # The simulator's own demo keys (or the ones given): showing them is the point.
    shown = []
    if interface != "optical":
        shown += [f"  MBK: {mbk}", f"  MAK: {mak}"]
    if interface != "mep":
        shown += [f"  MK: {mk}", f"  PK: {pk}", f"  RK: {rk}"]
    click.echo(
        f"mepgate simulate: {profile}, {interface}, seed {seed}, speed {speed:g}, {line}, "
        f"faults: {str(spec) or 'none'}{', TLS required' if tls_required else ''}, "
        f"M-Bus: {', '.join(media) or 'none'}\n" + "\n".join(shown),
        err=True,
    )
    ports = _ports(meter, interface, timing, faults_at_work, optical_keys)
    try:
        loop.run_until_complete(_serve(ports, address, pty))
    finally:
        loop.close()


def _mbus_stops(items: tuple[str, ...], devices: int) -> dict[int, float]:
    stops: dict[int, float] = {}
    for item in items:
        slot, sep, after = item.partition("@")
        try:
            number, seconds = int(slot), float(after)
        except ValueError:
            number, seconds = 0, -1.0
        if not sep or not 1 <= number <= devices or seconds < 0:
            raise LocalProtocolError(
                f"--mbus-stop {item!r}: expected SLOT@SECONDS with SLOT 1..{devices} (the "
                "devices --mbus gives) and SECONDS >= 0"
            )
        stops[number] = seconds
    return stops


def parse_password(text: str, option: str) -> bytes:
    """A 20-character optical key as the meter holds it (``hex:`` + 40 digits also works)."""
    try:
        return parse_c1218_password(text).value
    except LocalProtocolError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


Factory = Callable[[], ServedPort]


def _ports(
    meter: SimulatedMeter,
    interface: str,
    timing: WireTiming,
    faults: Faults,
    optical_keys: dict[OpticalKey, bytes],
) -> list[Factory]:
    """One factory per interface (MEP first), each making a port per front end."""
    shared = SharedUart() if interface == "both" else None
    factories: list[Factory] = []
    if interface != "optical":
        factories.append(
            lambda: MeterPort(meter, timing=timing, faults=faults, shared=shared),
        )
    if interface != "mep":
        server = optical_server(meter, keys=optical_keys)
        factories.append(
            lambda: OpticalPort(meter, server, timing=timing, faults=faults, shared=shared)
        )
    return factories


async def _serve(ports: list[Factory], address: tuple[str, int] | None, pty: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        for index, make in enumerate(ports):
            if address is not None:
                host, port = address
                bound = port + index if port else 0
                tcp_end = TcpFrontEnd(make())
                try:
                    _announce(await tcp_end.start(host, bound))
                except OSError as error:
                    raise click.ClickException(
                        f"cannot listen on {host}:{bound}: {error.strerror or error}; "
                        "pick another port (0 chooses a free one)"
                    ) from None
                closers.append(tcp_end.close)
            if pty:
                pty_end = PtyFrontEnd(make())
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
