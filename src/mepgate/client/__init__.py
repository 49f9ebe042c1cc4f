"""The async meter client: :class:`MeterClient`, its errors, statistics and diagnosis."""

from mepgate.client.alerts import AlertFlags
from mepgate.client.client import Backoff, MeterClient, Security
from mepgate.client.diagnosis import Diagnosis, Observation, diagnose
from mepgate.client.errors import (
    AuthenticationError,
    EchoError,
    GarbledLineError,
    MeterLinkError,
    MeterRefusedError,
    NoAnswerError,
    NoisyLineError,
    PortUnavailableError,
    SequenceConflictError,
    TlsSessionError,
)
from mepgate.client.partial import DASHBOARD_FIELDS, PresentReadPlan, plan_present_read
from mepgate.client.stats import LinkStatistics
from mepgate.client.timing import LinkTiming

__all__ = [
    "DASHBOARD_FIELDS",
    "AlertFlags",
    "AuthenticationError",
    "Backoff",
    "Diagnosis",
    "EchoError",
    "GarbledLineError",
    "LinkStatistics",
    "LinkTiming",
    "MeterClient",
    "MeterLinkError",
    "MeterRefusedError",
    "NoAnswerError",
    "NoisyLineError",
    "Observation",
    "PortUnavailableError",
    "PresentReadPlan",
    "Security",
    "SequenceConflictError",
    "TlsSessionError",
    "diagnose",
    "plan_present_read",
]
