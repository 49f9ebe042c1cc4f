"""The MEP port (MEP Client Developer's Guide, chapter 2): a session with RC4 digests or
TLS-PSK, whose decisions are the sans-IO machines of :mod:`~mepgate.client.mep.machine`.

``MeterClient(MepSession(port, key))`` is a client for the MEP port at ``port``."""

from __future__ import annotations

from mepgate.client.mep.alerts import AlertFlags
from mepgate.client.mep.session import MepSession, Security

__all__ = ["AlertFlags", "MepSession", "Security"]
