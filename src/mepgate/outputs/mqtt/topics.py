"""The MQTT topic layout (``base`` is ``[mqtt] base_topic``, default ``mepgate``)::

    <base>/status                    online | offline     retained; the last will
    <base>/<meter>/availability      online | offline     retained; the meter answers or not
    <base>/<meter>/power             JSON, every power_interval (or on change)   retained
    <base>/<meter>/energy            JSON, every energy_interval, store-and-forward, retained
    <base>/<meter>/diagnostics       JSON, link health and reading age            retained
    <base>/<meter>/event             JSON, each new event of the meter's log (time, code,
                                     words, sequence), store-and-forward, not retained
    <prefix>/sensor/mepgate_<serial>/<key>/config    Home Assistant discovery    retained
    <prefix>/event/mepgate_<serial>/meter_event/config    the event entity          retained

With ``compat_dabbler = true`` the last will moves to the old firmware's ``<base>/lwt``
(``Online`` | ``Offline``) and its topics are published as well, below ``<base>`` for a
single meter or ``<base>/<meter>`` for several: ``sensors/mydatajson``,
``meterConsumptionTotal/mydatajson``, ``meterConsumptionFwd/mydatajson``,
``meterConsumptionRev/mydatajson``, ``frequency/mydatajson``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.config.settings import MqttConfig
from mepgate.outputs.compat import DABBLER_LWT, DABBLER_OFFLINE, DABBLER_ONLINE
from mepgate.outputs.discovery import Availability, StateTopics

ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Topics:
    base: str
    discovery_prefix: str
    compat_dabbler: bool

    @classmethod
    def of(cls, config: MqttConfig) -> Topics:
        return cls(config.base_topic.rstrip("/"), config.discovery_prefix, config.compat_dabbler)

    @property
    def status(self) -> Availability:
        """The gateway's availability: the topic of the last will."""
        if self.compat_dabbler:
            return Availability(
                topic=f"{self.base}/{DABBLER_LWT}", online=DABBLER_ONLINE, offline=DABBLER_OFFLINE
            )
        return Availability(topic=f"{self.base}/status", online=ONLINE, offline=OFFLINE)

    def meter_availability(self, meter: str) -> Availability:
        return Availability(
            topic=f"{self.base}/{meter}/availability", online=ONLINE, offline=OFFLINE
        )

    def states(self, meter: str) -> StateTopics:
        return StateTopics(
            power=f"{self.base}/{meter}/power",
            energy=f"{self.base}/{meter}/energy",
            diagnostics=f"{self.base}/{meter}/diagnostics",
            availability=(self.status, self.meter_availability(meter)),
            event=f"{self.base}/{meter}/event",
        )

    @property
    def home_assistant_status(self) -> str:
        """Where Home Assistant announces ``online`` after it (re)starts."""
        return f"{self.discovery_prefix}/status"

    def dabbler_prefix(self, meter: str, meter_count: int) -> str:
        return self.base if meter_count <= 1 else f"{self.base}/{meter}"
