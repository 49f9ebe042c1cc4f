"""Old-firmware compatibility: the Dabbler module's MQTT topics, JSON keys and units, exactly."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import httpx

from mepgate.config.settings import MqttConfig
from mepgate.outputs.compat import dabbler_json
from mepgate.outputs.mqtt import MqttPublisher
from mepgate.service.hub import ReadingHub
from mepgate.simulator.model import GroundTruth
from mepgate.web import create_app

from ..support.gateway import FakeGateway, SimMeter
from ..support.wait import until
from .support import Mosquitto, Recorder, run, running

# Written out from the old firmware's MQTT code (FIELD-NOTES.md), not from mepgate's tables.
FIRMWARE_TOPICS = {
    "sensors/mydatajson": [
        "L1_RMS_A", "L2_RMS_A", "L3_RMS_A", "L1_RMS_V", "L2_RMS_V", "L3_RMS_V",
        "L1_PF_Fac", "L2_PF_Fac", "L3_PF_Fac", "ExportReactive_VAr", "ImportReactive_VAr",
    ],
    "meterConsumptionTotal/mydatajson": ["Fwd_Act_Wh", "Rev_Act_Wh"],
    "meterConsumptionFwd/mydatajson": [
        "Fwd_W", "Fwd_Avg_W", "L1_Fwd_W", "L2_Fwd_W", "L3_Fwd_W",
        "L1_Fwd_Avg_W", "L2_Fwd_Avg_W", "L3_Fwd_Avg_W",
    ],
    "meterConsumptionRev/mydatajson": [
        "Rev_W", "Rev_Avg_W", "L1_Rev_W", "L2_Rev_W", "L3_Rev_W",
        "L1_Rev_Avg_W", "L2_Rev_Avg_W", "L3_Rev_Avg_W",
    ],
    "frequency/mydatajson": ["Freq_mHz"],
}  # fmt: skip
FIRMWARE_DASH_FIELDS = [
    "ESP_SW", "ESP_SW_By", "ESP_SW_Version", "Meter_Manufacturer", "Meter_Model",
    "Meter_SW_Version", "Utility_SN", "CurrentDateTimeString", "CurrentDateTime",
    "Fwd_Act_Wh", "Rev_Act_Wh", "Fwd_W", "Rev_W", "Freq_mHz",
    "L1_RMS_A", "L2_RMS_A", "L3_RMS_A", "L1_RMS_V", "L2_RMS_V", "L3_RMS_V",
    "L1_Fwd_W", "L2_Fwd_W", "L3_Fwd_W", "L1_Rev_W", "L2_Rev_W", "L3_Rev_W",
    "Fwd_Avg_W", "Rev_Avg_W", "L1_Fwd_Avg_W", "L2_Fwd_Avg_W", "L3_Fwd_Avg_W",
    "L1_Rev_Avg_W", "L2_Rev_Avg_W", "L3_Rev_Avg_W",
]  # fmt: skip


def test_compat_mode_publishes_the_old_firmwares_topics_keys_and_units(
    broker: Mosquitto, tmp_path: Path
) -> None:
    run(_compat(broker, tmp_path))


async def _compat(broker: Mosquitto, tmp_path: Path) -> None:
    sim = SimMeter.build()
    config = MqttConfig(url=broker.url, base_topic="ESP32MEP", compat_dabbler=True)
    gateway = FakeGateway(config, [sim.status()])
    recorder = Recorder(broker.port, ["ESP32MEP/#"])
    publisher = MqttPublisher(gateway, config, data_dir=tmp_path, diagnostics_interval=0.2)
    truths = {}
    async with running(recorder.run(), publisher.run()) as tasks:
        await until(lambda: gateway.hub.subscribers > 0, what="publisher", tasks=tasks)
        await recorder.ready()
        # Live values are not queued while disconnected: start once the publisher is connected.
        await until(lambda: publisher.stats.connected, what="publisher connected", tasks=tasks)
        for second in range(0, 30):
            reading, truth = sim.reading(second)
            truths[second] = truth
            gateway.hub.publish(reading)
            await asyncio.sleep(0.02)
        await until(
            lambda: all(recorder.on(f"ESP32MEP/{topic}") for topic in FIRMWARE_TOPICS),
            what="the firmware's topics",
            tasks=tasks,
        )
        await asyncio.sleep(0.1)
        lwt = recorder.last("ESP32MEP/lwt")
        assert lwt is not None
        assert lwt.payload == b"Online"
    # A clean stop leaves the retained will's value behind.
    after = Recorder(broker.port, ["ESP32MEP/lwt"], identifier="after")
    async with running(after.run()):
        await until(lambda: bool(after.messages), what="retained lwt")
    assert (after.messages[-1].payload, after.messages[-1].retain) == (b"Offline", True)

    compat = {
        m.topic.removeprefix("ESP32MEP/")
        for m in recorder.messages
        if m.topic.endswith("/mydatajson") or m.topic.endswith("/lwt")
    }
    assert compat == {*FIRMWARE_TOPICS, "lwt"}
    for topic, keys in FIRMWARE_TOPICS.items():
        for message in recorder.on(f"ESP32MEP/{topic}"):
            payload = message.json()
            assert isinstance(payload, dict)
            assert list(payload) == keys, topic  # names and order exactly
            assert all(type(v) is int for v in payload.values()), (topic, payload)
            assert not message.retain

    # Units: the firmware's integers (mA, mV, mHz, Wh, W, thousandths) against ground truth.
    # Power is published every 5 s (readings 0, 5, 10, ... s); a message the broker was too
    # slow for may be skipped, so each one is matched to the reading it came from, in order.
    expected = {second: _firmware_payloads(truths[second]) for second in range(0, 30, 5)}
    for topic in FIRMWARE_TOPICS:
        seconds = []
        for message in recorder.on(f"ESP32MEP/{topic}"):
            payload = message.json()
            found = [t for t, p in expected.items() if _agrees(p[topic], payload)]
            assert found, (topic, payload)
            seconds.append(found[0])
        assert seconds == sorted(seconds), (topic, seconds)
        assert len(seconds) >= 3, (topic, seconds)


def _firmware_payloads(truth: GroundTruth) -> dict[str, dict[str, int]]:
    """What the old firmware would have sent, from the meter's own integer units."""
    e = truth.electrical
    sensors: dict[str, int] = {}
    fwd: dict[str, int] = {"Fwd_W": e.forward_active_power_w}
    rev: dict[str, int] = {"Rev_W": e.reverse_active_power_w}
    for i, phase in enumerate(truth.phases, start=1):
        sensors[f"L{i}_RMS_A"] = phase.current_ma
        sensors[f"L{i}_RMS_V"] = phase.voltage_mv
        sensors[f"L{i}_PF_Fac"] = phase.power_factor_milli
        fwd[f"L{i}_Fwd_W"] = phase.forward_active_power_w
        rev[f"L{i}_Rev_W"] = phase.reverse_active_power_w
    sensors["ImportReactive_VAr"] = max(e.reactive_power_var, 0)
    sensors["ExportReactive_VAr"] = max(-e.reactive_power_var, 0)
    return {
        "sensors/mydatajson": sensors,
        "meterConsumptionTotal/mydatajson": {
            "Fwd_Act_Wh": truth.forward_active_energy_wh,
            "Rev_Act_Wh": truth.reverse_active_energy_wh,
        },
        "meterConsumptionFwd/mydatajson": fwd,
        "meterConsumptionRev/mydatajson": rev,
        "frequency/mydatajson": {"Freq_mHz": truth.frequency_mhz},
    }


def _agrees(expected: dict[str, int], payload: object) -> bool:
    assert isinstance(payload, dict)
    return all(payload[key] == value for key, value in expected.items())


def test_dash_json_has_the_firmwares_fields_and_averages_the_last_minute() -> None:
    sim = SimMeter.build()
    hub = ReadingHub()
    readings = [sim.reading(s)[0] for s in range(0, 90, 10)]
    for reading in readings:
        hub.publish(reading)
    last = readings[-1]
    data = dabbler_json(
        last, identity=sim.identity(), averages=hub.averages(last), fields=FIRMWARE_DASH_FIELDS
    )
    assert list(data) == FIRMWARE_DASH_FIELDS
    assert data["Meter_Manufacturer"] == "ELON"
    assert data["Utility_SN"] == sim.identity().serial_number
    assert data["CurrentDateTimeString"] == last.at.strftime("%Y-%m-%d %H:%M:%S")
    window = [r for r in readings if last.at - r.at < dt.timedelta(minutes=1)]
    assert len(window) == 6
    expected = sum(r.active_power_import_w or 0.0 for r in window) / len(window)
    assert data["Fwd_Avg_W"] == round(expected)
    # A value the meter does not measure is 0, as the firmware printed it.
    single = dataclasses.replace(last, voltage_l3_v=None, current_l3_a=None)
    assert dabbler_json(single)["L3_RMS_V"] == 0
    assert dabbler_json(single)["L3_RMS_A"] == 0


def test_mqtt_compat_topics_and_dash_data_agree_on_every_field(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """One definition of the ``*_Avg_W`` fields: after each reading, the compat MQTT messages
    and ``/getDashDataWS`` (the web app on the same gateway) carry the same values."""
    run(_agree(broker, tmp_path))


async def _agree(broker: Mosquitto, tmp_path: Path) -> None:
    sim = SimMeter.build()
    config = MqttConfig(
        url=broker.url, base_topic="ESP32MEP", compat_dabbler=True, power_interval=1
    )
    gateway = FakeGateway(config, [sim.status()])
    web_dir = tmp_path / "web"
    web_dir.mkdir()
    app = create_app(gateway, data_dir=web_dir)
    recorder = Recorder(broker.port, ["ESP32MEP/#"])
    publisher = MqttPublisher(gateway, config, data_dir=tmp_path, diagnostics_interval=0.2)
    fwd, rev = "ESP32MEP/meterConsumptionFwd/mydatajson", "ESP32MEP/meterConsumptionRev/mydatajson"
    readings = []
    async with (
        running(recorder.run(), publisher.run()) as tasks,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as web,
    ):
        await until(lambda: gateway.hub.subscribers > 0, what="publisher", tasks=tasks)
        await recorder.ready()
        await until(lambda: publisher.stats.connected, what="publisher connected", tasks=tasks)
        for n, second in enumerate(range(0, 100, 10), start=1):
            reading, _ = sim.reading(second)
            readings.append(reading)
            gateway.hub.publish(reading)
            await until(
                lambda: len(recorder.on(fwd)) == len(recorder.on(rev)) == len(readings),
                what=f"the compat power messages of reading {n}",
                tasks=tasks,
            )
            response = await web.get("/getDashDataWS", params={"meter": "house"})
            assert response.status_code == 200, response.text
            dash = response.json()
            for topic in (fwd, rev):
                message = recorder.on(topic)[-1].json()
                assert isinstance(message, dict)
                assert message == {key: dash[key] for key in message}, (second, topic)
    # The last reading's window: the six readings of the last minute (40..90 s).
    window = [r for r in readings if readings[-1].at - r.at < dt.timedelta(minutes=1)]
    assert len(window) == 6
    mean = sum(r.active_power_export_w or 0.0 for r in window) / len(window)
    assert dash["Rev_Avg_W"] == round(mean)
    assert dash["Rev_Avg_W"] != dash["Rev_W"]  # a real average, not the present value again
