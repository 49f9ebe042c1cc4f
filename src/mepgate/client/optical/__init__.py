"""The optical port (ANSI C12.18 over an IR probe): a session whose decisions are the sans-IO
machines of :mod:`~mepgate.client.optical.machine`.

``MeterClient(OpticalSession(port, parse_password(text)))`` is a client for the meter whose
optical port the probe at ``port`` sits on."""

from __future__ import annotations

from mepgate.client.optical.session import OpticalSession
from mepgate.client.optical.timing import OpticalTiming

__all__ = ["OpticalSession", "OpticalTiming"]
