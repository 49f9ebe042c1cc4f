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
from mepgate.errors import MepgateError
from mepgate.proto import ReadRequest, WriteRequest
from mepgate.service.hub import ReadingHub
from mepgate.service.jobs import JobStatus
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
class LinkFailure:
    """A failure on the link, kept for the meter page: what happened and what to do."""

    at: dt.datetime
    message: str
    diagnosis: str  # Diagnosis value, e.g. "no-answer"
    advice: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterStatus:
    """One meter as the gateway sees it now.

    ``state`` is the poller's: ``"starting"`` (connecting, reading identity), ``"polling"``,
    ``"retrying"`` (the last attempt failed; the next one at ``next_retry_at``) or
    ``"stopped"`` (given up: a wrong key, see ``last_errors``; saving the configuration again
    restarts it).  ``last_errors`` is oldest first, at most 10; each ``diagnosis`` is a
    :class:`~mepgate.client.Diagnosis` value, or ``"refused"`` (the meter refused a request),
    ``"decode-error"``, ``"config"`` (e.g. an unreadable key file) or ``"internal-error"``.
    ``rejection_reasons`` are :class:`~mepgate.service.validate.Rejection` values.
    """

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
    last_errors: tuple[LinkFailure, ...] = ()
    state: str = "starting"
    next_retry_at: dt.datetime | None = None
    last_rejection: str | None = None  # the newest rejected reading: reason and values, in words
    rejected_in_a_row: int = 0  # readings rejected since the last accepted one
    clock_offset_s: float | None = None  # meter clock minus gateway clock (BT52), seconds
    jobs: tuple[JobStatus, ...] = ()  # reads beside the live poll (mepgate.service.jobs)


class ConsoleError(MepgateError):
    """A console request that cannot be sent: an unknown meter, a write while writes are
    disabled, or a link that failed.  The message is fit to show as it is."""


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

    async def console(self, meter: str, request: ReadRequest | WriteRequest) -> ConsoleReply:
        """Send a parsed C12.18 request to ``meter``; writes only if the config allows them.

        A reply with an error code (0x01..0x05) is a :class:`ConsoleReply` too; anything that
        prevents an answer raises :class:`ConsoleError`.
        """
        ...

    async def apply_settings(self, settings: Settings) -> None:
        """Save ``settings`` (0600) and restart what they affect.

        Raises :class:`~mepgate.config.ConfigError` (nothing saved) when a meter's key cannot
        be read.  Pollers whose meter changed (or that had stopped) restart; a new storage URL
        reopens the store; outputs restart.  ``web.listen`` takes effect at the next start.
        """
        ...


def view_now(view: object) -> dt.datetime:
    """The gateway's clock (``view.now()``, a sped clock in demos and tests), or the computer's
    for a view that has none."""
    clock = getattr(view, "now", None)
    now: dt.datetime = clock() if callable(clock) else dt.datetime.now(dt.UTC)
    return now
