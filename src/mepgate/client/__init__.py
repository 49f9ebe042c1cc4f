"""The async meter client: :class:`MeterClient`, its errors, statistics and diagnosis.

The client is the same for every protocol; ``MeterClient(MepSession(port, key))`` is one for
a MEP port.
"""

from mepgate.client.client import Backoff, MeterClient
from mepgate.client.diagnosis import Diagnosis, diagnose
from mepgate.client.errors import (
    AuthenticationError,
    EchoError,
    GarbledLineError,
    HeldOffError,
    LockedOutError,
    MeterLinkError,
    MeterRefusedError,
    NoAnswerError,
    NoisyLineError,
    OpticalSessionError,
    OutOfTimeError,
    PortUnavailableError,
    SequenceConflictError,
    TlsSessionError,
)
from mepgate.client.mep import AlertFlags, MepSession, Security
from mepgate.client.planning import (
    DASHBOARD_FIELDS,
    EnergyTotals,
    PresentReadPlan,
    plan_energy_read,
    plan_present_read,
)
from mepgate.client.session import Reply, Session
from mepgate.client.stats import LinkStatistics, Observation
from mepgate.client.timing import LinkTiming

__all__ = [
    "DASHBOARD_FIELDS",
    "AlertFlags",
    "AuthenticationError",
    "Backoff",
    "Diagnosis",
    "EchoError",
    "EnergyTotals",
    "GarbledLineError",
    "HeldOffError",
    "LinkStatistics",
    "LinkTiming",
    "LockedOutError",
    "MepSession",
    "MeterClient",
    "MeterLinkError",
    "MeterRefusedError",
    "NoAnswerError",
    "NoisyLineError",
    "Observation",
    "OpticalSessionError",
    "OutOfTimeError",
    "PortUnavailableError",
    "PresentReadPlan",
    "Reply",
    "Security",
    "SequenceConflictError",
    "Session",
    "TlsSessionError",
    "diagnose",
    "plan_energy_read",
    "plan_present_read",
]
