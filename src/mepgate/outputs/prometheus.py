"""``/metrics``: the gateway's meters and link health in Prometheus' text format.

The web app calls :func:`render_metrics` per scrape; it builds a throw-away registry around a
collector that reads the view, so nothing is kept in prometheus-client's global registry and
two gateways in one process (tests) do not see each other.

Names carry their unit (``_watts``, ``_volts``, ``_watt_hours_total``).  Totals and phases are
separate metrics (``mepgate_active_power_import_watts{meter}`` and
``mepgate_phase_active_power_import_watts{meter,phase}``), so summing a metric over its labels
never counts a phase twice; likewise the energy registers per time-of-use tier
(``mepgate_tier_energy_import_watt_hours_total{meter,tier}``).  A value the meter does not
measure is absent, never 0.  M-Bus sub-meters: ``mepgate_submeter_value{meter,slot,medium,
unit,identification}`` and ``mepgate_submeter_available{meter,slot,medium}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mepgate.reading import PHASES, TIERS, Reading, tier_energy_field
from mepgate.service.submeter_board import SubmeterState
from mepgate.service.view import GatewayView, MeterStatus

#: Content type of :func:`render_metrics`' body (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric name, help, Reading field) -- one sample per meter.
_TOTALS = (
    ("mepgate_active_power_import_watts", "Active power drawn from the grid (all phases).",
     "active_power_import_w"),
    ("mepgate_active_power_export_watts", "Active power fed into the grid (all phases).",
     "active_power_export_w"),
    ("mepgate_frequency_hertz", "Grid frequency.", "frequency_hz"),
    ("mepgate_reactive_power_volt_amperes_reactive",
     "Reactive power (positive: inductive / import).", "reactive_power_var"),
    ("mepgate_tariff_tier", "Current time-of-use tier (1-based, as the meter's display).",
     "current_tier"),
)  # fmt: skip

# (metric name, help, Reading field with {phase}) -- one sample per meter and phase.
_PER_PHASE = (
    ("mepgate_phase_active_power_import_watts", "Active power drawn from the grid per phase.",
     "active_power_import_{phase}_w"),
    ("mepgate_phase_active_power_export_watts", "Active power fed into the grid per phase.",
     "active_power_export_{phase}_w"),
    ("mepgate_voltage_volts", "RMS voltage per phase.", "voltage_{phase}_v"),
    ("mepgate_current_amperes", "RMS current per phase.", "current_{phase}_a"),
    ("mepgate_power_factor_ratio", "Power factor per phase (-1..1).", "power_factor_{phase}"),
)  # fmt: skip

# (metric name without _total, help, Reading field) -- the energy registers are counters.
_ENERGY = (
    ("mepgate_energy_import_watt_hours", "Active energy drawn from the grid (BT23 register).",
     "forward_active_energy_wh"),
    ("mepgate_energy_export_watt_hours", "Active energy fed into the grid (BT23 register).",
     "reverse_active_energy_wh"),
)  # fmt: skip

# (metric name without _total, help, Reading field direction) -- per meter and tier (1-based).
_TIER_ENERGY = (
    ("mepgate_tier_energy_import_watt_hours",
     "Active energy drawn from the grid per time-of-use tier (BT23 tier registers).", "forward"),
    ("mepgate_tier_energy_export_watt_hours",
     "Active energy fed into the grid per time-of-use tier (BT23 tier registers).", "reverse"),
)  # fmt: skip

# LinkStatistics counter -> (metric name without _total, help).
LINK_COUNTERS: dict[str, tuple[str, str]] = {
    "requests": ("mepgate_link_requests", "Requests started on the MEP link."),
    "frames_sent": ("mepgate_link_frames_sent", "Request frames sent, resends included."),
    "resends": ("mepgate_link_resends", "Requests sent again after a lost or damaged reply."),
    "replies": ("mepgate_link_replies", "Replies that verified and were used."),
    "timeouts": ("mepgate_link_timeouts", "Sends that got no usable reply in time."),
    "damaged_replies": ("mepgate_link_digest_failures",
                        "Replies whose digest or content did not verify (discarded)."),
    "garbage_bytes": ("mepgate_link_garbage_bytes", "Bytes that never formed a frame."),
    "echoed_frames": ("mepgate_link_echoed_frames", "Own request frames read back (loopback)."),
    "alerts": ("mepgate_link_alerts", "Alert sequences (00 00) from the meter."),
    "alerts_serviced": ("mepgate_link_alerts_serviced", "Alerts answered."),
    "sequence_resyncs": ("mepgate_link_sequence_resyncs",
                         "0x0C replies: sequence number adopted from the meter."),
    "auth_failures": ("mepgate_link_auth_failures", "0x0B replies: authentication failed."),
    "idt_changes": ("mepgate_link_idt_changes", "Meter reconfigurations seen (ET04 IDT)."),
    "tls_handshakes": ("mepgate_link_tls_handshakes", "TLS-PSK handshakes."),
    "reconnects": ("mepgate_link_reconnects", "Link reconnections."),
    "bytes_sent": ("mepgate_link_sent_bytes", "Bytes written to the link."),
    "bytes_received": ("mepgate_link_received_bytes", "Bytes read from the link."),
}  # fmt: skip


class _GatewayCollector(Collector):
    def __init__(self, view: GatewayView) -> None:
        self._view = view

    def collect(self) -> Iterable[Metric]:
        statuses = self._view.meters()
        readings = [r for s in statuses if (r := self._view.hub.latest(s.name)) is not None]
        yield from _reading_metrics(readings)
        yield from _status_metrics(statuses)
        yield from _submeter_metrics(self._view.hub.submeters.states())
        dropped = CounterMetricFamily(
            "mepgate_hub_dropped_readings",
            "Readings a slow live subscriber (SSE, MQTT) missed.",
            value=self._view.hub.dropped,
        )
        yield dropped


def _reading_metrics(readings: list[Reading]) -> Iterator[Metric]:
    for name, documentation, source in _TOTALS:
        gauge = GaugeMetricFamily(name, documentation, labels=["meter"])
        for r in readings:
            if (value := getattr(r, source)) is not None:
                gauge.add_metric([r.meter], float(value))
        yield gauge
    for name, documentation, pattern in _PER_PHASE:
        gauge = GaugeMetricFamily(name, documentation, labels=["meter", "phase"])
        for r in readings:
            for phase in PHASES:
                if (value := getattr(r, pattern.format(phase=phase))) is not None:
                    gauge.add_metric([r.meter, phase], float(value))
        yield gauge
    for name, documentation, source in _ENERGY:
        counter = CounterMetricFamily(name, documentation, labels=["meter"])
        for r in readings:
            counter.add_metric([r.meter], float(getattr(r, source)))
        yield counter
    for name, documentation, direction in _TIER_ENERGY:
        counter = CounterMetricFamily(name, documentation, labels=["meter", "tier"])
        for r in readings:
            for tier in TIERS:
                if (value := getattr(r, tier_energy_field(direction, tier))) is not None:
                    counter.add_metric([r.meter, str(tier)], float(value))
        yield counter
    timestamp = GaugeMetricFamily(
        "mepgate_reading_timestamp_seconds",
        "When the newest reading was taken (meter clock, Unix time).",
        labels=["meter"],
    )
    for r in readings:
        timestamp.add_metric([r.meter], r.at.timestamp())
    yield timestamp


def _status_metrics(statuses: list[MeterStatus]) -> Iterator[Metric]:
    connected = GaugeMetricFamily(
        "mepgate_meter_connected", "1 while the meter answers, else 0.", labels=["meter"]
    )
    info = GaugeMetricFamily(
        "mepgate_meter_info",
        "The meter's identity (BT01, ET03); always 1.",
        labels=["meter", "manufacturer", "model", "firmware", "serial_number"],
    )
    stored = CounterMetricFamily(
        "mepgate_readings_stored", "Readings validated and stored.", labels=["meter"]
    )
    rejected = CounterMetricFamily(
        "mepgate_readings_rejected",
        "Readings that failed validation, by reason.",
        labels=["meter", "reason"],
    )
    links = {
        key: CounterMetricFamily(name, documentation, labels=["meter"])
        for key, (name, documentation) in LINK_COUNTERS.items()
    }
    for s in statuses:
        connected.add_metric([s.name], 1.0 if s.connected else 0.0)
        if s.identity is not None:
            i = s.identity
            info.add_metric([s.name, i.manufacturer, i.model, i.firmware, i.serial_number], 1.0)
        stored.add_metric([s.name], float(s.readings_stored))
        reasons = s.rejection_reasons or {}
        for reason, count in sorted(reasons.items()):
            rejected.add_metric([s.name, reason], float(count))
        unexplained = s.readings_rejected - sum(reasons.values())
        if unexplained > 0 or not reasons:
            rejected.add_metric([s.name, "other"], float(max(unexplained, 0)))
        for key, value in s.link.items():
            if key in links:
                links[key].add_metric([s.name], float(value))
    yield connected
    yield info
    yield stored
    yield rejected
    yield from links.values()


def _submeter_metrics(states: list[SubmeterState]) -> Iterator[Metric]:
    """M-Bus sub-meters: the register by medium and unit (m³, kWh), and whether it answers."""
    value = GaugeMetricFamily(
        "mepgate_submeter_value",
        "An M-Bus sub-meter's register (gas/water m³, heat kWh), the last value read.",
        labels=["meter", "slot", "medium", "unit", "identification"],
    )
    available = GaugeMetricFamily(
        "mepgate_submeter_available",
        "1 while the M-Bus sub-meter answers the meter's reads, else 0.",
        labels=["meter", "slot", "medium"],
    )
    now = dt.datetime.now(dt.UTC)
    for s in states:
        if s.value is not None:
            labels = [s.meter, str(s.slot), s.medium, s.unit, s.identification]
            value.add_metric(labels, s.value)
        available.add_metric([s.meter, str(s.slot), s.medium], 1.0 if s.available(now) else 0.0)
    yield value
    yield available


def render_metrics(view: GatewayView) -> bytes:
    """The body of ``/metrics`` (serve it with :data:`CONTENT_TYPE`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GatewayCollector(view))
    return generate_latest(registry)
