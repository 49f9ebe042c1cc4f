"""A job stepped directly in a test: its context with a virtual monotonic clock."""

from __future__ import annotations

import datetime as dt

from mepgate.service.jobs import JobContext


def virtual_context(clock: list[float], meter: str = "house") -> JobContext:
    """A first session's context whose monotonic time is ``clock[0]`` (the test moves it on to
    let the job's retry and check intervals pass); the meter's clock agrees with the gateway's."""
    return JobContext(
        meter=meter,
        session=1,
        identity=None,
        clock_offset=dt.timedelta(0),
        now=lambda: dt.datetime.now(dt.UTC),
        monotonic=lambda: clock[0],
        gateway_time=lambda t: t,
    )
