"""What the outputs (web pages, API, Prometheus) see of a running gateway.

The gateway (:mod:`mepgate.service.gateway`) implements :class:`GatewayView`; the web app
factory and the metrics renderer take one.  Nothing here holds a secret: meter keys and
passwords stay inside the gateway and the configuration.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from mepgate.config import Settings
from mepgate.service.hub import ReadingHub
from mepgate.store import AsyncStore


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterIdentity:
    """Who the meter says it is (BT01, ET03)."""

    manufacturer: str
    model: str
    firmware: str
    serial_number: str
    utility_serial_number: str | None = None
    generation: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkError:
    """A failure on the link, kept for the meter page: what happened and what to do."""

    at: dt.datetime
    message: str
    diagnosis: str  # Diagnosis value, e.g. "no-answer"
    advice: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterStatus:
    name: str
    port: str  # as configured (never contains a secret)
    connected: bool
    identity: MeterIdentity | None = None
    meter_clock: dt.datetime | None = None
    last_reading_at: dt.datetime | None = None
    readings_stored: int = 0
    readings_rejected: int = 0  # failed validation (energy decreasing, out of range...)
    rejection_reasons: dict[str, int] = field(default_factory=dict)
    link: dict[str, int] = field(default_factory=dict)  # LinkStatistics.as_dict()
    last_errors: tuple[LinkError, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleReply:
    """The answer to a request typed into the web console."""

    code: int
    meaning: str
    data_hex: str = ""
    decoded: dict[str, object] | None = None  # via mepgate.tables.registry, when known


class GatewayView(Protocol):
    @property
    def hub(self) -> ReadingHub: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> AsyncStore: ...

    def meters(self) -> list[MeterStatus]: ...

    async def console(self, meter: str, request_hex: str) -> ConsoleReply:
        """Send a C12.18 request (hex) to ``meter``; writes only if the config allows them."""
        ...

    async def apply_settings(self, settings: Settings) -> None:
        """Save ``settings`` (0600) and restart what they affect."""
        ...
