"""What every meter command shares: port and key options, the client, and exit codes.

Exit codes (as in :mod:`mepgate.cli.main`): 0 success, 1 the meter or the link failed (the
message carries the diagnosis), 2 wrong usage (bad option, key or table name).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from click.core import ParameterSource

from mepgate.c1218.constants import RESPONSE_TIMEOUT
from mepgate.c1218.keys import parse_password
from mepgate.client import Backoff, LinkTiming, MepSession, MeterClient, Security
from mepgate.client.errors import MeterLinkError, MeterRefusedError
from mepgate.client.optical import OpticalSession, OpticalTiming
from mepgate.client.session import Session
from mepgate.config.textfile import TextFileError, read_text
from mepgate.errors import LocalProtocolError, MepgateError
from mepgate.proto import parse_key
from mepgate.tls import KeyId
from mepgate.transport import EnableLine, PortUnavailableError

EXIT_OK = 0
EXIT_METER = 1
EXIT_USAGE = 2
KEY_ENV = "MEPGATE_KEY"
PORT_ENV = "MEPGATE_PORT"
INTERFACE_ENV = "MEPGATE_INTERFACE"
INTERFACES = ("mep", "optical")
MEP_ONLY = ("security", "encrypt", "enable", "key_id")
"""Options that mean something only on a MEP port."""

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class MeterOptions:
    port: str
    key_text: str
    baud: int
    trace: bool
    enable: EnableLine
    security: Security
    encrypt: bool
    key_id: KeyId
    timeout: float
    fast: bool = False
    interface: str = "mep"

    def client(self) -> MeterClient:
        session = self._optical() if self.interface == "optical" else self._mep()
        return MeterClient(session, backoff=Backoff(initial=0.5, maximum=4.0, attempts=2))

    def _optical(self) -> Session:
        try:
            password = parse_password(self.key_text)
        except LocalProtocolError as error:
            raise click.UsageError(str(error)) from None
        if self.fast:
            timing = OpticalTiming.fast()
        else:
            timing = OpticalTiming(response_timeout=self.timeout)
        return OpticalSession(
            self.port,
            password,
            baud=self.baud,
            timing=timing,
            trace=_trace if self.trace else None,
        )

    def _mep(self) -> Session:
        try:
            key = parse_key(self.key_text)
        except LocalProtocolError as error:
            raise click.UsageError(str(error)) from None
        timing = LinkTiming.fast() if self.fast else LinkTiming(response_timeout=self.timeout)
        return MepSession(
            self.port,
            key,
            baud=self.baud,
            enable=self.enable,
            encrypt=self.encrypt,
            security=self.security,
            key_id=self.key_id,
            timing=timing,
            trace=_trace if self.trace else None,
        )


def _trace(direction: str, data: bytes) -> None:
    # MEP frames carry digests and (RC4/TLS-)encrypted bytes, never the key itself; the
    # optical session hides its Security request's password before it gets here.
    click.echo(f"{direction} {data.hex(' ')}".rstrip(), err=True)


def _read_key(key: str | None, key_file: Path | None, interface: str = "mep") -> str:
    if key is not None and key_file is not None:
        raise click.UsageError("give the key once: --key or --key-file, not both")
    if key_file is not None:
        try:
            return read_text(key_file, "the key file").strip()
        except TextFileError as error:
            raise click.UsageError(str(error)) from None
        except OSError as error:
            raise click.UsageError(
                f"cannot read the key file {key_file}: {error.strerror or error}"
            ) from None
    if key is None:
        key = os.environ.get(KEY_ENV)
    if not key and interface == "optical":
        raise click.UsageError(
            f"no optical key: pass --key, --key-file, or set {KEY_ENV} (the 20-character "
            "key for the optical port -- usually the read-only key, RK -- exactly as your grid "
            "company sent it, or hex: and 40 hex digits)"
        )
    if not key:
        raise click.UsageError(
            f"no MEP key: pass --key, --key-file, or set {KEY_ENV} (the 20-character MBK "
            "your grid company sent)"
        )
    return key


def meter_options(command: Callable[..., R]) -> Callable[..., R]:
    """Add the common options and pass a :class:`MeterOptions` as ``meter``."""

    @click.option(
        "--interface",
        type=click.Choice(INTERFACES),
        default="mep",
        show_default=True,
        envvar=INTERFACE_ENV,
        help="The meter's MEP port, or its optical port through an IR probe (env "
        f"{INTERFACE_ENV}).",
    )
    @click.option(
        "--port",
        envvar=PORT_ENV,
        required=True,
        help="Serial device, tcp://host:port or rfc2217://host:port (env MEPGATE_PORT).",
    )
    @click.option(
        "--key",
        help=f"The MEP key (optical: MK, PK or RK, or hex:...) as sent (env {KEY_ENV}). "
        "Prefer --key-file.",
    )
    @click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File holding the key.",
    )
    @click.option("--baud", type=int, default=9600, show_default=True, help="Serial baud rate.")
    @click.option("--trace", is_flag=True, help="Hex trace of every frame to stderr.")
    @click.option(
        "--enable",
        type=click.Choice([e.value for e in EnableLine]),
        default="none",
        show_default=True,
        help="Modem line wired to the MEP port's ENABLE input (MEP only).",
    )
    @click.option(
        "--security",
        type=click.Choice([s.value for s in Security]),
        default="auto",
        show_default=True,
        help="RC4 digests, TLS-PSK, or auto (TLS when the meter requires it; MEP only).",
    )
    @click.option(
        "--encrypt", is_flag=True, help="RC4-encrypt requests (and so replies; MEP only)."
    )
    @click.option(
        "--key-id",
        type=click.Choice(["mbk", "mak"]),
        default="mbk",
        show_default=True,
        help="Which key this is (TLS identity; MEP only).",
    )
    @click.option(
        "--timeout",
        type=float,
        default=None,
        help="Response timeout in seconds (MEP: the guide's 500 ms; optical: C12.18's 2 s "
        "is used unless given; raise it for slow bridges).",
    )
    @click.option(
        "--sim-timing",
        is_flag=True,
        hidden=True,
        help="Short waits, no request spacing: only for simulators without wire timing.",
    )
    @functools.wraps(command)
    def wrapper(
        interface: str,
        port: str,
        key: str | None,
        key_file: Path | None,
        baud: int,
        trace: bool,
        enable: str,
        security: str,
        encrypt: bool,
        key_id: str,
        timeout: float | None,
        sim_timing: bool,
        **kwargs: object,
    ) -> R:
        if interface == "optical":
            _refuse_mep_options()
        options = MeterOptions(
            port=port,
            key_text=_read_key(key, key_file, interface),
            baud=baud,
            trace=trace,
            enable=EnableLine(enable),
            security=Security(security),
            encrypt=encrypt,
            key_id=KeyId.MAK if key_id == "mak" else KeyId.MBK,
            timeout=timeout or (RESPONSE_TIMEOUT if interface == "optical" else 0.5),
            fast=sim_timing,
            interface=interface,
        )
        return command(meter=options, **kwargs)

    return wrapper


def _refuse_mep_options() -> None:
    """MEP-only options given with ``--interface optical``: a usage error, not ignored."""
    context = click.get_current_context()
    given = [
        f"--{name.replace('_', '-')}"
        for name in MEP_ONLY
        if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the MEP port only; "
            "the optical port is secured by its key alone (C12.18 Security): leave "
            f"{'it' if len(given) == 1 else 'them'} out with --interface optical"
        )


def run(coroutine: Awaitable[int | None]) -> None:
    """Run a command's coroutine and turn failures into a message and an exit code."""

    async def main() -> int | None:
        return await coroutine

    try:
        code = asyncio.run(main())
    except (MeterLinkError, MeterRefusedError, PortUnavailableError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_METER)
    except LocalProtocolError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except MepgateError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_METER)
    sys.exit(code or EXIT_OK)
