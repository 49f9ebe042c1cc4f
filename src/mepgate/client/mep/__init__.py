"""The MEP port (MEP Client Developer's Guide, chapter 2): a session with RC4 digests or
TLS-PSK, whose decisions are the sans-IO machines of :mod:`~mepgate.client.mep.machine`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mepgate.client.client import Backoff, MeterClient
from mepgate.client.driver import Trace
from mepgate.client.mep.alerts import AlertFlags
from mepgate.client.mep.session import MepSession, Security
from mepgate.client.timing import LinkTiming
from mepgate.tls import KeyId
from mepgate.transport import EnableLine, Link

__all__ = ["AlertFlags", "MepSession", "Security", "mep_client"]


def mep_client(
    port: str,
    key: bytes,
    *,
    baud: int = 9600,
    enable: EnableLine = EnableLine.NONE,
    encrypt: bool = False,
    security: Security = Security.AUTO,
    key_id: KeyId = KeyId.MBK,
    timing: LinkTiming | None = None,
    trace: Trace | None = None,
    handle_alerts: bool = True,
    mep_client: int = 1,
    backoff: Backoff | None = None,
    link_factory: Callable[[], Awaitable[Link]] | None = None,
) -> MeterClient:
    """A :class:`MeterClient` for the MEP port at ``port`` (a device, ``tcp://host:port`` or a
    pyserial URL); ``key`` is the 16 key bytes of :func:`~mepgate.proto.parse_key`."""
    session = MepSession(
        port,
        key,
        baud=baud,
        enable=enable,
        encrypt=encrypt,
        security=security,
        key_id=key_id,
        timing=timing,
        trace=trace,
        handle_alerts=handle_alerts,
        mep_client=mep_client,
        link_factory=link_factory,
    )
    return MeterClient(session, backoff=backoff)
