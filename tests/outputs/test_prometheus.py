"""``/metrics``: rendered from a gateway view and read back with prometheus-client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mepgate.config.settings import MqttConfig
from mepgate.outputs.prometheus import render_metrics

from ..support.gateway import FakeGateway, SimMeter

LINK = {
    "requests": 120,
    "frames_sent": 131,
    "resends": 7,
    "replies": 118,
    "timeouts": 4,
    "damaged_replies": 3,
    "alerts": 2,
    "sequence_resyncs": 5,
    "auth_failures": 1,
}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_parse_and_equal_the_readings_and_link_statistics() -> None:
    three = SimMeter.build("house")
    one = SimMeter.build("garage", profile="gen3-1phase", seed=3)
    gateway = FakeGateway(
        MqttConfig(url="mqtt://localhost"),
        [three.status(link=LINK), one.status(connected=False)],
    )
    reading, truth = three.reading(30)
    gateway.hub.publish(reading)
    single, single_truth = one.reading(30)
    gateway.hub.publish(single)

    body = render_metrics(gateway)
    text = body.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = _samples(text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert families["mepgate_energy_import_watt_hours"].type == "counter"
    assert families["mepgate_active_power_import_watts"].type == "gauge"
    assert value("mepgate_energy_import_watt_hours_total", meter="house") == (
        truth.forward_active_energy_wh
    )
    assert value("mepgate_energy_export_watt_hours_total", meter="house") == (
        truth.reverse_active_energy_wh
    )
    assert value("mepgate_active_power_import_watts", meter="house") == (
        truth.electrical.forward_active_power_w
    )
    assert value("mepgate_active_power_export_watts", meter="house") == (
        truth.electrical.reverse_active_power_w
    )
    assert value("mepgate_frequency_hertz", meter="house") == truth.frequency_mhz / 1000
    assert families["mepgate_tier_energy_import_watt_hours"].type == "counter"
    for meter, tier_truth in (("house", truth), ("garage", single_truth)):
        for tier, forward in enumerate(tier_truth.tier_forward_active_energy_wh, start=1):
            labels = {"meter": meter, "tier": str(tier)}
            assert value("mepgate_tier_energy_import_watt_hours_total", **labels) == forward
        for tier, reverse in enumerate(tier_truth.tier_reverse_active_energy_wh, start=1):
            labels = {"meter": meter, "tier": str(tier)}
            assert value("mepgate_tier_energy_export_watt_hours_total", **labels) == reverse
    for n, phase in enumerate(truth.phases, start=1):
        labels = {"meter": "house", "phase": f"l{n}"}
        assert value("mepgate_phase_active_power_import_watts", **labels) == (
            phase.forward_active_power_w
        )
        assert value("mepgate_voltage_volts", **labels) == phase.voltage_mv / 1000
        assert value("mepgate_current_amperes", **labels) == phase.current_ma / 1000
        assert value("mepgate_power_factor_ratio", **labels) == phase.power_factor_milli / 1000
    # A single-phase meter has no L2/L3 samples (absent, not zero).
    assert value("mepgate_voltage_volts", meter="garage", phase="l1") == (
        single_truth.phases[0].voltage_mv / 1000
    )
    assert ("mepgate_voltage_volts", frozenset({("meter", "garage"), ("phase", "l2")})) not in (
        samples
    )
    # Link health.
    assert value("mepgate_link_requests_total", meter="house") == 120
    assert value("mepgate_link_resends_total", meter="house") == 7
    assert value("mepgate_link_sequence_resyncs_total", meter="house") == 5  # 0x0C
    assert value("mepgate_link_auth_failures_total", meter="house") == 1  # 0x0B
    assert value("mepgate_link_digest_failures_total", meter="house") == 3
    assert value("mepgate_link_timeouts_total", meter="house") == 4
    assert value("mepgate_link_alerts_total", meter="house") == 2
    assert value("mepgate_meter_connected", meter="house") == 1
    assert value("mepgate_meter_connected", meter="garage") == 0
    identity = three.identity()
    assert (
        value(
            "mepgate_meter_info",
            meter="house",
            manufacturer="ELON",
            model=identity.model,
            firmware=identity.firmware,
            serial_number=identity.serial_number,
        )
        == 1
    )
    # No state leaks between renders (no global registry).
    assert render_metrics(gateway) == body
    for family in families.values():
        assert family.documentation, family.name
