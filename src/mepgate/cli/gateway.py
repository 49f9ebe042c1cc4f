"""``mepgate serve`` and ``mepgate demo``: the gateway with its web app, in one event loop.

The web app (:func:`mepgate.web.create_app`) runs under uvicorn in the same loop as the
pollers.  SIGINT/SIGTERM stop the web server, then the pollers, then store the
last batch.  Outputs: the MQTT publisher (:mod:`mepgate.outputs.mqtt`) while ``[mqtt]`` is
set (``--mqtt URL`` sets it); ``/metrics`` is the web app's.  ``sim:PROFILE`` meters run
in-process (:mod:`mepgate.simulator.embedded`), given to the gateway by :func:`gateway_for`.

Exit codes: 0 stopped by a signal, 1 the database or the web server failed, 2 the
configuration is invalid (the message names the key and what would be valid) or the listen
address cannot be used (in use, not allowed, not this computer's: the message says how to pick
another).  The listening socket is bound before the gateway starts, so a busy address is one
line of error, not uvicorn's traceback after the pollers came up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import functools
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import click
from pydantic import ValidationError

from mepgate.cli.meter_options import EXIT_METER, EXIT_USAGE
from mepgate.config import (
    ConfigError,
    Interface,
    MeterConfig,
    Settings,
    is_simulated,
    load_settings,
    override_settings,
)
from mepgate.errors import MepgateError
from mepgate.outputs.discovery import check_disabled_entities
from mepgate.service.clock import clock_for, parse_epoch
from mepgate.service.gateway import Gateway, Output
from mepgate.service.view import GatewayView
from mepgate.simulator.embedded import EmbeddedSimulators
from mepgate.store import StoreError

log = logging.getLogger("mepgate")

DEFAULT_LISTEN = "127.0.0.1:8080"
DEMO_PROFILE = "gen4-3phase"
DEMO_METER = "demo"
CONFIG_NAME = "mepgate.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/mepgate`` (default ``~/.local/share/mepgate``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mepgate"


def user_config_file() -> Path:
    """``$XDG_CONFIG_HOME/mepgate/mepgate.toml`` (default ``~/.config/...``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mepgate" / CONFIG_NAME


# -- settings -------------------------------------------------------------------------------------
def with_overrides(settings: Settings, *, listen: str | None, mqtt: str | None) -> Settings:
    """``settings`` with the command line's ``--listen`` and ``--mqtt`` applied (validated);
    saving the settings never writes them (:mod:`mepgate.config.overrides`)."""
    changes: dict[str, tuple[str, object]] = {}
    if listen is not None:
        changes["web.listen"] = ("--listen", listen)
    if mqtt is not None:
        changes["mqtt.url"] = ("--mqtt", mqtt)
    try:
        return override_settings(settings, changes)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors(include_input=False, include_url=False)
        ]
        option = "--listen" if listen is not None and "web" in problems[0] else "--mqtt"
        raise ConfigError(f"{option}: " + "; ".join(problems)) from None


def demo_settings(*, optical: bool = False) -> Settings:
    """The demo's one simulated meter, read through its MEP port or (``optical``) its
    optical port."""
    interface: Interface = "optical" if optical else "mep"
    meter = MeterConfig(name=DEMO_METER, port=f"sim:{DEMO_PROFILE}", interface=interface)
    return Settings(meter=[meter])


def read_optically(settings: Settings) -> Settings:
    """``settings`` with every simulated meter read through its optical port (``demo
    --optical`` on a demo directory that has its own configuration)."""
    meters = [
        MeterConfig.model_validate({**m.model_dump(), "interface": "optical"})
        if is_simulated(m.port)
        else m
        for m in settings.meter
    ]
    return settings.model_copy(update={"meter": meters})


# -- the web app ----------------------------------------------------------------------------------
def outputs_for(data_dir: Path) -> Sequence[Output]:
    """The outputs the gateway runs: the MQTT publisher, while ``[mqtt]`` is configured.

    Each reads ``view.settings`` when (re)started, so a changed ``[mqtt]`` section applies
    after :meth:`Gateway.apply_settings` restarts the outputs.
    """
    try:
        mqtt = importlib.import_module("mepgate.outputs.mqtt")
    except ImportError:
        return ()

    async def publish_mqtt(view: GatewayView) -> None:
        config = view.settings.mqtt
        if config is None:
            return  # not configured: nothing to run until the settings change
        await mqtt.MqttPublisher(view, config, data_dir=data_dir).run()

    return (publish_mqtt,)


def gateway_for(
    settings: Settings,
    *,
    data_dir: Path,
    config_path: Path,
    speed: float = 1.0,
    speed_epoch: dt.datetime | None = None,
) -> Gateway:
    """The gateway of ``serve`` and ``demo``: its outputs, and ``sim:PROFILE`` meters (the
    demo's, or any a configuration names) run in this process.  ``speed`` and ``speed_epoch``
    make its clock run faster (:class:`~mepgate.service.clock.SpedClock`; demos and tests)."""
    clock = clock_for(speed, speed_epoch)
    return Gateway(
        settings,
        data_dir=data_dir,
        config_path=config_path,
        outputs=outputs_for(data_dir),
        simulated=EmbeddedSimulators(speed=speed, now=clock),
        clock=clock,
    )


SPEED_EPOCH_FILE = "speed-epoch"
"""In the demo's data directory: the epoch of its sped clock, kept so that a restarted demo
continues on the same time line (its stored history stays in the past)."""


def demo_epoch(data_dir: Path) -> dt.datetime:
    """The demo's speed epoch: read from its data directory, or now (and kept there)."""
    path = data_dir / SPEED_EPOCH_FILE
    try:
        return parse_epoch(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        epoch = dt.datetime.now(dt.UTC).replace(microsecond=0)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(epoch.isoformat() + "\n", encoding="utf-8")
        return epoch


def _speed_options(command: Callable[..., None], *, hidden: bool) -> Callable[..., None]:
    command = click.option(
        "--speed",
        type=click.FloatRange(min=0, min_open=True),
        default=1.0,
        show_default=True,
        hidden=hidden,
        help="For demos and tests: the gateway's clock (and a simulated meter's) runs this "
        "many times faster, so that days pass in minutes.",
    )(command)
    if hidden:
        command = click.option(
            "--speed-epoch",
            metavar="ISO",
            hidden=True,
            help="With --speed: the clock reads EPOCH + (now - EPOCH) * SPEED (give the same "
            "to mepgate simulate and on every restart).",
        )(command)
    return command


# -- running ---------------------------------------------------------------------------------------
class ListenError(ConfigError):
    """The web address cannot be listened on; the message says why and how to choose another."""


_BIND_PROBLEMS = {
    errno.EADDRINUSE: "the address is in use (another mepgate, or another program, listens there)",
    errno.EACCES: "not allowed (ports below 1024 need extra rights)",
    errno.EADDRNOTAVAIL: "this computer has no such address",
}


def listen_socket(host: str, port: int, listen: str) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn; :class:`ListenError` naming ``listen`` (the
    address as configured) and how to pick another when it cannot be bound."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise ListenError(_listen_message(listen, f"unknown host ({error.strerror})")) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        why = _BIND_PROBLEMS.get(error.errno or 0, error.strerror or str(error))
        raise ListenError(_listen_message(listen, why)) from None
    sock.set_inheritable(True)
    return sock


def _listen_message(listen: str, why: str) -> str:
    return (
        f"cannot listen on {listen}: {why}. Choose another address with --listen HOST:PORT "
        "(for example --listen 127.0.0.1:8081), or set listen in the [web] section of the "
        "configuration"
    )


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def run_gateway(gateway: Gateway, *, log_level: str, announce: Callable[[str], None]) -> int:
    """Start ``gateway`` and its web app, serve until SIGINT/SIGTERM, stop, flush."""
    import uvicorn  # noqa: PLC0415 - only serve and demo need it

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # ours (below): stop the server, then the gateway, then flush

    web = gateway.settings.web
    sock = listen_socket(web.host, web.port, web.listen)  # before anything starts
    try:
        await gateway.start()
    except BaseException:
        sock.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    from mepgate.web import close_streams, create_app  # noqa: PLC0415 - FastAPI loads slowly

    app = create_app(gateway, data_dir=gateway.data_dir)
    config = uvicorn.Config(
        app,
        host=web.host,
        port=web.port,
        log_level="warning" if log_level in ("info", "warning") else log_level,
        lifespan="on",
        # X-Forwarded-* is believed only from [web] trusted_proxies, by the app itself
        # (mepgate.web.security); uvicorn's own handling would trust 127.0.0.1 by default.
        proxy_headers=False,
    )
    server = Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="mepgate-web")
    code = 0
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            host = f"[{web.host}]" if ":" in web.host else web.host
            announce(f"http://{host}:{sock.getsockname()[1]}/")  # the port bound (0: any)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        close_streams(app)  # open live streams would hold up the graceful shutdown
        server.should_exit = True
        try:
            await serving
        except SystemExit:
            code = EXIT_METER
        if not server.started:
            click.echo(f"error: the web server on {web.listen} did not start", err=True)
            code = EXIT_METER
    finally:
        sock.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await gateway.stop()
        log.info("stopped; the last batch is stored")
    return code


def _run(gateway: Gateway, log_level: str, announce: Callable[[str], None]) -> None:
    try:
        check_disabled_entities(gateway.settings)
        code = asyncio.run(run_gateway(gateway, log_level=log_level, announce=announce))
    except (ConfigError, StoreError) as error:  # the settings or the data place: fix, rerun
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except MepgateError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_METER)
    sys.exit(code)


def _common(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS),
        default="info",
        show_default=True,
        help="How much to log (to stderr).",
    )(command)
    command = click.option(
        "--mqtt", "mqtt", metavar="URL", help="Publish to this MQTT broker (mqtt://host:1883)."
    )(command)
    command = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the database lives when storage.url is not set.",
    )(command)
    return click.option(
        "--listen",
        metavar="HOST:PORT",
        help=f"Web address (default: the config's web.listen, else {DEFAULT_LISTEN}).",
    )(command)


@click.command()
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The TOML configuration (default: $XDG_CONFIG_HOME/mepgate/mepgate.toml). If it does "
    "not exist yet, the web app's setup page writes it.",
)
@_common
@functools.partial(_speed_options, hidden=True)
def serve(
    config: Path | None,
    listen: str | None,
    data_dir: Path | None,
    mqtt: str | None,
    log_level: str,
    speed: float = 1.0,
    speed_epoch: str | None = None,
) -> None:
    """The gateway for your meters: polling, history, dashboard, API."""
    _setup_logging(log_level)
    path = config or user_config_file()
    try:
        settings = with_overrides(load_settings(path), listen=listen, mqtt=mqtt)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    if not path.exists():
        log.warning("no configuration at %s yet: open the web page to set up a meter", path)
    directory = data_dir or user_data_dir()
    try:
        epoch = parse_epoch(speed_epoch) if speed_epoch is not None else None
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    if speed != 1 or epoch is not None:
        log.warning(
            "the gateway's clock runs %g times faster (--speed): for demos and tests", speed
        )
    gateway = gateway_for(
        settings, data_dir=directory, config_path=path, speed=speed, speed_epoch=epoch
    )
    _run(gateway, log_level, lambda url: click.echo(f"mepgate: dashboard at {url}", err=True))


@click.command()
@click.option(
    "--optical",
    is_flag=True,
    help="Read the simulated meter through its optical port (ANSI C12.18) instead of MEP.",
)
@_common
@functools.partial(_speed_options, hidden=False)
def demo(
    optical: bool,
    listen: str | None,
    data_dir: Path | None,
    mqtt: str | None,
    log_level: str,
    speed: float = 1.0,
) -> None:
    """The gateway on a built-in simulated meter (gen4-3phase), with its dashboard.

    Prints the dashboard's URL on stdout.  The simulated meter's history stays in the data
    directory (default $XDG_DATA_HOME/mepgate/demo) and continues at the next start.
    """
    _setup_logging(log_level)
    directory = data_dir or user_data_dir() / "demo"
    path = directory / CONFIG_NAME
    try:
        base = load_settings(path, env={}) if path.exists() else demo_settings(optical=optical)
        if optical and path.exists():
            base = read_optically(base)
        settings = with_overrides(base, listen=listen, mqtt=mqtt)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)

    def announce(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()

    epoch = demo_epoch(directory) if speed != 1 else None
    gateway = gateway_for(
        settings, data_dir=directory, config_path=path, speed=speed, speed_epoch=epoch
    )
    _run(gateway, log_level, announce)


COMMANDS = (serve, demo)
