"""The simulated meter's wire timing: one pure model, used by the front end and the benchmark.

Every rule comes from :mod:`mepgate.proto.constants` (MEP guide, chapter 2, "MEP Protocol
Timing", and the UART's 8N1).  Nothing in this module reads a clock: callers pass
times in, and get times out, so the server and ``benchmarks/sim_timing.py`` cannot disagree
about what "modelled time" means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mepgate.errors import LocalProtocolError
from mepgate.proto.constants import (
    BITS_PER_BYTE,
    DEFAULT_BAUD,
    MIN_REQUEST_INTERVAL,
    SEGMENT_PAUSE,
    SEGMENT_SIZE,
)

DEFAULT_PROCESSING = 0.010
"""Time the simulated meter spends between a request's last byte and its reply's first.
The guide gives no figure (only the 500 ms response timeout a client allows); 10 ms keeps a
simulated reply well inside it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WireTiming:
    """How the simulator paces the line.  ``enabled=False`` sends everything at once."""

    baud: int = DEFAULT_BAUD
    processing: float = DEFAULT_PROCESSING
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.baud <= 0:
            raise LocalProtocolError(f"baud rate must be positive, got {self.baud}")
        if self.processing < 0:
            raise LocalProtocolError(f"processing delay must be >= 0 s, got {self.processing}")

    @property
    def byte_time(self) -> float:
        """Seconds one byte occupies the line (0 with timing off)."""
        return BITS_PER_BYTE / self.baud if self.enabled else 0.0

    def wire_time(self, size: int) -> float:
        return size * self.byte_time

    def segments(self, size: int) -> tuple[int, ...]:
        """The sizes of the segments a reply of ``size`` bytes is sent in."""
        if size <= 0:
            return ()
        if not self.enabled:
            return (size,)
        count = math.ceil(size / SEGMENT_SIZE)
        return tuple(min(SEGMENT_SIZE, size - i * SEGMENT_SIZE) for i in range(count))

    def pauses(self, size: int) -> float:
        """Total inter-segment pause of a reply of ``size`` bytes."""
        return max(0, len(self.segments(size)) - 1) * SEGMENT_PAUSE if self.enabled else 0.0

    def service_start(self, request_end: float, previous_service: float | None) -> float:
        """When the meter starts on a request whose last byte arrived at ``request_end``,
        given when it started on the previous one (the 100 ms throttle)."""
        if not self.enabled or previous_service is None:
            return request_end
        return max(request_end, previous_service + MIN_REQUEST_INTERVAL)

    @property
    def processing_delay(self) -> float:
        return self.processing if self.enabled else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeTime:
    """The modelled duration of one exchange, from the request's first byte leaving the client
    to the reply's last byte arriving, split into its parts."""

    request_wire: float
    throttle: float
    processing: float
    reply_wire: float
    pauses: float

    @property
    def total(self) -> float:
        return self.request_wire + self.throttle + self.processing + self.reply_wire + self.pauses


def model_exchange(
    request_size: int,
    reply_size: int,
    timing: WireTiming,
    *,
    since_previous_service: float | None = None,
) -> ExchangeTime:
    """The modelled time of one request/reply exchange of the given frame sizes.

    ``since_previous_service`` is how long before this request's last byte the meter started
    on the previous request (None: no previous request), for the 100 ms throttle.
    """
    request_wire = timing.wire_time(request_size)
    previous = None if since_previous_service is None else request_wire - since_previous_service
    start = timing.service_start(request_wire, previous)
    return ExchangeTime(
        request_wire=request_wire,
        throttle=start - request_wire,
        processing=timing.processing_delay,
        reply_wire=timing.wire_time(reply_size),
        pauses=timing.pauses(reply_size),
    )
