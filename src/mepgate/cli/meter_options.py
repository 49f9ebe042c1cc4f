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

from mepgate.client import Backoff, LinkTiming, MepSession, MeterClient, Security
from mepgate.client.errors import MeterLinkError, MeterRefusedError
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

    def client(self) -> MeterClient:
        try:
            key = parse_key(self.key_text)
        except LocalProtocolError as error:
            raise click.UsageError(str(error)) from None
        timing = LinkTiming.fast() if self.fast else LinkTiming(response_timeout=self.timeout)
        session = MepSession(
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
        return MeterClient(session, backoff=Backoff(initial=0.5, maximum=4.0, attempts=2))


def _trace(direction: str, data: bytes) -> None:
    # Frames carry digests and (RC4/TLS-)encrypted bytes, never the key itself.
    click.echo(f"{direction} {data.hex(' ')}", err=True)


def _read_key(key: str | None, key_file: Path | None) -> str:
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
    if not key:
        raise click.UsageError(
            f"no MEP key: pass --key, --key-file, or set {KEY_ENV} (the 20-character MBK "
            "your grid company sent)"
        )
    return key


def meter_options(command: Callable[..., R]) -> Callable[..., R]:
    """Add the common options and pass a :class:`MeterOptions` as ``meter``."""

    @click.option(
        "--port",
        envvar=PORT_ENV,
        required=True,
        help="Serial device, tcp://host:port or rfc2217://host:port (env MEPGATE_PORT).",
    )
    @click.option("--key", help=f"The MEP key as sent (env {KEY_ENV}). Prefer --key-file.")
    @click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File holding the MEP key.",
    )
    @click.option("--baud", type=int, default=9600, show_default=True, help="Serial baud rate.")
    @click.option("--trace", is_flag=True, help="Hex trace of every frame to stderr.")
    @click.option(
        "--enable",
        type=click.Choice([e.value for e in EnableLine]),
        default="none",
        show_default=True,
        help="Modem line wired to the MEP port's ENABLE input.",
    )
    @click.option(
        "--security",
        type=click.Choice([s.value for s in Security]),
        default="auto",
        show_default=True,
        help="RC4 digests, TLS-PSK, or auto (TLS when the meter requires it).",
    )
    @click.option("--encrypt", is_flag=True, help="RC4-encrypt requests (and so replies).")
    @click.option(
        "--key-id",
        type=click.Choice(["mbk", "mak"]),
        default="mbk",
        show_default=True,
        help="Which key this is (TLS identity).",
    )
    @click.option(
        "--timeout",
        type=float,
        default=0.5,
        show_default=True,
        help="Response timeout in seconds (the guide's 500 ms; raise it for slow bridges).",
    )
    @click.option(
        "--sim-timing",
        is_flag=True,
        hidden=True,
        help="Short waits, no request spacing: only for simulators without wire timing.",
    )
    @functools.wraps(command)
    def wrapper(
        port: str,
        key: str | None,
        key_file: Path | None,
        baud: int,
        trace: bool,
        enable: str,
        security: str,
        encrypt: bool,
        key_id: str,
        timeout: float,
        sim_timing: bool,
        **kwargs: object,
    ) -> R:
        options = MeterOptions(
            port=port,
            key_text=_read_key(key, key_file),
            baud=baud,
            trace=trace,
            enable=EnableLine(enable),
            security=Security(security),
            encrypt=encrypt,
            key_id=KeyId.MAK if key_id == "mak" else KeyId.MBK,
            timeout=timeout,
            fast=sim_timing,
        )
        return command(meter=options, **kwargs)

    return wrapper


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
